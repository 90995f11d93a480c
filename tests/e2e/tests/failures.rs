//! Failures on purpose: a cloud call that fails half-way, drift between plan and apply, and a
//! target changed after the run.

use contain_e2e::{EC2_PLAYBOOK, Harness, diff, workspace_root};
use contain_test_estate::{Effect, Fault, FaultProxy};
use serde_json::Value;

/// Writes the shipped playbook with `on_failure: halt` instead of `rollback`, and returns its path.
fn halting_playbook(harness: &Harness) -> String {
    let source = std::fs::read_to_string(workspace_root().join(EC2_PLAYBOOK)).unwrap();
    let halting = source.replace("on_failure: rollback", "on_failure: halt");
    assert_ne!(source, halting, "the shipped playbook rolls back on failure");
    let path = harness.state_dir.path().join("halting.yaml");
    std::fs::write(&path, halting).unwrap();
    path.display().to_string()
}

/// Fails `times` ModifyNetworkInterfaceAttribute calls on one interface, after letting `skip`
/// through.
fn fail_interface(proxy: &FaultProxy, interface_id: &str, skip: usize, times: usize) {
    proxy.add_fault(Fault {
        body_contains: vec!["Action=ModifyNetworkInterfaceAttribute".into(), format!("NetworkInterfaceId={interface_id}")],
        // The plan's permission pre-flight sends the same call with DryRun=true.
        body_lacks: vec!["DryRun=true".into()],
        body: None,
        skip,
        times,
        status: 400,
        code: "InvalidParameterValue".into(),
        message: "injected by the test proxy".into(),
        effect: Effect::Answer,
    });
}

fn sorted(mut groups: Vec<String>) -> Vec<String> {
    groups.sort();
    groups
}

fn records_of<'j>(journal: &'j [Value], kind: &str) -> Vec<&'j Value> {
    journal.iter().filter(|r| r["kind"] == kind).collect()
}

