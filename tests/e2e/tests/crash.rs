//! The crash matrix: the process is killed (SIGKILL) right after the k-th journal record, or
//! right after the k-th cloud call that changes something, for every k, in apply and in
//! rollback. After each crash the journal must be intact, `contain rollback` must bring the
//! estate back to its description before the run, and `contain resume` must finish the
//! containment instead.
//!
//! Before the rollback, every resource the crash left changed must be named in the journal.
//!
//! `CONTAIN_CRASH_SAMPLE=n` tests every n-th k only (default 1: every k).

use contain_e2e::{Harness, Invocation, diff};
use serde_json::Value;

const PLAYBOOK: &str = "tests/e2e/playbooks/crash-matrix.yaml";

/// SIGKILL's number on Linux.
const SIGKILL: i32 = 9;

/// The maximum number of crash points a run of the matrix playbook may have; more means a loop.
const MAX_POINTS: usize = 200;

#[derive(Debug, Clone, Copy)]
enum Point {
    Record,
    Call,
}

impl Point {
    fn variable(self) -> &'static str {
        match self {
            Point::Record => "CONTAIN_CRASH_AFTER_RECORD",
            Point::Call => "CONTAIN_CRASH_AFTER_CALL",
        }
    }
}

struct Matrix {
    harness: Harness,
    inputs: Vec<String>,
    /// The estate before any run.
    before: Value,
}

impl Matrix {
    async fn new() -> Matrix {
        let harness = Harness::new().await;
        let estate = &harness.estate;
        let inputs = vec![
            format!("instances={},{}", estate.single.instance_id, estate.double.instance_id),
            format!("vpc={}", estate.vpc_id),
            "incident=INC-CRASH".to_string(),
        ];
        let before = harness.describe().await;
        Matrix { harness, inputs, before }
    }

    fn args<'a>(&'a self, command: &'a str) -> Vec<&'a str> {
        let mut args = vec![command, PLAYBOOK];
        for input in &self.inputs {
            args.extend(["-i", input.as_str()]);
        }
        args.extend(["--yes", "-o", "json"]);
        args
    }

    /// Runs the playbook with a crash point set, and returns the run's id and whether the
    /// process was killed.
    fn run_with_crash(&self, point: Point, k: usize) -> (String, Invocation) {
        let known = self.harness.run_ids();
        let k_text = k.to_string();
        let run = self.harness.contain_with(&self.harness.endpoint, &[(point.variable(), k_text.as_str())], &self.args("run"));
        let new: Vec<String> = self.harness.run_ids().into_iter().filter(|id| !known.contains(id)).collect();
        assert_eq!(new.len(), 1, "one new journal per run: {new:?}\n{}", run.stderr);
        assert!(
            k > 1 || run.signal == Some(SIGKILL),
            "the contain binary has no crash points: build it with `cargo build --workspace --bins --features contain-cli/crash-points` (scripts/test.sh does)"
        );
        (new[0].clone(), run)
    }

    fn verify(&self, run_id: &str, context: &str) {
        let verify = self.harness.contain(&["journal", "verify", run_id, "-o", "json"]);
        assert_eq!(verify.code, 0, "{context}: the journal of {run_id} is intact: {}{}", verify.stdout, verify.stderr);
    }

    async fn assert_restored(&self, context: &str) {
        let after = self.harness.describe().await;
        assert!(after == self.before, "{context}: the estate differs from before the run:\n{}", diff(&self.before, &after));
    }

    /// Checks that every target of the playbook is contained: a new plan has nothing to change.
    fn assert_contained(&self, context: &str) {
        let mut args = self.args("plan");
        args.retain(|a| *a != "--yes");
        let plan_json = self.harness.contain(&args);
        assert_eq!(plan_json.code, 0, "{context}: {}{}", plan_json.stdout, plan_json.stderr);
        let document = plan_json.json();
        for step in document["plan"]["steps"].as_array().expect("the plan has steps") {
            for target in step["targets"].as_array().expect("steps have targets") {
                let operations = target["operations"].as_array().map(Vec::len).unwrap_or(0);
                assert_eq!(operations, 0, "{context}: step {} still has changes for {}: {target:#}", step["id"], target["target"]["id"]);
            }
        }
    }

