//! Rolling back chosen steps over the API, and the time limit of a request.

use contain_e2e::Harness;
use contain_test_estate::{Fault, FaultProxy};
use serde_json::json;

use crate::server::{Server, tokens, wait_for};

/// Rollback of one step leaves the other steps' changes, and the status reports them. The
/// rest rolls back after. The journal names the principal who asked each time.
#[tokio::test]
async fn rollback_of_chosen_steps() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let (tokens_file, tokens) = tokens(&harness);
    let (viewer, responder) = (&tokens[0].1, &tokens[1].1);
    let server = Server::start_with(&harness, &harness.endpoint, &tokens_file, &["--playbooks", "tests/e2e/playbooks"]);

    let estate = &harness.estate;
    let inputs = json!({ "instances": [estate.single.instance_id, estate.double.instance_id], "vpc": estate.vpc_id, "incident": "INC-R1" });
    let started = server.request("POST", "/v1/runs", Some(responder), Some(&json!({ "playbook": "crash-matrix", "inputs": inputs }).to_string())).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let run_id = started.body["run_id"].as_str().unwrap().to_string();
    wait_for(&server, viewer, &run_id, "succeeded").await;
    let contained = harness.describe().await;
    assert_ne!(contained["network_acls"], before["network_acls"], "the block step denied the address");

    let rollback = format!("/v1/runs/{run_id}/rollback");
    let unknown = server.request("POST", &rollback, Some(responder), Some(r#"{"steps": ["isolate", "blok"]}"#)).await;
    assert_eq!((unknown.status, unknown.body["code"].as_str()), (400, Some("invalid_request")), "{:?}", unknown.body);
    let message = unknown.body["message"].as_str().unwrap();
    let valid = message.split_once("made changes are: ").map(|(_, list)| list.split(", ").collect::<Vec<_>>()).unwrap_or_default();
    assert!(message.contains("`blok`"), "names the bad step: {message}");
    assert!(valid.contains(&"isolate"), "names the valid steps: {message}");
    assert!(valid.contains(&"block"), "names the valid steps: {message}");
    let typo = server.request("POST", &rollback, Some(responder), Some(r#"{"step": ["block"]}"#)).await;
    assert_eq!(typo.status, 400, "an unknown field is refused: {:?}", typo.body);
    assert!(typo.body["message"].as_str().unwrap().contains("step"), "{:?}", typo.body);

    let partly = server.request("POST", &rollback, Some(responder), Some(r#"{"steps": ["block"]}"#)).await;
    assert_eq!(partly.status, 202, "{:?}", partly.body);
    let shown = wait_for(&server, viewer, &run_id, "partly_rolled_back").await;
    let after_block = harness.describe().await;
    assert_eq!(after_block["network_acls"], before["network_acls"], "the block step's entries are gone");
    assert_eq!(after_block["network_interfaces"], contained["network_interfaces"], "the isolation stays: {shown:#}");

    let rest = server.request("POST", &rollback, Some(responder), None).await;
    assert_eq!(rest.status, 202, "{:?}", rest.body);
    wait_for(&server, viewer, &run_id, "rolled_back").await;
    let after = harness.describe().await;
    assert!(after == before, "{}", contain_e2e::diff(&before, &after));

    let journal = std::fs::read_to_string(harness.journal_path(&run_id)).unwrap();
    let rollbacks: Vec<&str> = journal.lines().filter(|l| l.contains("\"rollback_started\"")).collect();
    assert_eq!(rollbacks.len(), 2, "{journal}");
    assert!(rollbacks[0].contains("for the step(s) block"), "{}", rollbacks[0]);
    assert!(rollbacks.iter().all(|l| l.contains("\"api_principal\":\"responder-user\"")), "{rollbacks:?}");
}

/// A request that takes longer than `--request-timeout-seconds` fails with 503 `timeout`.
#[tokio::test]
async fn slow_requests_time_out() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let (tokens_file, tokens) = tokens(&harness);
    let server = Server::start_with(&harness, &proxy.url, &tokens_file, &["--request-timeout-seconds", "1"]);
    proxy.add_fault(Fault::delay("DescribeInstances", 3_000));

    let body = json!({ "playbook": "aws/ec2-instance-compromise", "inputs": { "instance": harness.estate.single.instance_id, "incident": "INC-T1" } }).to_string();
    let started = std::time::Instant::now();
    let planned = server.request("POST", "/v1/plans", Some(&tokens[1].1), Some(&body)).await;
    assert_eq!((planned.status, planned.body["code"].as_str()), (503, Some("timeout")), "{:?}", planned.body);
    assert!(started.elapsed() < std::time::Duration::from_millis(2_900), "answered at the limit, not when the cloud answered");
    assert!(planned.body["request_id"].as_str().is_some(), "{:?}", planned.body);
}
