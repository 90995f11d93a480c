//! The fault matrix: each changing call of the EC2 playbook meets throttling, server errors,
//! resets, time-outs and slow responses from the proxy, twice in a row. The run must retry, with
//! the retries logged, and succeed; a call that took effect before its response was lost must not
//! be made again.

use contain_e2e::{EC2_PLAYBOOK, Harness};
use contain_test_estate::{Effect, Fault, FaultProxy};

/// The changing calls the shipped EC2 playbook makes, and whether a repeat would create
/// something a second time (so a call that took effect must be found, not repeated).
const OPERATIONS: [(&str, bool); 4] =
    [("CreateSecurityGroup", true), ("ModifyNetworkInterfaceAttribute", false), ("ModifyInstanceAttribute", false), ("CreateTags", true)];

fn fault(action: &str, status: u16, code: &str, effect: Effect) -> Fault {
    Fault {
        body_contains: vec![format!("Action={action}&")],
        body_lacks: vec!["DryRun=true".into()],
        body: None,
        skip: 0,
        times: 2,
        status,
        code: code.into(),
        message: "injected by the fault matrix".into(),
        effect,
    }
}

/// Runs the playbook against each operation with the fault, and checks the outcome.
async fn matrix(status: u16, code: &str, effect: Effect) {
    for (action, creates) in OPERATIONS {
        let context = format!("{code} ({status}, {effect:?}) on {action}");
        let harness = Harness::new().await;
        let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
        // Short waits between attempts, and one second per attempt so that a hang times out.
        let config = harness.state_dir.path().join("config.toml");
        std::fs::write(&config, "[engine]\nretry_base_ms = 20\n\n[aws]\nattempt_timeout_seconds = 1\n").unwrap();
        proxy.add_fault(fault(action, status, code, effect));
        let instance = format!("instance={}", harness.estate.double.instance_id);

        let run = harness.contain_with(&proxy.url, &[("CONTAIN_LOG", "info")], &["--config", config.to_str().unwrap(), "run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-F", "--yes", "-o", "json"]);
        assert_eq!(run.code, 0, "{context}: the run succeeds: {}{}", run.stdout, run.stderr);
        assert_eq!(run.json()["status"], "succeeded", "{context}");

        let seen = proxy.seen();
        let faulted = seen.iter().filter(|r| r.faulted).count();
        let took_effect = matches!(effect, Effect::AnswerAfterForward | Effect::ResetAfterForward);
        if !matches!(effect, Effect::Delay(_)) {
            // After a lost response the call may be found done and never sent again.
            let expected = if took_effect { 1..=2 } else { 2..=2 };
            assert!(expected.contains(&faulted), "{context}: {faulted} faults met");
            assert!(run.stderr.contains("retrying"), "{context}: retries are logged at info level: {}", run.stderr);
        }

        // A call whose first attempt took effect is found by reading, not sent again.
        if took_effect && creates {
            let sent = seen.iter().filter(|r| r.action == action && !r.body.contains("DryRun=true")).count();
            let expected = if action == "CreateSecurityGroup" { 2 } else { 1 };
            assert_eq!(sent, expected, "{context}: the call that took effect was not repeated");
            assert!(run.stderr.contains("did not take effect") || run.stderr.contains("took effect"), "{context}: {}", run.stderr);
        }

        // Contained: a new plan has nothing left to change.
        let plan = harness.contain(&["plan", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-F", "-o", "json"]);
        assert_eq!(plan.code, 0, "{context}: {}", plan.stderr);
        let steps = plan.json()["plan"]["steps"].clone();
        for step in steps.as_array().unwrap().iter().filter(|s| s["id"] != "snapshot") {
            for target in step["targets"].as_array().unwrap() {
                assert!(target["operations"].as_array().is_none_or(Vec::is_empty), "{context}: {} left changes: {target:#}", step["id"]);
            }
        }
    }
}

#[tokio::test]
async fn ec2_throttling() {
    matrix(400, "RequestLimitExceeded", Effect::Answer).await;
}

#[tokio::test]
async fn throttling_code() {
    matrix(400, "Throttling", Effect::Answer).await;
}

#[tokio::test]
async fn too_many_requests() {
    // An unknown code with status 429 counts as throttling.
    matrix(429, "RequestThrottledByProxy", Effect::Answer).await;
}

#[tokio::test]
async fn internal_error() {
    matrix(500, "InternalError", Effect::Answer).await;
}

#[tokio::test]
async fn unavailable() {
    matrix(503, "Unavailable", Effect::Answer).await;
}

#[tokio::test]
async fn connection_reset() {
    matrix(0, "reset", Effect::Reset).await;
}

#[tokio::test]
async fn reset_after_the_change() {
    matrix(0, "reset", Effect::ResetAfterForward).await;
}

#[tokio::test]
async fn error_after_the_change() {
    matrix(500, "InternalError", Effect::AnswerAfterForward).await;
}

#[tokio::test]
async fn time_out() {
    matrix(0, "hang", Effect::Hang(2500)).await;
}

#[tokio::test]
async fn slow_answer() {
    matrix(0, "slow", Effect::Delay(400)).await;
}