    /// Checks that the journal names every resource the crash left changed: by its id, or by its
    /// name for a group whose creation succeeded but was never journaled.
    async fn assert_named(&self, run_id: &str, context: &str) {
        let after = self.harness.describe().await;
        let journal = std::fs::read_to_string(self.harness.journal_path(run_id)).expect("the run has a journal");
        let kinds = after.as_object().expect("the description is an object");
        for (kind, entities) in kinds {
            for entity in entities.as_array().into_iter().flatten() {
                let prior = self.before[kind].as_array().into_iter().flatten().find(|e| e["id"] == entity["id"]);
                if prior == Some(entity) {
                    continue;
                }
                let id = entity["id"].as_str().unwrap_or_default();
                let named = journal.contains(id) || entity["name"].as_str().is_some_and(|name| journal.contains(name));
                assert!(named, "{context}: {kind} {id} changed, but the journal of {run_id} does not name it: {entity:#}");
            }
        }
        for (kind, entities) in self.before.as_object().expect("the description is an object") {
            for entity in entities.as_array().into_iter().flatten() {
                let gone = !after[kind].as_array().into_iter().flatten().any(|e| e["id"] == entity["id"]);
                assert!(!gone || journal.contains(entity["id"].as_str().unwrap_or_default()), "{context}: {kind} {} is gone, unnamed", entity["id"]);
            }
        }
    }

    fn rollback(&self, run_id: &str, context: &str) {
        let rollback = self.harness.contain(&["rollback", run_id, "--yes", "-o", "json"]);
        assert_eq!(rollback.code, 0, "{context}: rollback of {run_id}: {}{}", rollback.stdout, rollback.stderr);
    }
}

fn sample() -> usize {
    std::env::var("CONTAIN_CRASH_SAMPLE").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(1)
}

/// Crashes apply at every k; after each crash rolls back, then crashes again and resumes.
async fn apply_matrix(point: Point) {
    let matrix = Matrix::new().await;
    let mut crashes = 0;
    for k in (1..=MAX_POINTS).step_by(sample()) {
        let context = format!("apply, crash after {point:?} {k}");

        let (run_id, run) = matrix.run_with_crash(point, k);
        if run.signal != Some(SIGKILL) {
            // k is past the run's last crash point: the run finished.
            assert_eq!(run.code, 0, "{context}: the run succeeds: {}{}", run.stdout, run.stderr);
            assert!(crashes > 5, "the matrix crashed only {crashes} times");
            matrix.rollback(&run_id, &context);
            matrix.assert_restored(&context).await;
            eprintln!("apply matrix ({point:?}): {crashes} crash points, every one rolled back and resumed");
            return;
        }
        crashes += 1;
        matrix.verify(&run_id, &context);
        if let Point::Record = point {
            // Other targets may have written their records while the k-th was being synced
            // (group commit), so the journal can contain records past the k-th. Their appends had
            // not returned, so no cloud call followed them.
            let records = matrix.harness.journal(&run_id).len();
            assert!(records >= k, "{context}: every record written before the crash is in the journal: {records} records");
        }
        matrix.assert_named(&run_id, &context).await;
        matrix.rollback(&run_id, &context);
        matrix.assert_restored(&format!("{context}, rolled back")).await;

        // The second run may make fewer calls (the first run's snapshots are kept as evidence,
        // so the second takes none), and so finish before k.
        let (run_id, run) = matrix.run_with_crash(point, k);
        if run.signal != Some(SIGKILL) {
            assert_eq!(run.code, 0, "{context}: the second run succeeds: {}{}", run.stdout, run.stderr);
            matrix.rollback(&run_id, &context);
            matrix.assert_restored(&context).await;
            continue;
        }
        let resume = matrix.harness.contain(&["resume", &run_id, "--yes", "-o", "json"]);
        assert_eq!(resume.code, 0, "{context}: resume of {run_id}: {}{}", resume.stdout, resume.stderr);
        assert_eq!(resume.json()["status"], "succeeded", "{context}");
        matrix.verify(&run_id, &format!("{context}, resumed"));
        matrix.assert_contained(&format!("{context}, resumed"));
        matrix.rollback(&run_id, &format!("{context}, resumed"));
        matrix.assert_restored(&format!("{context}, resumed and rolled back")).await;
    }
    panic!("the run still crashed after {MAX_POINTS} points");
}

