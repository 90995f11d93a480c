//! Pacing: throttled calls are retried past the attempt limit while the time budget lasts, each
//! waiting for its API bucket, and the run contains every target.

use contain_e2e::{EC2_PLAYBOOK, Harness};
use contain_test_estate::{Effect, Fault, FaultProxy};

/// Throttles `action` `times` times, as EC2 does: 503 `RequestLimitExceeded`.
fn throttle(action: &str, times: usize) -> Fault {
    Fault {
        body_contains: vec![format!("Action={action}&")],
        body_lacks: vec!["DryRun=true".into()],
        body: None,
        skip: 0,
        times,
        status: 503,
        code: "RequestLimitExceeded".into(),
        message: "Request limit exceeded.".into(),
        effect: Effect::Answer,
    }
}

#[tokio::test]
async fn throttling_outlasts_attempt_limit() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    // Two attempts per call, but throttled calls go on for up to a minute; a fast bucket keeps
    // the test short.
    let config = harness.state_dir.path().join("config.toml");
    let settings = "[engine]\nretry_attempts = 2\nthrottle_budget_seconds = 60\n\n[pacing]\n\"ec2:ModifyNetworkInterfaceAttribute\" = { burst = 2, per_second = 20 }\n";
    std::fs::write(&config, settings).unwrap();
    proxy.add_fault(throttle("ModifyNetworkInterfaceAttribute", 5));
    let instance = format!("instance={}", harness.estate.double.instance_id);

    let args = ["--config", config.to_str().unwrap(), "run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-P", "--yes", "-o", "json"];
    let run = harness.contain_with(&proxy.url, &[("CONTAIN_LOG", "info")], &args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["status"], "succeeded");

    let throttled = proxy.seen().iter().filter(|r| r.faulted).count();
    assert_eq!(throttled, 5, "every injected throttle was met");
    assert!(run.stderr.contains("throttled: retrying"), "{}", run.stderr);
    assert!(run.stderr.contains("slowing this API bucket down"), "{}", run.stderr);

    // Without the budget the same throttling stops the run after two attempts.
    let strict = harness.state_dir.path().join("strict.toml");
    std::fs::write(&strict, "[engine]\nretry_attempts = 2\nthrottle_budget_seconds = 0\n").unwrap();
    let rolled_back = harness.contain_via(&proxy.url, &["rollback", &run.json()["run_id"].as_str().unwrap().to_string(), "--yes"]);
    assert_eq!(rolled_back.code, 0, "{}", rolled_back.stderr);
    proxy.add_fault(throttle("ModifyNetworkInterfaceAttribute", 5));
    let args = ["--config", strict.to_str().unwrap(), "run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-P", "--yes", "-o", "json"];
    let stopped = harness.contain_with(&proxy.url, &[], &args);
    assert_ne!(stopped.code, 0, "{}", stopped.stdout);
    assert!(stopped.stdout.contains("RequestLimitExceeded") || stopped.stderr.contains("RequestLimitExceeded"), "{}{}", stopped.stdout, stopped.stderr);
}
