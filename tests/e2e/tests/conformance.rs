//! The conformance suite every action runs against moto: plan writes nothing, apply contains,
//! apply again writes nothing, rollback restores the full description, rollback again writes
//! nothing.
//!
//! The description covers EC2 (instances, interfaces, groups, network ACLs without association
//! ids) and IAM (users, keys, roles, policies). Evidence snapshots are not part of it, because
//! rollback keeps them on purpose.

use contain_e2e::{Harness, diff};
use serde_json::{Value, json};

async fn full_description(harness: &Harness) -> Value {
    json!({ "ec2": harness.describe().await, "iam": harness.describe_iam().await })
}

/// Runs the suite for one playbook step. `step` is written as the body of the playbook's only
/// step, after its id; `inputs` are `NAME=VALUE` pairs.
async fn conformance(harness: &Harness, name: &str, inputs_yaml: &str, step: &str, inputs: &[String]) {
    let source = format!("name: {name}\ndescription: Conformance of {name}.\ninputs:\n{inputs_yaml}steps:\n  - id: contain\n{step}");
    let playbook = harness.write_playbook(&format!("{name}.yaml"), &source);
    let mut args: Vec<String> = vec![playbook.clone()];
    for input in inputs {
        args.push("--input".into());
        args.push(input.clone());
    }
    let with = |command: &str, extra: &[&str]| -> Vec<String> {
        let mut all = vec![command.to_string()];
        all.extend(args.iter().cloned());
        all.extend(extra.iter().map(|s| s.to_string()));
        all
    };
    let run = |argv: Vec<String>| {
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        harness.contain(&refs)
    };

    let before = full_description(harness).await;
    let plan = run(with("plan", &["-o", "json"]));
    assert_eq!(plan.code, 0, "{name}: plan failed: {}{}", plan.stdout, plan.stderr);
    let planned: usize = plan.json()["plan"]["steps"][0]["targets"].as_array().unwrap().iter().map(|t| t["operations"].as_array().unwrap().len()).sum();
    assert!(planned > 0, "{name}: the plan changes nothing, so the suite would prove nothing: {}", plan.stdout);
    let after_plan = full_description(harness).await;
    assert!(before == after_plan, "{name}: plan changed the estate:\n{}", diff(&before, &after_plan));

    let apply = run(with("run", &["--yes", "-o", "json"]));
    assert_eq!(apply.code, 0, "{name}: run failed: {}{}", apply.stdout, apply.stderr);
    let report = apply.json();
    assert_eq!(report["status"], "succeeded", "{name}: {report}");
    let run_id = report["run_id"].as_str().unwrap().to_string();
    let contained = full_description(harness).await;
    assert!(before != contained, "{name}: the run changed nothing");

    let again = run(with("run", &["--yes", "-o", "json"]));
    assert_eq!(again.code, 0, "{name}: second run failed: {}{}", again.stdout, again.stderr);
    assert_eq!(again.json()["steps"][0]["targets"][0]["outcome"], "already_contained", "{name}: {}", again.stdout);
    let after_again = full_description(harness).await;
    assert!(contained == after_again, "{name}: the second run wrote:\n{}", diff(&contained, &after_again));

    let rollback = harness.contain(&["rollback", &run_id, "--yes", "-o", "json"]);
    assert_eq!(rollback.code, 0, "{name}: rollback failed: {}{}", rollback.stdout, rollback.stderr);
    assert_eq!(rollback.json()["status"], "rolled_back");
    let restored = full_description(harness).await;
    assert!(before == restored, "{name}: rollback did not restore the estate:\n{}", diff(&before, &restored));

    let twice = harness.contain(&["rollback", &run_id, "--yes"]);
    assert_eq!(twice.code, 0, "{name}: second rollback failed: {}", twice.stderr);
    let still = full_description(harness).await;
    assert!(before == still, "{name}: the second rollback wrote:\n{}", diff(&before, &still));
}

#[tokio::test]
async fn isolate_instance_conforms() {
    let harness = Harness::new().await;
    let instance = harness.estate.double.instance_id.clone();
    conformance(
        &harness,
        "isolate-instance",
        "  instance: { type: aws.ec2.instance, description: The instance. }\n",
        "    action: isolate\n    target: \"${{ inputs.instance }}\"\n    with: { incident: INC-40 }\n",
        &[format!("instance={instance}")],
    )
    .await;
}

#[tokio::test]
async fn revoke_user_conforms() {
    let harness = Harness::new().await;
    harness.build_iam().await;
    conformance(
        &harness,
        "revoke-user",
        "  user: { type: aws.iam.user, description: The user. }\n",
        "    action: revoke\n    target: \"${{ inputs.user }}\"\n    with: { deny_all: true }\n",
        &["user=analyst".to_string()],
    )
    .await;
}

#[tokio::test]
async fn revoke_role_conforms() {
    let harness = Harness::new().await;
    let estate = harness.build_iam().await;
    conformance(
        &harness,
        "revoke-role",
        "  role: { type: aws.iam.role, description: The role. }\n",
        "    action: revoke\n    target: \"${{ inputs.role }}\"\n    with: { deny_all: true }\n",
        &[format!("role={}", estate.instance_profile_arn)],
    )
    .await;
}

#[tokio::test]
async fn disable_sso_conforms() {
    let harness = Harness::new().await;
    let estate = harness.build_iam().await;
    conformance(
        &harness,
        "disable-sso",
        "  provider: { type: aws.iam.identity_provider, description: The provider. }\n",
        "    action: disable_sso\n    target: \"${{ inputs.provider }}\"\n",
        &[format!("provider={}", estate.saml_provider_arn)],
    )
    .await;
}

#[tokio::test]
async fn block_vpc_conforms() {
    let harness = Harness::new().await;
    let vpc = harness.estate.vpc_id.clone();
    conformance(
        &harness,
        "block-vpc",
        "  vpc: { type: aws.ec2.vpc, description: The VPC. }\n",
        "    action: block\n    target: \"${{ inputs.vpc }}\"\n    with: { addresses: [198.51.100.0/24], ports: [22, 3389], direction: inbound }\n",
        &[format!("vpc={vpc}")],
    )
    .await;
}

#[tokio::test]
async fn block_subnet_conforms() {
    let harness = Harness::new().await;
    let subnet = harness.estate.subnet_ids[1].clone();
    conformance(
        &harness,
        "block-subnet",
        "  subnet: { type: aws.ec2.subnet, description: The subnet. }\n",
        "    action: block\n    target: \"${{ inputs.subnet }}\"\n    with: { addresses: [203.0.113.9/32] }\n",
        &[format!("subnet={subnet}")],
    )
    .await;
}

#[tokio::test]
async fn isolate_subnet_conforms() {
    let harness = Harness::new().await;
    let subnet = harness.estate.subnet_ids[0].clone();
    conformance(
        &harness,
        "isolate-subnet",
        "  subnet: { type: aws.ec2.subnet, description: The subnet. }\n",
        "    action: isolate\n    target: \"${{ inputs.subnet }}\"\n",
        &[format!("subnet={subnet}")],
    )
    .await;
}

#[tokio::test]
async fn block_security_group_conforms() {
    let harness = Harness::new().await;
    let group = harness.estate.groups["admin"].clone();
    conformance(
        &harness,
        "block-group",
        "  group: { type: aws.ec2.security_group, description: The group. }\n",
        "    action: block\n    target: \"${{ inputs.group }}\"\n    with: { addresses: [10.2.0.0/16] }\n",
        &[format!("group={group}")],
    )
    .await;
}
