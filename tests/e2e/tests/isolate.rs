//! The main job: plan, run and roll back the shipped EC2 playbook against moto.

use contain_e2e::{EC2_PLAYBOOK, Harness, diff};
use serde_json::Value;

fn input(name: &str, value: &str) -> String {
    format!("{name}={value}")
}

/// Lists the accounts a snapshot is shared with.
async fn shared_accounts(harness: &Harness, snapshot: &str) -> Vec<String> {
    let attribute = harness
        .ec2
        .describe_snapshot_attribute()
        .snapshot_id(snapshot)
        .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .unwrap();
    attribute.create_volume_permissions().iter().filter_map(|p| p.user_id().map(str::to_string)).collect()
}

async fn isolation_group(harness: &Harness) -> String {
    let output = harness
        .ec2
        .describe_security_groups()
        .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values(format!("contain-isolation-{}", harness.estate.vpc_id)).build())
        .send()
        .await
        .unwrap();
    output.security_groups()[0].group_id().unwrap().to_string()
}

#[tokio::test]
async fn moto_reports_interface_groups_only() {
    let harness = Harness::new().await;
    let second = &harness.estate.double.interface_ids[1];
    let mut expected = vec![harness.estate.groups["ssh"].clone(), harness.estate.groups["admin"].clone()];
    expected.sort();

    // Unpatched moto 5.2.5 adds the instance's groups (web, db) to every attached interface.
    assert_eq!(harness.interface_groups(second).await, expected);
}

