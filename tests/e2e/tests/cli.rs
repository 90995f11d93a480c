//! The command line as users and SOAR scripts see it: exit statuses, JSON output, messages.

use contain_e2e::{EC2_PLAYBOOK, Harness, diff};
use contain_test_estate::FaultProxy;

#[tokio::test]
async fn every_request_names_contain_and_the_run() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let instance = format!("instance={}", harness.estate.single.instance_id);

    let run = harness.contain_via(&proxy.url, &["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-1", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();

    let seen = proxy.seen();
    let product = format!("contain/{}", env!("CARGO_PKG_VERSION"));
    assert!(seen.iter().any(|r| r.action == "ModifyNetworkInterfaceAttribute"), "the run changed an interface");
    for request in &seen {
        assert!(request.user_agent.contains(&product), "{} lacks {product}: {}", request.action, request.user_agent);
        assert!(request.user_agent.contains("contain-run/"), "{} lacks the run id: {}", request.action, request.user_agent);
    }
    // The plan's pre-flight sends some writes with DryRun=true under the plan's id.
    let writes: Vec<_> = seen.iter().filter(|r| !contain_aws::is_read_only_operation(&r.action) && !r.body.contains("DryRun=true")).collect();
    assert!(!writes.is_empty());
    for request in writes {
        assert!(request.user_agent.contains(&format!("contain-run/{run_id}")), "{}: {}", request.action, request.user_agent);
    }
}

#[tokio::test]
async fn run_without_yes_needs_a_terminal() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let instance = format!("instance={}", harness.estate.single.instance_id);

    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-1"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    let after = harness.describe().await;
    assert!(before == after, "{}", diff(&before, &after));
}

#[tokio::test]
async fn invalid_input_sends_no_request() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();

    let bad = harness.contain_via(&proxy.url, &["plan", EC2_PLAYBOOK, "-i", "instance=i-nothex!", "-i", "incident=INC-1"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("`i-nothex!`"), "{}", bad.stderr);
    assert!(bad.stderr.contains("i-0123456789abcdef0"), "the message names the expected form: {}", bad.stderr);

    let missing = harness.contain_via(&proxy.url, &["plan", EC2_PLAYBOOK, "-i", "instance=i-0123456789abcdef0"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("missing required input `incident`"), "{}", missing.stderr);

    let unknown = harness.contain_via(&proxy.url, &["plan", EC2_PLAYBOOK, "-i", "instance=i-0123456789abcdef0", "-i", "incident=x", "-i", "colour=red"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("unknown input `colour`"), "{}", unknown.stderr);
    assert!(unknown.stderr.contains("instance, incident"), "{}", unknown.stderr);

    assert!(proxy.seen().is_empty(), "bad input reached the cloud: {:?}", proxy.seen());
}

#[tokio::test]
async fn missing_instance_fails_the_plan() {
    let harness = Harness::new().await;
    let plan = harness.contain(&["plan", EC2_PLAYBOOK, "-i", "instance=i-0123456789abcdef0", "-i", "incident=INC-1"]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("ERROR"), "{}", plan.stdout);
    assert!(plan.stdout.contains("i-0123456789abcdef0"), "{}", plan.stdout);
}

#[test]
fn validate_reports_every_problem_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "name: bad\ndescription: d\ninputs:\n  instance: { type: aws.ec2.instance, description: i }\non_failure: explode\nsteps:\n  - id: isolate\n    action: isolate\n    target: \"${{ inputs.instance }}\"\n    with: { sever: yes }\n",
    )
    .unwrap();
    let output = std::process::Command::new(contain_e2e::contain_binary()).arg("validate").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let file = path.display().to_string();
    assert!(stderr.contains(&format!("{file}:5:13: invalid on_failure `explode`: valid values are halt, rollback")), "{stderr}");
    assert!(stderr.contains(&format!("{file}:10:13: step `isolate`: unknown option `sever`")), "{stderr}");
}

