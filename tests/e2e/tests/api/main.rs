//! The HTTP API: real requests against `contain serve` on 127.0.0.1, with moto behind it.

mod openapi;
mod rollback;
mod server;
mod soar;
mod tls;

use std::sync::{Arc, Mutex};

use contain_e2e::{EC2_PLAYBOOK, Harness};
use contain_test_estate::FaultProxy;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use server::{Server, tokens, wait_for};

#[tokio::test]
async fn role_matrix_and_plan() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let instance = harness.estate.single.instance_id.clone();
    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &format!("instance={instance}"), "-i", "incident=INC-A1", "--yes", "-o", "json"]);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let (tokens_file, tokens) = tokens(&harness);
    let server = Server::start(&harness, &proxy.url, &tokens_file);

    // No token needed.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(server.request("GET", path, None, None).await.status, 200, "{path}");
    }

    // The run above isolated the single instance; the plans below are for the other one.
    let other = harness.estate.double.instance_id.clone();
    let plan_body = json!({ "playbook": "aws/ec2-instance-compromise", "inputs": { "instance": other, "incident": "INC-A2" } }).to_string();
    let reads = ["/v1/playbooks".to_string(), "/v1/actions".into(), "/v1/runs".into(), format!("/v1/runs/{run_id}"), format!("/v1/runs/{run_id}/journal")];
    for (role, token) in &tokens {
        for path in &reads {
            let answer = server.request("GET", path, Some(token), None).await;
            assert_eq!(answer.status, 200, "{role} GET {path}: {:?}", answer.body);
        }
        let may_plan = matches!(*role, "responder" | "admin");
        let answer = server.request("POST", "/v1/plans", Some(token), Some(&plan_body)).await;
        assert_eq!(answer.status, if may_plan { 201 } else { 403 }, "{role} POST /v1/plans: {:?}", answer.body);
    }
    for (token, what) in [(None, "no token"), (Some("ctn_unknown"), "an unknown token")] {
        for path in &reads {
            let answer = server.request("GET", path, token, None).await;
            assert_eq!(answer.status, 401, "{what}: GET {path}");
            assert_eq!(answer.body["code"], "unauthorized");
            assert!(answer.body["request_id"].as_str().is_some_and(|id| answer.headers.contains(id)), "{:?}", answer);
        }
    }

    // The actions list each action's options.
    let actions = server.request("GET", "/v1/actions", Some(&tokens[0].1), None).await.body;
    let ec2 = actions["providers"][0]["resource_types"].as_array().unwrap().iter().find(|t| t["resource_type"] == "aws.ec2.instance").expect("aws.ec2.instance");
    let isolate = ec2["actions"].as_array().unwrap().iter().find(|a| a["action"] == "isolate").expect("isolate on aws.ec2.instance");
    assert!(isolate["options"].as_array().unwrap().contains(&json!("sever_tracked_connections")), "{isolate}");

    // The role is decided before the body is read: a viewer's malformed body is a 403.
    let viewer = &tokens[0].1;
    let responder = &tokens[1].1;
    assert_eq!(server.request("POST", "/v1/plans", Some(viewer), Some("{not json")).await.status, 403);
    let malformed = server.request("POST", "/v1/plans", Some(responder), Some(r#"{"inputs": {}}"#)).await;
    assert_eq!(malformed.status, 400, "{:?}", malformed.body);

    // The scheme name is case-insensitive, and a 401 names the scheme.
    let lower = server.request_with("GET", "/v1/runs", None, &[("authorization", &format!("bearer {viewer}"))], None).await;
    assert_eq!(lower.status, 200, "{:?}", lower.body);
    let anonymous = server.request("GET", "/v1/runs", None, None).await;
    assert!(anonymous.headers.contains("www-authenticate: bearer"), "{}", anonymous.headers);
    // A body over the limit is a 413.
    let huge = format!(r#"{{"playbook": "aws/ec2-instance-compromise", "inputs": {{"incident": "{}"}}}}"#, "x".repeat(300 * 1024));
    let too_large = server.request("POST", "/v1/plans", Some(responder), Some(&huge)).await;
    assert_eq!((too_large.status, too_large.body["code"].as_str()), (413, Some("payload_too_large")), "{:?}", too_large.body);
    assert!(malformed.body["message"].as_str().unwrap().contains("missing field `playbook`"), "{:?}", malformed.body);
    let bad_input = server.request("POST", "/v1/plans", Some(responder), Some(r#"{"playbook": "aws/ec2-instance-compromise", "inputs": {"instance": "i-nope"}}"#)).await;
    assert_eq!(bad_input.status, 422, "{:?}", bad_input.body);
    assert!(bad_input.body["message"].as_str().unwrap().contains("i-nope"), "{:?}", bad_input.body);
    let escape = server.request("POST", "/v1/plans", Some(responder), Some(r#"{"playbook": "../etc/passwd"}"#)).await;
    assert_eq!(escape.status, 400, "{:?}", escape.body);

    // A plan over HTTP is the CLI's plan, and sends no changing request.
    let before = proxy.seen().len();
    let plan = server.request("POST", "/v1/plans", Some(responder), Some(&plan_body)).await;
    assert_eq!(plan.status, 201);
    assert_eq!(plan.body["plan"]["playbook"]["name"], "ec2-instance-compromise");
    assert!(plan.body["digest"].as_str().is_some_and(|d| d.len() == 64));
    let isolate = plan.body["plan"]["steps"].as_array().unwrap().iter().find(|s| s["id"] == "isolate").unwrap();
    assert_eq!(isolate["targets"][0]["target"]["id"], other.as_str());
    assert!(!isolate["targets"][0]["operations"].as_array().unwrap().is_empty(), "{isolate:#}");
    let seen = proxy.seen();
    assert!(seen.len() > before, "the plan read through the proxy");
    for request in &seen[before..] {
        let action = request.action.as_str();
        let read = ["Describe", "Get", "List"].iter().any(|p| action.starts_with(p)) || action == "SimulatePrincipalPolicy";
        assert!(read || request.body.contains("DryRun=true"), "the plan sent {action}: {}", request.body);
    }

    // Runs: filters and paging.
    let listed = server.request("GET", "/v1/runs?status=succeeded&limit=1", Some(viewer), None).await;
    assert_eq!(listed.body["runs"][0]["run_id"], run_id.as_str(), "{:?}", listed.body);
    let bad_status = server.request("GET", "/v1/runs?status=done", Some(viewer), None).await;
    assert_eq!(bad_status.status, 400);
    assert!(bad_status.body["message"].as_str().unwrap().contains("`done`"));
    let missing = server.request("GET", "/v1/runs/run-19990101T000000Z-000000", Some(viewer), None).await;
    assert_eq!((missing.status, missing.body["code"].as_str()), (404, Some("not_found")));

    // Metrics: runs by status, requests by route, and the engine's cloud work.
    assert_eq!(server.request("GET", "/metrics", None, None).await.status, 401);
    let metrics = server.request("GET", "/metrics", Some(viewer), None).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body.as_str().expect("Prometheus text");
    assert!(text.contains("contain_runs{status=\"succeeded\"} 1"), "{text}");
    assert!(text.contains("contain_http_requests_total{method=\"POST\",route=\"/v1/plans\",status=\"201\"}"), "{text}");
    assert!(text.contains("contain_http_requests_total{method=\"GET\",route=\"/v1/runs/{id}\",status=\"200\"}"), "{text}");
    assert!(text.contains("# TYPE contain_cloud_failures_total counter"), "{text}");

    // No token appears in the server's log.
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("request"), "the server logs requests: {log}");
    for (_, token) in &tokens {
        assert!(!log.contains(token.as_str()), "a token is in the log");
    }
}

#[tokio::test]
async fn plain_http_only_on_loopback() {
    let harness = Harness::new().await;
    let (tokens_file, _) = tokens(&harness);
    let refused = harness.contain(&["serve", "--listen", "0.0.0.0:0", "--tokens", &tokens_file]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("not a loopback address"), "{}", refused.stderr);

    std::fs::write(&tokens_file, "- { principal: eve, roles: [root], token_sha256: 00 }\n").unwrap();
    let invalid = harness.contain(&["serve", "--tokens", &tokens_file]);
    assert_eq!(invalid.code, 2, "{}", invalid.stderr);
    assert!(invalid.stderr.contains("unknown role `root`"), "{}", invalid.stderr);
}


#[tokio::test]
async fn runs_over_http() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    // Slow the first interface move, so that the run is still going when the next request comes.
    proxy.add_fault(contain_test_estate::Fault::delay("ModifyNetworkInterfaceAttribute", 5_000));
    let (tokens_file, tokens) = tokens(&harness);
    let (viewer, responder) = (&tokens[0].1, &tokens[1].1);
    let server = Server::start(&harness, &proxy.url, &tokens_file);
    let body = json!({ "playbook": "aws/ec2-instance-compromise", "inputs": { "instance": harness.estate.single.instance_id, "incident": "INC-H1" } }).to_string();

    assert_eq!(server.request("POST", "/v1/runs", Some(viewer), Some(&body)).await.status, 403);
    let started = server.request_with("POST", "/v1/runs", Some(responder), &[("idempotency-key", "soar-incident-7")], Some(&body)).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let run_id = started.body["run_id"].as_str().unwrap().to_string();

    // A retry with the same key gets the same run; another request for the same target is a 409.
    let retried = server.request_with("POST", "/v1/runs", Some(responder), &[("idempotency-key", "soar-incident-7")], Some(&body)).await;
    assert_eq!((retried.status, retried.body["run_id"].as_str()), (202, Some(run_id.as_str())), "{:?}", retried.body);
    let second = server.request("POST", "/v1/runs", Some(responder), Some(&body)).await;
    assert_eq!(second.status, 409, "{:?}", second.body);
    assert_eq!(second.body["code"], "target_locked");
    assert!(second.body["message"].as_str().unwrap().contains(&run_id), "{:?}", second.body);

    let finished = wait_for(&server, viewer, &run_id, "succeeded").await;
    assert_eq!(finished["record"]["api_principal"], "responder-user", "{finished:#}");
    assert_eq!(harness.run_ids().len(), 1, "the retry started no second run");
    let journal = server.request("GET", &format!("/v1/runs/{run_id}/journal"), Some(viewer), None).await;
    assert_eq!(journal.body["records"][0]["operator"]["api_principal"], "responder-user");
    assert_eq!(journal.body["intact"], true);

    // The server's engine made the changes, and counts them.
    let metrics = server.request("GET", "/metrics", Some(viewer), None).await;
    let text = metrics.body.as_str().unwrap();
    let value = |line: &str| line.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()).unwrap_or(0.0);
    let changes: f64 = text.lines().filter(|l| l.starts_with("contain_cloud_attempts_total{kind=\"change\",operation=\"ec2.")).map(value).sum();
    assert!(changes > 0.0, "changes by EC2 operation kind: {text}");
    let isolate = text.lines().find(|l| l.starts_with("contain_step_duration_seconds_count{action=\"isolate\"}")).map(value);
    assert_eq!(isolate, Some(1.0), "one isolate step timed: {text}");
    assert!(text.contains("contain_step_duration_seconds_bucket{action=\"isolate\",le=\"+Inf\"} 1"), "{text}");

    // The CLI lists the same run.
    let listed = harness.contain(&["runs", "list", "-o", "json"]);
    assert!(listed.stdout.contains(&run_id), "{}", listed.stdout);

    let rollback = server.request("POST", &format!("/v1/runs/{run_id}/rollback"), Some(responder), Some("")).await;
    assert_eq!(rollback.status, 202, "{:?}", rollback.body);
    wait_for(&server, viewer, &run_id, "rolled_back").await;
    let after = harness.describe().await;
    assert!(after == before, "{}", contain_e2e::diff(&before, &after));
}

/// A server stopped during a run: after the restart the run reads `interrupted`, and its rollback
/// restores the estate.
#[tokio::test]
async fn restart_finds_interrupted_runs() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    proxy.add_fault(contain_test_estate::Fault::delay("ModifyNetworkInterfaceAttribute", 30_000));
    let (tokens_file, tokens) = tokens(&harness);
    let (viewer, responder) = (&tokens[0].1, &tokens[1].1);
    let body = json!({ "playbook": "aws/ec2-instance-compromise", "inputs": { "instance": harness.estate.single.instance_id, "incident": "INC-H2" } }).to_string();

    let server = Server::start(&harness, &proxy.url, &tokens_file);
    let started = server.request("POST", "/v1/runs", Some(responder), Some(&body)).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let run_id = started.body["run_id"].as_str().unwrap().to_string();
    // Wait until the slowed call is in flight, then stop the server abruptly.
    let waited = std::time::Instant::now();
    while !proxy.seen().iter().any(|r| r.action == "ModifyNetworkInterfaceAttribute" && !r.body.contains("DryRun=true")) {
        assert!(waited.elapsed() < std::time::Duration::from_secs(60), "the run never reached its interface move");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(server);

    proxy.clear_faults();
    let server = Server::start(&harness, &proxy.url, &tokens_file);
    let shown = wait_for(&server, viewer, &run_id, "interrupted").await;
    assert!(shown["record"]["steps"].to_string().contains("applied"), "the record says what was applied: {shown:#}");
    let rollback = server.request("POST", &format!("/v1/runs/{run_id}/rollback"), Some(responder), Some("")).await;
    assert_eq!(rollback.status, 202, "{:?}", rollback.body);
    wait_for(&server, viewer, &run_id, "rolled_back").await;
    let after = harness.describe().await;
    assert!(after == before, "{}", contain_e2e::diff(&before, &after));
}

/// SIGTERM lets a run in flight finish before the server stops. A run that a killed server left
/// `interrupted` is resumed over the API, but a finished one is not.
#[tokio::test]
async fn graceful_stop_and_resume() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let (tokens_file, tokens) = tokens(&harness);
    let (viewer, responder) = (&tokens[0].1, &tokens[1].1);
    let body = |instance: &str| json!({ "playbook": "aws/ec2-instance-compromise", "inputs": { "instance": instance, "incident": "INC-G1" } }).to_string();
    let in_flight = |proxy: &FaultProxy| proxy.seen().iter().any(|r| r.action == "ModifyNetworkInterfaceAttribute" && !r.body.contains("DryRun=true") && r.faulted);
    let wait_in_flight = |proxy: &FaultProxy| {
        let waited = std::time::Instant::now();
        while !in_flight(proxy) {
            assert!(waited.elapsed() < std::time::Duration::from_secs(60), "the run never reached its interface move");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };

    // SIGTERM during a slowed call: the run finishes, then the server stops.
    proxy.add_fault(contain_test_estate::Fault::delay("ModifyNetworkInterfaceAttribute", 2_000));
    let server = Server::start(&harness, &proxy.url, &tokens_file);
    let started = server.request("POST", "/v1/runs", Some(responder), Some(&body(&harness.estate.single.instance_id))).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let first = started.body["run_id"].as_str().unwrap().to_string();
    wait_in_flight(&proxy);
    let (code, log) = server.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("waiting up to 120 s for 1 run(s)"), "{log}");
    let listed = harness.contain(&["runs", "show", &first, "-o", "json"]);
    assert_eq!(listed.json()["run"]["status"], "succeeded", "{}", listed.stdout);

    // A server killed during a run leaves it interrupted; the restarted server resumes it.
    proxy.clear_faults();
    proxy.add_fault(contain_test_estate::Fault::delay("ModifyNetworkInterfaceAttribute", 30_000));
    let server = Server::start(&harness, &proxy.url, &tokens_file);
    let started = server.request("POST", "/v1/runs", Some(responder), Some(&body(&harness.estate.double.instance_id))).await;
    let second = started.body["run_id"].as_str().unwrap().to_string();
    wait_in_flight(&proxy);
    drop(server);
    proxy.clear_faults();
    let server = Server::start(&harness, &proxy.url, &tokens_file);
    wait_for(&server, viewer, &second, "interrupted").await;
    let resumed = server.request("POST", &format!("/v1/runs/{second}/resume"), Some(responder), None).await;
    assert_eq!((resumed.status, resumed.body["status"].as_str()), (202, Some("resuming")), "{:?}", resumed.body);
    let finished = wait_for(&server, viewer, &second, "succeeded").await;
    assert!(finished["record"].to_string().contains("responder-user"), "the journal names who resumed it: {finished:#}");
    let again = server.request("POST", &format!("/v1/runs/{first}/resume"), Some(responder), None).await;
    assert_eq!((again.status, again.body["code"].as_str()), (409, Some("not_interrupted")), "{:?}", again.body);
}

/// SIGHUP loads the tokens file again: a token added to it works without a restart, and a
/// broken file leaves the tokens as they were.
#[tokio::test]
async fn tokens_reload_on_hangup() {
    let harness = Harness::new().await;
    let (tokens_file, tokens) = tokens(&harness);
    let server = Server::start(&harness, &harness.endpoint, &tokens_file);
    let created = harness.contain(&["token", "new", "--principal", "late-user", "--roles", "viewer"]);
    let late = created.stdout.trim().to_string();
    let line = created.stderr.lines().find(|l| l.starts_with("- { principal:")).unwrap().to_string();
    assert_eq!(server.request("GET", "/v1/runs", Some(&late), None).await.status, 401);

    let mut file = std::fs::read_to_string(&tokens_file).unwrap();
    file.push_str(&line);
    file.push('\n');
    std::fs::write(&tokens_file, &file).unwrap();
    server.signal("HUP");
    let waited = std::time::Instant::now();
    while server.request("GET", "/v1/runs", Some(&late), None).await.status != 200 {
        assert!(waited.elapsed() < std::time::Duration::from_secs(10), "the new token never worked");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    std::fs::write(&tokens_file, "not: [a tokens list").unwrap();
    server.signal("HUP");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(server.request("GET", "/v1/runs", Some(&tokens[0].1), None).await.status, 200, "a broken file changes nothing");
    assert!(server.log.lock().unwrap().contains("the previous tokens stay"), "the failed reload is logged");
}

/// A playbook marked `approval: required` waits for a second person: the requester cannot
/// approve it, an approver can, and the journal names both.
#[tokio::test]
async fn two_person_approval() {
    let harness = Harness::new().await;
    let dir = harness.state_dir.path().join("approved-playbooks");
    std::fs::create_dir_all(&dir).unwrap();
    let source = std::fs::read_to_string(contain_e2e::workspace_root().join(EC2_PLAYBOOK)).unwrap();
    std::fs::write(dir.join("isolate.yaml"), source.replace("on_failure: rollback", "on_failure: rollback\napproval: required")).unwrap();
    let (tokens_file, tokens) = tokens(&harness);
    let (viewer, responder, approver, admin) = (&tokens[0].1, &tokens[1].1, &tokens[2].1, &tokens[3].1);
    let server = Server::start_with(&harness, &harness.endpoint, &tokens_file, &["--playbooks", dir.to_str().unwrap()]);
    let body = |instance: &str| json!({ "playbook": "isolate", "inputs": { "instance": instance, "incident": "INC-P1" } }).to_string();

    let requested = server.request("POST", "/v1/runs", Some(responder), Some(&body(&harness.estate.single.instance_id))).await;
    assert_eq!((requested.status, requested.body["status"].as_str()), (202, Some("awaiting_approval")), "{:?}", requested.body);
    let run_id = requested.body["run_id"].as_str().unwrap().to_string();
    let waiting = server.request("GET", &format!("/v1/runs/{run_id}"), Some(viewer), None).await;
    assert_eq!(waiting.body["run"]["status"], "awaiting_approval", "{:?}", waiting.body);
    assert_eq!(waiting.body["run"]["requested_by"], "responder-user");
    assert!(harness.run_ids().is_empty(), "nothing is journaled, so nothing changed, before approval");

    // A responder may not approve; an admin may not approve the run it asked for itself.
    assert_eq!(server.request("POST", &format!("/v1/runs/{run_id}/approve"), Some(responder), Some("")).await.status, 403);
    let own = server.request("POST", "/v1/runs", Some(admin), Some(&body(&harness.estate.double.instance_id))).await;
    let own_id = own.body["run_id"].as_str().unwrap().to_string();
    let refused = server.request("POST", &format!("/v1/runs/{own_id}/approve"), Some(admin), Some("")).await;
    assert_eq!((refused.status, refused.body["code"].as_str()), (403, Some("two_person_rule")), "{:?}", refused.body);
    let rejected = server.request("POST", &format!("/v1/runs/{own_id}/reject"), Some(approver), Some("")).await;
    assert_eq!((rejected.status, rejected.body["status"].as_str()), (200, Some("rejected")), "{:?}", rejected.body);

    // A restart of the server keeps the waiting run, and the rejected one.
    drop(server);
    let server = Server::start_with(&harness, &harness.endpoint, &tokens_file, &["--playbooks", dir.to_str().unwrap()]);
    let listed = server.request("GET", "/v1/runs", Some(viewer), None).await;
    let pending = listed.body["pending"].as_array().unwrap();
    let status_of = |id: &str| pending.iter().find(|p| p["run_id"] == id).map(|p| p["status"].clone());
    assert_eq!(status_of(&run_id), Some(json!("awaiting_approval")), "{:?}", listed.body);
    assert_eq!(status_of(&own_id), Some(json!("rejected")), "{:?}", listed.body);
    assert!(pending.iter().all(|p| p.get("plan").is_none()), "the plan stays out of the listing");

    let approved = server.request("POST", &format!("/v1/runs/{run_id}/approve"), Some(approver), Some("")).await;
    assert_eq!(approved.status, 202, "{:?}", approved.body);
    let finished = wait_for(&server, viewer, &run_id, "succeeded").await;
    assert_eq!(finished["record"]["api_principal"], "responder-user");
    assert_eq!(finished["record"]["approver"], "approver-user");
    let journal = server.request("GET", &format!("/v1/runs/{run_id}/journal"), Some(viewer), None).await;
    assert_eq!(journal.body["records"][0]["operator"]["approved_by"], "approver-user");
    assert_eq!(harness.run_ids(), [run_id.clone()], "the rejected run never started");
    let after = server.request("GET", "/v1/runs", Some(viewer), None).await;
    assert!(!after.body["pending"].to_string().contains(&run_id), "the approved run waits no more: {:?}", after.body);
}

/// An `Idempotency-Key` outlives a restart of the server: the retry gets the same run.
#[tokio::test]
async fn idempotency_keys_survive_restart() {
    let harness = Harness::new().await;
    let (tokens_file, tokens) = tokens(&harness);
    let (viewer, responder) = (&tokens[0].1, &tokens[1].1);
    let body = json!({ "playbook": "aws/ec2-instance-compromise", "inputs": { "instance": harness.estate.single.instance_id, "incident": "INC-K1" } }).to_string();
    let key = [("idempotency-key", "INC-K1-contain")];

    let server = Server::start(&harness, &harness.endpoint, &tokens_file);
    let first = server.request_with("POST", "/v1/runs", Some(responder), &key, Some(&body)).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    let run_id = first.body["run_id"].as_str().unwrap().to_string();
    wait_for(&server, viewer, &run_id, "succeeded").await;
    drop(server);

    let server = Server::start(&harness, &harness.endpoint, &tokens_file);
    let retried = server.request_with("POST", "/v1/runs", Some(responder), &key, Some(&body)).await;
    assert_eq!(retried.status, 202, "{:?}", retried.body);
    assert_eq!(retried.body["run_id"].as_str(), Some(run_id.as_str()), "{:?}", retried.body);
    assert_eq!(retried.body["replayed"], true);
    assert_eq!(retried.body["status"], "succeeded", "the run's status now, not when it started");
    assert_eq!(harness.run_ids(), [run_id.clone()], "one run");

    // The same key with another request is refused, naming the run the key started.
    let other = json!({ "playbook": "aws/ec2-instance-compromise", "inputs": { "instance": harness.estate.single.instance_id, "incident": "INC-K2" } }).to_string();
    let reused = server.request_with("POST", "/v1/runs", Some(responder), &key, Some(&other)).await;
    assert_eq!((reused.status, reused.body["code"].as_str()), (422, Some("idempotency_key_reused")), "{:?}", reused.body);
    assert!(reused.body["message"].as_str().unwrap().contains(&run_id), "{:?}", reused.body);
}

/// Webhooks: a receiver on 127.0.0.1 gets the run's state change, signed, after a first
/// delivery attempt that it refuses.
#[tokio::test]
async fn webhook_delivery() {
    let harness = Harness::new().await;
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/contain", receiver.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        let mut calls = 0;
        while let Ok((mut stream, _)) = receiver.accept().await {
            calls += 1;
            let mut raw = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read until the body is complete: the content-length header gives its size.
            loop {
                let read = stream.read(&mut chunk).await.unwrap_or(0);
                raw.extend_from_slice(&chunk[..read]);
                let text = String::from_utf8_lossy(&raw).to_string();
                let complete = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                    head.lines().find_map(|l| l.to_lowercase().strip_prefix("content-length: ").map(str::to_string)).and_then(|v| v.trim().parse::<usize>().ok()) == Some(body.len())
                });
                if read == 0 || complete {
                    break;
                }
            }
            // The first delivery is refused, to see it retried.
            let answer = if calls == 1 { "HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n" } else { "HTTP/1.1 204 No Content\r\n\r\n" };
            let _ = stream.write_all(answer.as_bytes()).await;
            if calls > 1 {
                sink.lock().unwrap().push(String::from_utf8_lossy(&raw).to_string());
            }
        }
    });

    let (tokens_file, tokens) = tokens(&harness);
    let secret = "webhook-secret-for-the-test-3f1a";
    let server = Server::start_env(&harness, &harness.endpoint, &tokens_file, &["--webhook", &url], &[("CONTAIN_WEBHOOK_SECRET", secret)]);

    let body = json!({ "playbook": "aws/ec2-instance-compromise", "inputs": { "instance": harness.estate.single.instance_id, "incident": "INC-W1" } }).to_string();
    let started = server.request("POST", "/v1/runs", Some(&tokens[1].1), Some(&body)).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let run_id = started.body["run_id"].as_str().unwrap().to_string();

    let waited = std::time::Instant::now();
    let delivered = loop {
        if let Some(request) = received.lock().unwrap().first().cloned() {
            break request;
        }
        assert!(waited.elapsed() < std::time::Duration::from_secs(60), "no webhook arrived");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (head, payload) = delivered.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /hooks/contain "), "{head}");
    let header = head.lines().find_map(|l| l.strip_prefix("x-contain-signature: ")).expect("a signature header");
    let timestamp: u64 = header.strip_prefix("t=").and_then(|r| r.split(',').next()).unwrap().parse().unwrap();
    assert_eq!(header, contain_server::webhooks::signature(secret.as_bytes(), timestamp, payload), "the signature checks out");
    assert_ne!(header, contain_server::webhooks::signature(b"another secret of sixteen", timestamp, payload));
    let event: Value = serde_json::from_str(payload).unwrap();
    assert_eq!((event["event"].as_str(), event["run_id"].as_str(), event["detail"]["status"].as_str()), (Some("run.finished"), Some(run_id.as_str()), Some("succeeded")));
}