#[tokio::test]
async fn plan_writes_nothing() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let instance = &harness.estate.double.instance_id;

    let plan = harness.contain(&["plan", EC2_PLAYBOOK, "--input", &input("instance", instance), "--input", "incident=INC-7", "--output", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let document = plan.json();
    assert_eq!(document["digest"].as_str().map(str::len), Some(64));
    let operations = document["plan"]["steps"][1]["targets"][0]["operations"].as_array().unwrap();
    let ids: Vec<&str> = operations.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let first = format!("interface:{}", harness.estate.double.interface_ids[0]);
    let second = format!("interface:{}", harness.estate.double.interface_ids[1]);
    assert_eq!(ids, ["group:allow-all", "group:isolation", first.as_str(), second.as_str(), "protection", "tags"]);

    let after = harness.describe().await;
    assert!(before == after, "plan changed the estate:\n{}", diff(&before, &after));
}

#[tokio::test]
async fn run_isolates_and_rollback_restores() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let instance = harness.estate.double.instance_id.clone();
    let args = ["run", EC2_PLAYBOOK, "-i", &input("instance", &instance), "-i", "incident=INC-7", "--yes", "--output", "json"];

    let run = harness.contain(&args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    let run_id = report["run_id"].as_str().unwrap().to_string();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["steps"][1]["targets"][0]["outcome"], "contained");

    let isolation = isolation_group(&harness).await;
    for interface in &harness.estate.double.interface_ids {
        assert_eq!(harness.interface_groups(interface).await, vec![isolation.clone()], "{interface}");
    }
    let isolated = harness.describe().await;
    let group = isolated["security_groups"].as_array().unwrap().iter().find(|g| g["id"] == isolation.as_str()).unwrap();
    assert_eq!(group["ingress"], Value::Array(vec![]));
    assert_eq!(group["egress"], Value::Array(vec![]));
    let described = isolated["instances"].as_array().unwrap().iter().find(|i| i["id"] == instance.as_str()).unwrap();
    assert_eq!(described["disable_api_termination"], true);
    assert_eq!(described["disable_api_stop"], true);
    assert_eq!(described["tags"]["contain:incident"], "INC-7");
    assert_eq!(described["tags"]["contain:run"], run_id.as_str());

    let again = harness.contain(&args);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json()["steps"][1]["targets"][0]["outcome"], "already_contained");
    let after_rerun = harness.describe().await;
    assert!(isolated == after_rerun, "re-run changed the estate:\n{}", diff(&isolated, &after_rerun));

    let rollback = harness.contain(&["rollback", &run_id, "--yes", "--output", "json"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    assert_eq!(rollback.json()["status"], "rolled_back");
    let restored = harness.describe().await;
    assert!(before == restored, "rollback did not restore the estate:\n{}", diff(&before, &restored));

    let journal_lines = harness.journal(&run_id).len();
    let twice = harness.contain(&["rollback", &run_id, "--yes", "--output", "json"]);
    assert_eq!(twice.code, 0, "{}", twice.stderr);
    assert_eq!(twice.json()["status"], "rolled_back");
    assert_eq!(harness.journal(&run_id).len(), journal_lines, "a second rollback wrote to the journal");
    let still = harness.describe().await;
    assert!(before == still, "second rollback changed the estate:\n{}", diff(&before, &still));
}

#[tokio::test]
async fn single_interface_instance_cycle() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let instance = harness.estate.single.instance_id.clone();

    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &input("instance", &instance), "-i", "incident=INC-8", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let isolation = isolation_group(&harness).await;
    assert_eq!(harness.interface_groups(&harness.estate.single.interface_ids[0]).await, vec![isolation]);
    let untouched = &harness.estate.double.interface_ids[0];
    let mut double_groups = vec![harness.estate.groups["web"].clone(), harness.estate.groups["db"].clone()];
    double_groups.sort();
    assert_eq!(harness.interface_groups(untouched).await, double_groups, "the other instance must not change");

    let rollback = harness.contain(&["rollback", &run_id, "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let restored = harness.describe().await;
    assert!(before == restored, "{}", diff(&before, &restored));
}

#[tokio::test]
async fn instance_arn_is_accepted() {
    let harness = Harness::new().await;
    let arn = format!("arn:aws:ec2:us-east-1:{}:instance/{}", harness.account.account_id, harness.estate.single.instance_id);

    let plan = harness.contain(&["plan", EC2_PLAYBOOK, "-i", &input("instance", &arn), "-i", "incident=INC-9", "-o", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let target = &plan.json()["plan"]["steps"][1]["targets"][0]["target"];
    assert_eq!(target["id"], harness.estate.single.instance_id.as_str());
    assert_eq!(target["region"], "us-east-1");
}

#[tokio::test]
async fn evidence_snapshots_survive_rollback() {
    let harness = Harness::new().await;
    let instance = harness.estate.double.instance_id.clone();
    let args = ["run", EC2_PLAYBOOK, "-i", &input("instance", &instance), "-i", "incident=INC-30", "--yes", "-o", "json"];

    let run = harness.contain(&args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    let evidence: Vec<String> = report["evidence"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
    assert!(!evidence.is_empty(), "the instance's volumes were snapshotted: {report}");
    let snapshots = harness.ec2.describe_snapshots().set_snapshot_ids(Some(evidence.clone())).send().await.unwrap();
    for snapshot in snapshots.snapshots() {
        let tag = |key: &str| snapshot.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).map(str::to_string);
        assert_eq!(tag("contain:incident").as_deref(), Some("INC-30"));
        assert_eq!(tag("contain:run").as_deref(), report["run_id"].as_str());
    }

    let again = harness.contain(&args);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json()["steps"][0]["targets"][0]["outcome"], "already_contained", "the evidence exists already");

    let rollback = harness.contain(&["rollback", report["run_id"].as_str().unwrap(), "--yes", "-o", "json"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    assert!(rollback.json()["notes"].to_string().contains("rollback never deletes evidence"), "{}", rollback.stdout);
    let kept = harness.ec2.describe_snapshots().set_snapshot_ids(Some(evidence.clone())).send().await.unwrap();
    assert_eq!(kept.snapshots().len(), evidence.len(), "rollback deleted evidence");
}

#[tokio::test]
async fn evidence_shared_with_forensic_account() {
    let harness = Harness::new().await;
    let instance = harness.estate.single.instance_id.clone();
    let playbook = harness.write_playbook(
        "evidence.yaml",
        "name: evidence\ndescription: Keep evidence in a forensic account.\ninputs:\n  instance: { type: aws.ec2.instance, description: The instance. }\nsteps:\n  - id: snapshot\n    action: snapshot\n    target: \"${{ inputs.instance }}\"\n    with: { incident: INC-31, share_with_account: \"999988887777\" }\n",
    );

    let run = harness.contain(&["run", &playbook, "-i", &input("instance", &instance), "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let snapshot = run.json()["evidence"][0].as_str().unwrap().to_string();
    assert_eq!(shared_accounts(&harness, &snapshot).await, ["999988887777"]);
}

#[tokio::test]
async fn selector_and_max_targets() {
    let harness = Harness::new().await;
    for instance in [&harness.estate.single.instance_id, &harness.estate.double.instance_id] {
        harness
            .ec2
            .create_tags()
            .resources(instance)
            .tags(aws_sdk_ec2::types::Tag::builder().key("compromised").value("true").build())
            .send()
            .await
            .unwrap();
    }
    let source = "name: tagged\ndescription: Isolate tagged instances.\ninputs:\n  vpc: { type: aws.ec2.vpc, description: The VPC. }\nsteps:\n  - id: isolate\n    action: isolate\n    target: { select: aws.ec2.instance, tags: { compromised: \"true\" }, vpc: \"${{ inputs.vpc }}\" }\n    max_targets: 1\n    with: { incident: INC-50 }\n";
    let playbook = harness.write_playbook("tagged.yaml", source);
    let vpc = input("vpc", &harness.estate.vpc_id);

    let over = harness.contain(&["plan", &playbook, "-i", &vpc]);
    assert_eq!(over.code, 2, "{}{}", over.stdout, over.stderr);
    assert!(over.stderr.contains("2 targets match"), "{}", over.stderr);
    assert!(over.stderr.contains("max_targets of 1"), "{}", over.stderr);

    let raised = harness.contain(&["plan", &playbook, "-i", &vpc, "--max-targets", "5", "-o", "json"]);
    assert_eq!(raised.code, 0, "{}", raised.stderr);
    let targets: Vec<String> = raised.json()["plan"]["steps"][0]["targets"].as_array().unwrap().iter().map(|t| t["target"]["id"].as_str().unwrap().to_string()).collect();
    let mut expected = vec![harness.estate.single.instance_id.clone(), harness.estate.double.instance_id.clone()];
    expected.sort();
    assert_eq!(targets, expected);

    let bad = harness.write_playbook("bad.yaml", &source.replace("tags: { compromised: \"true\" }", "colour: red"));
    let invalid = harness.contain(&["validate", &bad]);
    assert_eq!(invalid.code, 2, "{}", invalid.stderr);
    assert!(invalid.stderr.contains("unknown selector key `colour`"), "{}", invalid.stderr);
}

#[tokio::test]
async fn existing_evidence_is_shared_later() {
    let harness = Harness::new().await;
    let instance = harness.estate.single.instance_id.clone();
    let source = "name: evidence\ndescription: Keep evidence.\ninputs:\n  instance: { type: aws.ec2.instance, description: The instance. }\nsteps:\n  - id: snapshot\n    action: snapshot\n    target: \"${{ inputs.instance }}\"\n    with: { incident: INC-32 }\n";
    let first = harness.contain(&["run", &harness.write_playbook("first.yaml", source), "-i", &input("instance", &instance), "--yes", "-o", "json"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let snapshot = first.json()["evidence"][0].as_str().unwrap().to_string();

    let shared = source.replace("{ incident: INC-32 }", "{ incident: INC-32, share_with_account: \"999988887777\" }");
    let second = harness.contain(&["run", &harness.write_playbook("second.yaml", &shared), "-i", &input("instance", &instance), "--yes", "-o", "json"]);
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert_eq!(second.json()["evidence"][0], snapshot.as_str(), "the existing snapshot is shared, not a new one made");
    assert_eq!(shared_accounts(&harness, &snapshot).await, ["999988887777"]);
}

#[tokio::test]
async fn protection_prior_is_read_at_apply_and_restored() {
    let harness = Harness::new().await;
    let instance = harness.estate.single.instance_id.clone();
    let on = aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build();
    // Termination protection only: moto 5.2.5 accepts a new shutdown behaviour and ignores it,
    // so the instance keeps moto's default, stop, which is already the desired value.
    harness.ec2.modify_instance_attribute().instance_id(&instance).disable_api_termination(on).send().await.expect("termination protection on");
    let before = harness.describe().await;

    let plan = harness.contain(&["plan", EC2_PLAYBOOK, "-i", &input("instance", &instance), "-i", "incident=INC-9", "-o", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let planned = plan.json()["plan"]["steps"][1]["targets"][0]["operations"].as_array().unwrap().iter().find(|o| o["id"] == "protection").cloned().unwrap();
    assert_eq!(planned["prior"], "<read just before the change>");

    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &input("instance", &instance), "-i", "incident=INC-9", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();

    // The intent contains what the apply read, and only the attributes it changes.
    let journal = harness.journal(&run_id);
    let intent = journal.iter().find(|r| r["kind"] == "step_intent" && r["operation"]["id"] == "protection").expect("a protection intent");
    assert_eq!(intent["operation"]["prior"], serde_json::json!({ "disable_api_stop": false }));
    assert_eq!(intent["operation"]["desired"], serde_json::json!({ "disable_api_stop": true }));
    let isolated = harness.describe().await;
    let described = isolated["instances"].as_array().unwrap().iter().find(|i| i["id"] == instance.as_str()).unwrap();
    assert_eq!(described["disable_api_termination"], true);
    assert_eq!(described["disable_api_stop"], true);
    assert_eq!(described["shutdown_behavior"], "stop");

    let rollback = harness.contain(&["rollback", &run_id, "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let restored = harness.describe().await;
    assert!(before == restored, "rollback did not restore the protection read at apply:\n{}", diff(&before, &restored));
}