#[test]
fn shipped_playbook_validates() {
    let output = std::process::Command::new(contain_e2e::contain_binary())
        .current_dir(contain_e2e::workspace_root())
        .args(["validate", EC2_PLAYBOOK])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn runs_list_and_show_json() {
    let harness = Harness::new().await;
    let first = format!("instance={}", harness.estate.single.instance_id);
    let second = format!("instance={}", harness.estate.double.instance_id);
    let one = harness.contain(&["run", EC2_PLAYBOOK, "-i", &first, "-i", "incident=INC-1", "--yes", "-o", "json"]).json();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let two = harness.contain(&["run", EC2_PLAYBOOK, "-i", &second, "-i", "incident=INC-1", "--yes", "-o", "json"]).json();
    let rollback = harness.contain(&["rollback", one["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);

    let list = harness.contain(&["runs", "list", "--output", "json"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let listed = list.json();
    assert_eq!(listed["total"], 2, "the shape of GET /v1/runs: {listed:#}");
    let runs = listed["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run_id"], two["run_id"], "newest first");
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[1]["status"], "rolled_back");
    for run in runs {
        assert_eq!(run["playbook"], "ec2-instance-compromise");
        assert!(run["started_at"].is_string());
        assert_eq!(run["local_user"], "responder");
    }

    let show = harness.contain(&["runs", "show", one["run_id"].as_str().unwrap(), "-o", "json"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let shown = show.json();
    assert_eq!((shown["run"]["status"].as_str(), shown["record"]["status"].as_str()), (Some("rolled_back"), Some("rolled_back")), "the shape of GET /v1/runs/{{id}}");
    let records = shown["records"].as_array().unwrap().clone();
    assert_eq!(records[0]["kind"], "run_started");
    assert_eq!(records[0]["operator"]["local_user"], "responder");
    let identity = &records[0]["operator"]["cloud_identities"][0];
    assert_eq!(identity["account"], harness.account.account_id.as_str());
    assert_eq!(records.last().unwrap()["kind"], "rollback_finished");
    let text = harness.contain(&["runs", "show", one["run_id"].as_str().unwrap()]);
    assert!(text.stdout.contains("run started: playbook ec2-instance-compromise by responder"), "{}", text.stdout);
}

#[tokio::test]
async fn journal_holds_no_secret() {
    let harness = Harness::new().await;
    let instance = format!("instance={}", harness.estate.single.instance_id);
    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-1", "--yes", "-o", "json", "-vv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let journal = std::fs::read_to_string(harness.journal_path(run.json()["run_id"].as_str().unwrap())).unwrap();

    for secret in [&harness.account.secret_access_key, &harness.account.session_token] {
        assert!(!journal.contains(secret.as_str()), "the journal holds a secret");
        assert!(!run.stdout.contains(secret.as_str()), "standard output holds a secret");
        assert!(!run.stderr.contains(secret.as_str()), "the log holds a secret");
    }
}

#[tokio::test]
async fn targets_in_other_account_use_configured_role() {
    let operator = Harness::new().await;
    let other = Harness::new().await;
    let before = other.describe().await;
    let proxy = FaultProxy::start(&operator.endpoint).await.unwrap();
    let config = operator.state_dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[aws.accounts.{}]\nrole_arn = \"arn:aws:iam::{}:role/contain-responder\"\nexternal_id = \"incident-ext-7\"\n", other.account.account_id, other.account.account_id),
    )
    .unwrap();
    let arn = format!("arn:aws:ec2:us-east-1:{}:instance/{}", other.account.account_id, other.estate.single.instance_id);

    let run = operator.contain_via(&proxy.url, &["--config", config.to_str().unwrap(), "run", EC2_PLAYBOOK, "-i", &format!("instance={arn}"), "-i", "incident=INC-70", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let isolated = other.interface_groups(&other.estate.single.interface_ids[0]).await;
    assert_eq!(isolated.len(), 1, "the instance in the other account is isolated");

    // moto 5.2.5 does not check the external id, so the test checks that contain sends it.
    let assumed: Vec<_> = proxy.seen().into_iter().filter(|r| r.action == "AssumeRole").collect();
    assert!(!assumed.is_empty(), "no AssumeRole was sent");
    assert!(assumed.iter().all(|r| r.body.contains("ExternalId=incident-ext-7")), "{:?}", assumed.iter().map(|r| &r.body).collect::<Vec<_>>());
    assert!(assumed.iter().any(|r| r.body.contains(&format!("RoleSessionName=contain-{run_id}"))), "the session name carries the run id");

    let rollback = operator.contain(&["--config", config.to_str().unwrap(), "rollback", &run_id, "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let after = other.describe().await;
    assert!(before == after, "{}", diff(&before, &after));
}

#[tokio::test]
async fn journal_verify_finds_edited_record() {
    let harness = Harness::new().await;
    let instance = format!("instance={}", harness.estate.single.instance_id);
    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-90", "--yes", "-o", "json"]);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();

    let intact = harness.contain(&["journal", "verify", &run_id]);
    assert_eq!(intact.code, 0, "{}{}", intact.stdout, intact.stderr);
    assert!(intact.stdout.contains("intact"), "{}", intact.stdout);

    let path = harness.journal_path(&run_id);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("INC-90", "INC-99", 1);
    assert_ne!(text, edited);
    std::fs::write(&path, edited).unwrap();
    let broken = harness.contain(&["journal", "verify", &run_id, "-o", "json"]);
    assert_eq!(broken.code, 1, "{}{}", broken.stdout, broken.stderr);
    let report = broken.json();
    assert_eq!(report["intact"], false);
    assert!(report["problems"][0].as_str().unwrap().contains("edited"), "{report}");
}

#[tokio::test]
async fn other_account_without_role_is_refused() {
    let operator = Harness::new().await;
    let other = Harness::new().await;
    let before = other.describe().await;
    let arn = format!("arn:aws:ec2:us-east-1:{}:instance/{}", other.account.account_id, other.estate.single.instance_id);

    let plan = operator.contain(&["plan", EC2_PLAYBOOK, "-i", &format!("instance={arn}"), "-i", "incident=INC-71"]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains(&format!("the configuration names no role for {}", other.account.account_id)), "{}", plan.stdout);
    let after = other.describe().await;
    assert!(before == after, "{}", diff(&before, &after));
}

/// `contain rollback --step` reverts the chosen steps' changes only; a step that made no change
/// is refused before anything is read.
#[tokio::test]
async fn rollback_of_chosen_steps() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let estate = &harness.estate;
    let instances = format!("instances={},{}", estate.single.instance_id, estate.double.instance_id);
    let vpc = format!("vpc={}", estate.vpc_id);
    let run = harness.contain(&["run", "tests/e2e/playbooks/crash-matrix.yaml", "-i", &instances, "-i", &vpc, "-i", "incident=INC-S1", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let contained = harness.describe().await;

    let unknown = harness.contain(&["rollback", &run_id, "--step", "isolat", "--yes"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("`isolat`"), "{}", unknown.stderr);
    let valid = unknown.stderr.split_once("made changes are: ").map(|(_, list)| list.trim().to_string()).unwrap_or_default();
    assert!(valid.split(", ").any(|step| step == "isolate"), "names the valid steps: {}", unknown.stderr);
    assert!(harness.describe().await == contained, "nothing changed");

    let partly = harness.contain(&["rollback", &run_id, "--step", "block", "--yes", "-o", "json"]);
    assert_eq!(partly.code, 0, "{}", partly.stderr);
    assert_eq!(partly.json()["status"], "partly_rolled_back");
    let after_block = harness.describe().await;
    assert_eq!(after_block["network_acls"], before["network_acls"]);
    assert_eq!(after_block["network_interfaces"], contained["network_interfaces"], "the isolation stays");

    let rest = harness.contain(&["rollback", &run_id, "--yes", "-o", "json"]);
    assert_eq!(rest.code, 0, "{}", rest.stderr);
    assert_eq!(rest.json()["status"], "rolled_back");
    let after = harness.describe().await;
    assert!(after == before, "{}", contain_e2e::diff(&before, &after));
}
