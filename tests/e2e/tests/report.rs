//! `contain report`: the incident record of a run that failed and was rolled back, of a run
//! whose journal was edited afterwards, and the exit statuses for runs it cannot report.

use contain_e2e::{EC2_PLAYBOOK, Harness};
use contain_test_estate::{Effect, Fault, FaultProxy};
use serde_json::Value;

/// Fails every ModifyNetworkInterfaceAttribute call on one interface, except the permission
/// pre-flight's dry runs.
fn fail_interface(proxy: &FaultProxy, interface_id: &str) {
    proxy.add_fault(Fault {
        body_contains: vec!["Action=ModifyNetworkInterfaceAttribute".into(), format!("NetworkInterfaceId={interface_id}")],
        body_lacks: vec!["DryRun=true".into()],
        body: None,
        skip: 0,
        times: 100,
        status: 400,
        code: "InvalidParameterValue".into(),
        message: "injected by the test proxy".into(),
        effect: Effect::Answer,
    });
}

fn records_of<'j>(journal: &'j [Value], kind: &str) -> Vec<&'j Value> {
    journal.iter().filter(|r| r["kind"] == kind).collect()
}

/// Formats a journal time (RFC 3339, any sub-second digits) as the Markdown shows it, in milliseconds.
fn millis(time: &str) -> String {
    let time = time.strip_suffix('Z').expect("journal times are UTC");
    let (seconds, fraction) = time.split_once('.').unwrap_or((time, ""));
    format!("{seconds}.{:0<3}Z", &fraction[..fraction.len().min(3)])
}

/// Returns the Markdown from `## title` to the next `## ` heading.
fn section<'m>(markdown: &'m str, title: &str) -> &'m str {
    let heading = format!("\n## {title}\n");
    let start = markdown.find(&heading).unwrap_or_else(|| panic!("no section {title} in:\n{markdown}")) + 1;
    let end = markdown[start + 3..].find("\n## ").map_or(markdown.len(), |i| start + 3 + i);
    &markdown[start..end]
}

/// Returns the Markdown list item of one operation, with its sub-items.
fn operation_item<'m>(markdown: &'m str, operation_id: &str) -> &'m str {
    let changes = section(markdown, "Changes by step and target");
    let marker = format!("operation `{operation_id}`");
    let at = changes.find(&marker).unwrap_or_else(|| panic!("no operation {operation_id} in:\n{changes}"));
    let start = changes[..at].rfind("\n- **").map_or(0, |i| i + 1);
    let end = changes[at..].find("\n#").map_or(changes.len(), |i| at + i);
    let end = changes[at..end].find("\n- **").map_or(end, |i| at + i);
    &changes[start..end]
}

/// Finds the JSON record of one operation among the targets of a step.
fn operation_json<'r>(record: &'r Value, step: &str, operation_id: &str) -> &'r Value {
    let step_json = record["steps"].as_array().unwrap().iter().find(|s| s["id"] == step).unwrap_or_else(|| panic!("no step {step}"));
    step_json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["operations"].as_array().unwrap())
        .find(|o| o["id"] == operation_id)
        .unwrap_or_else(|| panic!("no operation {operation_id} in step {step}"))
}