/// Runs the playbook, then crashes its rollback at every k and rolls back again.
async fn rollback_matrix(point: Point) {
    let matrix = Matrix::new().await;
    let mut crashes = 0;
    for k in (1..=MAX_POINTS).step_by(sample()) {
        let context = format!("rollback, crash after {point:?} {k}");
        let run = matrix.harness.contain(&matrix.args("run"));
        assert_eq!(run.code, 0, "{context}: the run succeeds: {}{}", run.stdout, run.stderr);
        let run_id = run.json()["run_id"].as_str().expect("the report names the run").to_string();

        let k_text = k.to_string();
        let rollback = matrix.harness.contain_with(&matrix.harness.endpoint, &[(point.variable(), k_text.as_str())], &["rollback", &run_id, "--yes", "-o", "json"]);
        if rollback.signal != Some(SIGKILL) {
            assert_eq!(rollback.code, 0, "{context}: the rollback succeeds: {}{}", rollback.stdout, rollback.stderr);
            assert!(crashes > 5, "the matrix crashed only {crashes} times");
            matrix.assert_restored(&context).await;
            eprintln!("rollback matrix ({point:?}): {crashes} crash points, every one rolled back again");
            return;
        }
        crashes += 1;
        matrix.verify(&run_id, &context);
        matrix.assert_named(&run_id, &context).await;
        let resume = matrix.harness.contain(&["resume", &run_id, "--yes"]);
        assert_eq!(resume.code, 1, "{context}: resume refuses a run whose rollback started: {}{}", resume.stdout, resume.stderr);
        // A crash after the rollback's last record leaves a finished rollback.
        let finished = matrix.harness.journal(&run_id).last().is_some_and(|r| r["kind"] == "rollback_finished");
        let expected = if finished { "it was rolled back" } else { "finish the rollback with `contain rollback`" };
        assert!(resume.stderr.contains(expected), "{context}: {}", resume.stderr);
        matrix.rollback(&run_id, &context);
        matrix.assert_restored(&context).await;
    }
    panic!("the rollback still crashed after {MAX_POINTS} points");
}

#[tokio::test]
async fn crash_after_every_record_of_apply() {
    apply_matrix(Point::Record).await;
}

#[tokio::test]
async fn crash_after_every_call_of_apply() {
    apply_matrix(Point::Call).await;
}

#[tokio::test]
async fn crash_after_every_record_of_rollback() {
    rollback_matrix(Point::Record).await;
}

#[tokio::test]
async fn crash_after_every_call_of_rollback() {
    rollback_matrix(Point::Call).await;
}

/// A crash during a write leaves a torn last line: verify reports it and still calls the journal
/// intact, and resume ignores it, cuts it off and finishes the run.
#[tokio::test]
async fn torn_last_line() {
    let matrix = Matrix::new().await;
    let (run_id, run) = matrix.run_with_crash(Point::Record, 12);
    assert_eq!(run.signal, Some(SIGKILL), "{}", run.stderr);
    let path = matrix.harness.journal_path(&run_id);
    let mut text = std::fs::read_to_string(&path).unwrap();
    // Group commit lets a concurrent target's record reach the file before the crash point's
    // append returns, so the journal contains at least 12 records, not always exactly 12.
    let records = text.lines().count() as u64;
    assert!(records >= 12, "{records} records before the crash");
    text.push_str(&format!("{{\"seq\":{},\"time\":\"2026-12-04T00:00:00Z\",\"prev\":\"ab", records + 1));
    std::fs::write(&path, &text).unwrap();

    let verify = matrix.harness.contain(&["journal", "verify", &run_id, "-o", "json"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    let verdict = verify.json();
    assert_eq!((verdict["intact"].as_bool(), verdict["torn_tail"].as_bool(), verdict["records"].as_u64()), (Some(true), Some(true), Some(records)), "{verdict:#}");
    assert!(verdict["problems"][0].as_str().unwrap().contains("torn last line"), "{verdict:#}");

    let resume = matrix.harness.contain(&["resume", &run_id, "--yes", "-o", "json"]);
    assert_eq!(resume.code, 0, "{}{}", resume.stdout, resume.stderr);
    let after = matrix.harness.contain(&["journal", "verify", &run_id, "-o", "json"]);
    assert_eq!(after.json()["torn_tail"], false, "resume cut the torn line off: {}", after.stdout);
    matrix.assert_contained("resumed after a torn line");
    matrix.rollback(&run_id, "torn line");
    matrix.assert_restored("torn line, rolled back").await;
}