#[tokio::test]
async fn halt_leaves_first_interface_and_rerun_finishes() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let [first, second] = [harness.estate.double.interface_ids[0].clone(), harness.estate.double.interface_ids[1].clone()];
    let second_prior = harness.interface_groups(&second).await;
    fail_interface(&proxy, &second, 0, 100);
    let playbook = halting_playbook(&harness);
    let instance = format!("instance={}", harness.estate.double.instance_id);

    let run = harness.contain_via(&proxy.url, &["run", &playbook, "-i", &instance, "-i", "incident=INC-2", "--yes", "-o", "json"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["status"], "partial");
    let target = &report["steps"][1]["targets"][0];
    assert_eq!(target["outcome"], "failed");
    let outcomes: Vec<&str> = target["operations"].as_array().unwrap().iter().map(|o| o["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["applied", "applied", "applied", "failed", "not_started", "not_started"]);

    let run_id = report["run_id"].as_str().unwrap();
    let journal = harness.journal(run_id);
    let applied: Vec<&str> = records_of(&journal, "step_applied").iter().filter(|r| r["step"] == "isolate").map(|r| r["operation_id"].as_str().unwrap()).collect();
    assert_eq!(applied, ["group:allow-all", "group:isolation", format!("interface:{first}").as_str()]);
    let failed = records_of(&journal, "step_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["operation_id"], format!("interface:{second}").as_str());
    assert_eq!(failed[0]["changed"], false);
    assert!(failed[0]["error"].as_str().unwrap().contains("injected by the test proxy"));
    assert_eq!(records_of(&journal, "run_finished")[0]["status"], "partial");

    let isolation = harness.interface_groups(&first).await;
    assert_eq!(isolation.len(), 1);
    assert_eq!(harness.interface_groups(&second).await, second_prior, "the failed interface keeps its groups");

    // A new run, with the fault gone, leaves the isolated interface alone and finishes the rest.
    proxy.clear_faults();
    let plan = harness.contain(&["plan", &playbook, "-i", &instance, "-i", "incident=INC-2", "-o", "json"]);
    let ids: Vec<String> = plan.json()["plan"]["steps"][1]["targets"][0]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!ids.contains(&format!("interface:{first}")), "{ids:?}");
    assert!(ids.contains(&format!("interface:{second}")), "{ids:?}");

    let rerun = harness.contain(&["run", &playbook, "-i", &instance, "-i", "incident=INC-2", "--yes", "-o", "json"]);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert_eq!(rerun.json()["status"], "succeeded");
    assert_eq!(harness.interface_groups(&second).await, isolation);
}

#[tokio::test]
async fn rollback_policy_restores_first_interface() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    fail_interface(&proxy, &harness.estate.double.interface_ids[1], 0, 100);
    let instance = format!("instance={}", harness.estate.double.instance_id);

    let run = harness.contain_via(&proxy.url, &["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-3", "--yes", "-o", "json"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["status"], "rolled_back");
    assert!(report["notes"][0].as_str().unwrap().contains("on_failure: rollback"));

    let journal = harness.journal(report["run_id"].as_str().unwrap());
    let reverted: Vec<&str> = records_of(&journal, "reverted").iter().filter(|r| r["step"] == "isolate").map(|r| r["operation_id"].as_str().unwrap()).collect();
    let first = format!("interface:{}", harness.estate.double.interface_ids[0]);
    assert_eq!(reverted, [first.as_str(), "group:isolation", "group:allow-all"]);

    let after = harness.describe().await;
    assert!(before == after, "the rollback left changes:\n{}", diff(&before, &after));
}

#[tokio::test]
async fn failed_second_move_returns_to_prior_groups() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let first = harness.estate.double.interface_ids[0].clone();
    let prior = harness.interface_groups(&first).await;
    // The first call (into the allow-all group) passes; the second (into isolation) fails.
    fail_interface(&proxy, &first, 1, 1);
    let playbook = halting_playbook(&harness);
    let instance = format!("instance={}", harness.estate.double.instance_id);

    let run = harness.contain_via(&proxy.url, &["run", &playbook, "-i", &instance, "-i", "incident=INC-4", "--yes", "-o", "json"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let error = run.json()["steps"][1]["targets"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("moved back to its prior groups"), "{error}");
    assert_eq!(harness.interface_groups(&first).await, prior);

    let calls: Vec<String> = proxy
        .seen()
        .iter()
        .filter(|r| r.action == "ModifyNetworkInterfaceAttribute" && r.body.contains(&first) && !r.body.contains("DryRun=true"))
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(calls.len(), 3, "into allow-all, into isolation (failed), back to prior: {calls:?}");
    let journal = harness.journal(run.json()["run_id"].as_str().unwrap());
    assert_eq!(records_of(&journal, "step_failed")[0]["changed"], false);
}

#[tokio::test]
async fn drift_between_plan_and_apply_changes_nothing() {
    let harness = Harness::new().await;
    let instance = format!("instance={}", harness.estate.double.instance_id);
    let plan_file = harness.state_dir.path().join("plan.json").display().to_string();
    let plan = harness.contain(&["plan", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-5", "--out", &plan_file]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);

    let second = harness.estate.double.interface_ids[1].clone();
    harness
        .ec2
        .modify_network_interface_attribute()
        .network_interface_id(&second)
        .groups(&harness.estate.groups["ssh"])
        .send()
        .await
        .unwrap();
    let before_apply = harness.describe().await;

    let apply = harness.contain(&["apply", &plan_file, "--yes", "-o", "json"]);
    assert_eq!(apply.code, 4, "{}{}", apply.stdout, apply.stderr);
    let report = apply.json();
    let target = &report["steps"][1]["targets"][0];
    assert_eq!(target["outcome"], "drift");
    assert!(target["error"].as_str().unwrap().contains(&second), "{}", target["error"]);

    let after = harness.describe().await;
    assert!(before_apply == after, "a drifted target was changed:\n{}", diff(&before_apply, &after));
    let journal = harness.journal(report["run_id"].as_str().unwrap());
    assert_eq!(records_of(&journal, "step_skipped").len(), 1);
    assert!(records_of(&journal, "step_intent").iter().all(|r| r["step"] != "isolate"), "no isolate operation may start on a drifted target");
}

#[tokio::test]
async fn edited_plan_file_is_rejected() {
    let harness = Harness::new().await;
    let instance = format!("instance={}", harness.estate.single.instance_id);
    let plan_file = harness.state_dir.path().join("plan.json");
    let plan = harness.contain(&["plan", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-6", "--out", plan_file.to_str().unwrap()]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let text = std::fs::read_to_string(&plan_file).unwrap().replace("INC-6", "INC-X");
    std::fs::write(&plan_file, text).unwrap();

    let apply = harness.contain(&["apply", plan_file.to_str().unwrap(), "--yes"]);
    assert_eq!(apply.code, 2, "{}", apply.stderr);
    assert!(apply.stderr.contains("was changed after it was written"), "{}", apply.stderr);
    assert!(!harness.state_dir.path().join("runs").exists(), "no run may start from an edited plan");
}

#[tokio::test]
async fn rollback_refuses_changed_target_unless_forced() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let instance = format!("instance={}", harness.estate.double.instance_id);
    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-7", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();

    let [first, second] = [harness.estate.double.interface_ids[0].clone(), harness.estate.double.interface_ids[1].clone()];
    let isolation = harness.interface_groups(&second).await;
    harness
        .ec2
        .modify_network_interface_attribute()
        .network_interface_id(&first)
        .groups(&harness.estate.groups["web"])
        .send()
        .await
        .unwrap();

    let refused = harness.contain(&["rollback", &run_id, "--yes", "-o", "json"]);
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    let report = refused.json();
    // The refusal covers the instance in every step, so nothing was reverted.
    assert_eq!(report["status"], "succeeded", "nothing was reverted, so the run is still contained");
    let target = &report["steps"][1]["targets"][0];
    assert_eq!(target["outcome"], "rollback_refused");
    assert!(target["error"].as_str().unwrap().contains(&first), "{}", target["error"]);
    assert_eq!(harness.interface_groups(&second).await, isolation, "a refused target is left untouched");

    let forced = harness.contain(&["rollback", &run_id, "--yes", "--force", "-o", "json"]);
    assert_eq!(forced.code, 0, "{}{}", forced.stdout, forced.stderr);
    assert_eq!(forced.json()["status"], "rolled_back");
    let after = harness.describe().await;
    assert!(before == after, "forced rollback did not restore the estate:\n{}", diff(&before, &after));
    assert_eq!(sorted(harness.interface_groups(&first).await), sorted(vec![harness.estate.groups["web"].clone(), harness.estate.groups["db"].clone()]));
}

#[tokio::test]
async fn failed_move_back_is_journaled_and_rolled_back() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let first = harness.estate.double.interface_ids[0].clone();
    // Into the allow-all group passes; into isolation and the move back both fail.
    fail_interface(&proxy, &first, 1, 2);
    let playbook = halting_playbook(&harness);
    let instance = format!("instance={}", harness.estate.double.instance_id);

    let run = harness.contain_via(&proxy.url, &["run", &playbook, "-i", &instance, "-i", "incident=INC-4", "--yes", "-o", "json"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    let error = report["steps"][1]["targets"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("run `contain rollback` now"), "{error}");
    let run_id = report["run_id"].as_str().unwrap().to_string();
    let journal = harness.journal(&run_id);
    assert_eq!(records_of(&journal, "step_failed")[0]["changed"], true, "the interface was left in the allow-all group");

    proxy.clear_faults();
    let rollback = harness.contain(&["rollback", &run_id, "--yes", "-o", "json"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let after = harness.describe().await;
    assert!(before == after, "rollback did not repair the interface:\n{}", diff(&before, &after));
}

#[tokio::test]
async fn plan_applied_after_another_run_is_no_drift() {
    let harness = Harness::new().await;
    let instance = format!("instance={}", harness.estate.double.instance_id);
    let plan_file = harness.state_dir.path().join("plan.json").display().to_string();
    let plan = harness.contain(&["plan", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-8", "--out", &plan_file]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);

    let first = harness.contain(&["apply", &plan_file, "--yes", "-o", "json"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let isolated = harness.describe().await;

    let second = harness.contain(&["apply", &plan_file, "--yes", "-o", "json"]);
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let report = second.json();
    let outcomes: Vec<&str> = report["steps"][1]["targets"][0]["operations"].as_array().unwrap().iter().map(|o| o["outcome"].as_str().unwrap()).collect();
    assert!(outcomes[2..].iter().all(|o| *o == "already_in_place"), "{outcomes:?}");
    let after = harness.describe().await;
    assert!(isolated == after, "{}", diff(&isolated, &after));
}

#[tokio::test]
async fn run_ids_are_checked() {
    let harness = Harness::new().await;
    let traversal = harness.contain(&["runs", "show", "../../etc/passwd"]);
    assert_eq!(traversal.code, 2, "{}", traversal.stderr);
    assert!(traversal.stderr.contains("invalid run id `../../etc/passwd`"), "{}", traversal.stderr);

    let unknown = harness.contain(&["rollback", "run-nope", "--yes"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert_eq!(unknown.stderr.matches("has no journal").count(), 1, "the message appears once: {}", unknown.stderr);
}