#[tokio::test]
async fn report_of_failed_rolled_back_run() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let second = harness.estate.double.interface_ids[1].clone();
    fail_interface(&proxy, &second);
    let instance_id = harness.estate.double.instance_id.clone();
    let instance = format!("instance={instance_id}");

    let run = harness.contain_via(&proxy.url, &["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-9", "--yes", "-o", "json"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["status"], "rolled_back");
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let journal = harness.journal(&run_id);

    let markdown = harness.contain(&["report", &run_id]);
    assert_eq!(markdown.code, 0, "a report is written whatever the run's status: {}", markdown.stderr);
    let md = markdown.stdout.as_str();
    let json = harness.contain(&["report", &run_id, "--output", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let record = json.json();

    // The header, from the run_started record.
    let started = &journal[0];
    assert_eq!(started["kind"], "run_started");
    assert_eq!(record["run_id"], run_id.as_str());
    assert_eq!(record["status"], "rolled_back");
    assert_eq!(record["playbook"], started["playbook"]);
    assert_eq!(record["plan_digest"], started["plan_digest"]);
    assert_eq!(record["inputs"]["instance"], instance_id.as_str());
    assert_eq!(record["started_at"], started["time"]);
    assert_eq!(record["finished_at"], journal.last().unwrap()["time"]);
    assert!(record["duration_ms"].as_i64().unwrap() >= 0);
    let summary = section(md, "Summary");
    assert!(summary.contains("**Final status:** rolled_back"), "{summary}");
    assert!(summary.contains(started["playbook"]["digest"].as_str().unwrap()), "{summary}");
    assert!(summary.contains(started["plan_digest"].as_str().unwrap()), "{summary}");
    assert!(summary.contains(&millis(started["time"].as_str().unwrap())), "{summary}");
    assert!(!md.contains("BROKEN"), "{md}");

    // Who ran it: the local user and cloud identity, the rollback, and the places left empty.
    let principal = started["operator"]["cloud_identities"][0]["principal"].as_str().unwrap();
    let operators = section(md, "Who ran it");
    assert!(operators.contains("**Started the run:** local user `responder`"), "{operators}");
    assert!(operators.contains(principal), "{operators}");
    assert!(operators.contains("**Started a rollback:** local user `responder`"), "{operators}");
    assert!(operators.contains("**API principal:** none recorded"), "{operators}");
    assert!(operators.contains("**Approver:** none recorded"), "{operators}");
    assert_eq!(record["operators"][0]["role"], "started_run");
    assert_eq!(record["operators"][0]["local_user"], "responder");
    assert_eq!(record["operators"][0]["cloud_identities"][0]["principal"], principal);
    assert_eq!(record["operators"][1]["role"], "started_rollback");
    assert_eq!(record["api_principal"], Value::Null);
    assert_eq!(record["approver"], Value::Null);

    // The failed target, with its error and what the failure left.
    let failed = records_of(&journal, "step_failed");
    assert_eq!(failed.len(), 1);
    let failed_id = failed[0]["operation_id"].as_str().unwrap();
    assert_eq!(failed_id, format!("interface:{second}"));
    let item = operation_item(md, failed_id);
    assert!(item.contains("**FAILED**"), "{item}");
    assert!(item.contains("injected by the test proxy"), "{item}");
    assert!(item.contains("the failed call changed nothing"), "{item}");
    let changes = section(md, "Changes by step and target");
    assert!(changes.contains(&format!("#### Target `{instance_id}")), "{changes}");
    let failed_json = operation_json(&record, "isolate", failed_id);
    let outcome = failed_json["outcomes"].as_array().unwrap().last().unwrap();
    assert_eq!(outcome["outcome"], "failed");
    assert!(outcome["error"].as_str().unwrap().contains("injected by the test proxy"), "{outcome}");
    assert_eq!(outcome["left_change"], false);
    assert_eq!(outcome["time"], failed[0]["time"]);

    // Every reverted operation, with the time of its revert.
    let reverted = records_of(&journal, "reverted");
    assert!(reverted.len() >= 3, "the snapshot and the isolate operations before the failure: {reverted:?}");
    for revert in &reverted {
        let id = revert["operation_id"].as_str().unwrap();
        let step = revert["step"].as_str().unwrap();
        let item = operation_item(md, id);
        let expected = format!("reverted at {} (record {})", millis(revert["time"].as_str().unwrap()), revert["seq"]);
        assert!(item.contains(&expected), "operation {id} lacks `{expected}`:\n{item}");
        let rollback = &operation_json(&record, step, id)["rollback"];
        assert_eq!(rollback[0]["outcome"], "reverted", "{id}: {rollback}");
        assert_eq!(rollback[0]["time"], revert["time"], "{id}");
        assert_eq!(rollback[0]["seq"], revert["seq"], "{id}");
    }
    let rollbacks = section(md, "Rollbacks");
    assert!(rollbacks.contains("on_failure is rollback"), "{rollbacks}");
    assert_eq!(record["rollbacks"][0]["status"], "rolled_back");

    // The evidence snapshots, from the applied values.
    let snapshot_ids: Vec<&str> = records_of(&journal, "step_applied")
        .iter()
        .flat_map(|r| r["applied"]["evidence"].as_array().into_iter().flatten())
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(!snapshot_ids.is_empty(), "the snapshot step keeps evidence");
    let evidence = section(md, "Evidence kept");
    let listed: Vec<&str> = record["evidence"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(listed, snapshot_ids);
    for id in &snapshot_ids {
        assert!(evidence.contains(&format!("`{id}`")), "{id} missing from:\n{evidence}");
        assert!(id.starts_with("snap-"), "{id}");
    }
    let timeline = section(md, "Timeline (UTC)");
    assert!(timeline.contains(&format!("reverted (the evidence stays: {})", snapshot_ids.join(", "))), "{timeline}");
    assert_eq!(record["irreversible"], Value::Array(Vec::new()));

    // The timeline has one line per record, and the journal check passes.
    assert_eq!(record["timeline"].as_array().unwrap().len(), journal.len());
    assert!(record["timeline"].as_array().unwrap().iter().all(|e| e["verified"] == true));
    assert_eq!(timeline.lines().filter(|l| l.starts_with("- `")).count(), journal.len(), "{timeline}");
    assert_eq!(record["verification"]["intact"], true);
    assert_eq!(record["verification"]["broken"], Value::Null);
    assert_eq!(record["verification"]["verified_records"], journal.len());
    let check = section(md, "Journal check");
    assert!(check.contains(&format!("**Hash chain:** intact: each of the {} records", journal.len())), "{check}");
    assert!(check.contains("**Torn last line:** none"), "{check}");
}

#[tokio::test]
async fn report_of_edited_journal_names_record() {
    let harness = Harness::new().await;
    let instance = format!("instance={}", harness.estate.single.instance_id);
    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-10", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();

    // Change one byte of a middle record: the last digit of its time, which keeps it valid JSON.
    let path = harness.journal_path(&run_id);
    let mut lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(str::to_string).collect();
    let total = lines.len();
    assert!(total >= 5, "{total} records");
    let edited = total / 2;
    let edited_seq = edited + 1;
    let digit_at = lines[edited].find("Z\",").expect("the time ends in Z") - 1;
    let digit = lines[edited].as_bytes()[digit_at];
    assert!(digit.is_ascii_digit());
    let replacement = if digit == b'9' { "0" } else { "9" };
    lines[edited].replace_range(digit_at..digit_at + 1, replacement);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let markdown = harness.contain(&["report", &run_id]);
    assert_eq!(markdown.code, 0, "a broken journal still gets a report: {}", markdown.stderr);
    let md = markdown.stdout.as_str();
    let top = &md[..md.find("\n## ").unwrap()];
    assert!(top.contains(&format!("hash chain is BROKEN at line {}", edited_seq + 1)), "{top}");
    assert!(top.contains(&format!("hash of record {edited_seq}:")), "the edited record is named:\n{top}");
    assert!(top.contains(&format!("Lines {edited_seq} and after are not verified")), "{top}");
    let timeline = section(md, "Timeline (UTC)");
    assert_eq!(timeline.matches("**UNVERIFIED:**").count(), total - edited, "{timeline}");
    assert!(section(md, "Summary").contains("**Final status:** interrupted (from the verified records only"), "{md}");

    let json = harness.contain(&["report", &run_id, "-o", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let record = json.json();
    let verification = &record["verification"];
    assert_eq!(verification["intact"], false);
    assert_eq!(verification["broken"]["line"], edited_seq + 1);
    assert_eq!(verification["broken"]["first_unverified_line"], edited_seq);
    assert!(verification["broken"]["message"].as_str().unwrap().contains(&format!("hash of record {edited_seq}:")), "{verification}");
    assert_eq!(verification["verified_records"], edited);
    let timeline = record["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), total, "the timeline keeps every line");
    for entry in timeline {
        let verified = entry["line"].as_u64().unwrap() < edited_seq as u64;
        assert_eq!(entry["verified"], verified, "{entry}");
    }
    assert_eq!(record["status"], "interrupted", "the run_finished record is after the break, so unverified");

    let verify = harness.contain(&["journal", "verify", &run_id]);
    assert_eq!(verify.code, 1, "journal verify agrees that the chain is broken: {}", verify.stdout);
}

#[tokio::test]
async fn report_rejects_unknown_and_unreadable_runs() {
    let harness = Harness::new().await;

    let invalid = harness.contain(&["report", "../../etc/passwd"]);
    assert_eq!(invalid.code, 2, "{}", invalid.stderr);
    assert!(invalid.stderr.contains("invalid run id `../../etc/passwd`"), "{}", invalid.stderr);

    let unknown = harness.contain(&["report", "run-nope", "-o", "json"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("run run-nope has no journal"), "{}", unknown.stderr);
    assert!(unknown.stdout.is_empty(), "{}", unknown.stdout);

    // A directory where the journal file should be cannot be read.
    std::fs::create_dir_all(harness.journal_path("run-dir")).unwrap();
    let unreadable = harness.contain(&["report", "run-dir"]);
    assert_eq!(unreadable.code, 1, "{}", unreadable.stderr);
    assert!(unreadable.stderr.contains("cannot read the journal of run run-dir"), "{}", unreadable.stderr);
}

/// An explicit rollback names its cloud identity, and the duration covers the run alone.
#[tokio::test]
async fn report_names_rollback_identity() {
    let harness = Harness::new().await;
    let instance = format!("instance={}", harness.estate.single.instance_id);
    let started = std::time::Instant::now();
    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-R4", "--yes", "-o", "json"]);
    let run_wall = started.elapsed().as_millis() as i64;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let rollback = harness.contain(&["rollback", &run_id, "--yes"]);
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);

    let report = harness.contain(&["report", &run_id, "--output", "json"]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let record = report.json();
    let operators = record["operators"].as_array().unwrap();
    let rolled_back_by = operators.iter().find(|o| o["role"] == "started_rollback").unwrap_or_else(|| panic!("{operators:#?}"));
    let principal = rolled_back_by["cloud_identities"][0]["principal"].as_str().unwrap_or_default();
    assert!(principal.contains("assumed-role/contain-test"), "{rolled_back_by:#}");
    let duration = record["duration_ms"].as_i64().unwrap();
    // The journal's span of the run lies within the process's lifetime; the rollback 1.5 s later
    // does not.
    assert!(duration <= run_wall, "the run's duration ({duration} ms) leaves out the rollback: the run took {run_wall} ms");
}
