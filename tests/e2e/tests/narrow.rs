//! Narrowing a security group rule, a change that replaces rules. The new ranges are added
//! before the old one is removed, and a failure half-way is compensated. So the group never
//! admits less than the new ranges nor more than the old one.

use contain_e2e::{Harness, diff};
use contain_test_estate::{Effect, Fault, FaultProxy};
use serde_json::Value;

/// The estate's ssh group allows TCP 22 from 10.1.0.0/16.
const PLAYBOOK: &str = "name: narrow-ssh\ndescription: Narrow SSH to the jump subnets.\ninputs:\n  group: { type: aws.ec2.security_group, description: The group. }\nsteps:\n  - id: narrow\n    action: block\n    target: \"${{ inputs.group }}\"\n    with: { addresses: [10.1.0.0/16], narrow_to: [10.1.5.0/24, 10.1.6.0/24], ports: [22], direction: inbound }\n";

fn ssh_ranges(described: &Value, group: &str) -> Vec<String> {
    let group = described["security_groups"].as_array().unwrap().iter().find(|g| g["id"] == group).expect("the group is described");
    let mut ranges: Vec<String> =
        group["ingress"].as_array().unwrap().iter().flat_map(|r| r["ipv4"].as_array().unwrap()).map(|c| c.as_str().unwrap().to_string()).collect();
    ranges.sort();
    ranges
}

fn fail(action: &str, skip: usize, code: &str) -> Fault {
    Fault {
        body_contains: vec![format!("Action={action}&")],
        body_lacks: vec!["DryRun=true".into()],
        body: None,
        skip,
        times: 1,
        status: 400,
        code: code.into(),
        message: "injected by the test proxy".into(),
        effect: Effect::Answer,
    }
}

#[tokio::test]
async fn narrow_and_roll_back() {
    let harness = Harness::new().await;
    let group = harness.estate.groups["ssh"].clone();
    let before = harness.describe().await;
    let playbook = harness.write_playbook("narrow.yaml", PLAYBOOK);

    let plan = harness.contain(&["plan", &playbook, "-i", &format!("group={group}")]);
    assert!(plan.stdout.contains("from 10.1.0.0/16 to 10.1.5.0/24, 10.1.6.0/24, adding the new ranges before removing the old one"), "{}", plan.stdout);

    let run = harness.contain(&["run", &playbook, "-i", &format!("group={group}"), "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(ssh_ranges(&harness.describe().await, &group), ["10.1.5.0/24", "10.1.6.0/24"]);

    let rollback = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let after = harness.describe().await;
    assert!(after == before, "{}", diff(&before, &after));
}

/// The second authorize meets the group's rules limit: the first added range is removed again,
/// the group still allows 10.1.0.0/16, and the journal records "failed, compensated".
#[tokio::test]
async fn rules_limit_is_compensated() {
    check_compensated(fail("AuthorizeSecurityGroupIngress", 1, "RulesPerSecurityGroupLimitExceeded"), "RulesPerSecurityGroupLimitExceeded").await;
}

/// The removal of the old range fails after both new ones were added: both are removed again.
#[tokio::test]
async fn failed_removal_is_compensated() {
    check_compensated(fail("RevokeSecurityGroupIngress", 0, "UnauthorizedOperation"), "UnauthorizedOperation").await;
}

async fn check_compensated(fault: Fault, code: &str) {
    let harness = Harness::new().await;
    let group = harness.estate.groups["ssh"].clone();
    let before = harness.describe().await;
    let playbook = harness.write_playbook("narrow.yaml", PLAYBOOK);
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    proxy.add_fault(fault);

    let run = harness.contain_via(&proxy.url, &["run", &playbook, "-i", &format!("group={group}"), "--yes", "-o", "json"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["status"], "failed", "{report:#}");
    assert!(report["steps"][0]["targets"][0]["error"].as_str().unwrap().contains(code), "{report:#}");

    let after = harness.describe().await;
    assert_eq!(ssh_ranges(&after, &group), ["10.1.0.0/16"], "the group admits what it admitted before");
    assert!(after == before, "{}", diff(&before, &after));

    let run_id = report["run_id"].as_str().unwrap();
    let failed: Vec<Value> = harness.journal(run_id).into_iter().filter(|r| r["kind"] == "step_failed").collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["changed"], false, "{:#}", failed[0]);
    assert!(failed[0]["compensation"].as_str().is_some_and(|c| c.contains("removed the added range(s) 10.1.5.0/24")), "{:#}", failed[0]);

    let shown = harness.contain(&["runs", "show", run_id]);
    assert!(shown.stdout.contains("compensated: removed the added range(s)"), "{}", shown.stdout);
}
