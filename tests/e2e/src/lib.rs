//! The harness of contain's end-to-end tests: each test gets a moto account of its own with the
//! test estate built in it, a state directory of its own, and runs the `contain` binary as a
//! user would.
//!
//! The tests need a running moto server (scripts/test.sh starts one) and the `contain` binary
//! built next to the test executable (`cargo build --workspace --bins`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use contain_test_estate::{Account, Estate, IamEstate, build, build_iam, describe, describe_iam, fresh_account, moto_endpoint};
use serde_json::Value;

/// The shipped playbook that isolates a compromised EC2 instance.
pub const EC2_PLAYBOOK: &str = "playbooks/aws/ec2-instance-compromise.yaml";

pub struct Harness {
    pub endpoint: String,
    pub account: Account,
    pub ec2: aws_sdk_ec2::Client,
    pub estate: Estate,
    pub state_dir: tempfile::TempDir,
}

/// What one `contain` invocation returned.
#[derive(Debug)]
pub struct Invocation {
    /// The exit status, or -1 when a signal ended the process.
    pub code: i32,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Invocation {
    /// Standard output parsed as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

impl Harness {
    /// Creates a fresh moto account and builds the estate in it.
    pub async fn new() -> Harness {
        let endpoint = moto_endpoint().expect("a loopback moto endpoint");
        let account = fresh_account(&endpoint).await.expect("a fresh moto account");
        let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(&endpoint).await);
        let estate = build(&ec2).await.expect("the estate builds in moto");
        Harness { endpoint, account, ec2, estate, state_dir: tempfile::tempdir().expect("a temporary state directory") }
    }

    /// Builds the IAM estate in this test's account.
    pub async fn build_iam(&self) -> IamEstate {
        build_iam(&self.account, &self.endpoint).await.expect("the IAM estate builds in moto")
    }

    /// Returns an IAM client for this test's account.
    pub async fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.account.sdk_config(&self.endpoint).await)
    }

    /// Describes the IAM state of this test's account.
    pub async fn describe_iam(&self) -> Value {
        describe_iam(&self.iam().await).await.expect("describe IAM")
    }

    /// Writes a playbook into this test's directory and returns its path.
    pub fn write_playbook(&self, name: &str, source: &str) -> String {
        let path = self.state_dir.path().join(name);
        std::fs::write(&path, source).expect("write the playbook");
        path.display().to_string()
    }

    /// Describes the EC2 state of this test's account.
    pub async fn describe(&self) -> Value {
        describe(&self.ec2).await.expect("describe the estate")
    }

    /// Runs `contain` with this test's account and state directory, against `endpoint` (moto
    /// or a proxy in front of it).
    pub fn contain_via(&self, endpoint: &str, args: &[&str]) -> Invocation {
        self.contain_with(endpoint, &[], args)
    }

    /// Like [`Harness::contain_via`], with more environment variables.
    pub fn contain_with(&self, endpoint: &str, env: &[(&str, &str)], args: &[&str]) -> Invocation {
        let mut command = self.command(endpoint, env, args);
        let Output { status, stdout, stderr } = command.output().expect("the contain binary runs");
        Invocation {
            code: status.code().unwrap_or(-1),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            stdout: String::from_utf8_lossy(&stdout).to_string(),
            stderr: String::from_utf8_lossy(&stderr).to_string(),
        }
    }

    /// Builds the `contain` command with this test's account, state directory and environment, for a
    /// test that runs it in the background (`contain serve`).
    pub fn command(&self, endpoint: &str, env: &[(&str, &str)], args: &[&str]) -> Command {
        contain_test_estate::check_loopback(endpoint).expect("a loopback endpoint");
        let mut command = Command::new(contain_binary());
        command.current_dir(workspace_root()).args(args).stdin(Stdio::null()).env_clear();
        for (key, value) in self.account.env(endpoint) {
            command.env(key, value);
        }
        command.env("CONTAIN_STATE_DIR", self.state_dir.path()).env("PATH", std::env::var("PATH").unwrap_or_default());
        command.env("HOME", self.state_dir.path()).env("USER", "responder");
        command.envs(env.iter().copied());
        command
    }

    pub fn contain(&self, args: &[&str]) -> Invocation {
        self.contain_via(&self.endpoint.clone(), args)
    }

    /// Lists the ids of the runs with a journal in this test's state directory.
    pub fn run_ids(&self) -> Vec<String> {
        let dir = self.state_dir.path().join("runs");
        let mut ids: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".jsonl").map(str::to_string)).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub fn journal_path(&self, run_id: &str) -> PathBuf {
        self.state_dir.path().join("runs").join(format!("{run_id}.jsonl"))
    }

    /// Reads and parses the journal records of a run.
    pub fn journal(&self, run_id: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.journal_path(run_id)).expect("the run has a journal");
        text.lines().map(|line| serde_json::from_str(line).expect("each journal line is JSON")).collect()
    }

    /// Reads the security groups of one interface, sorted.
    pub async fn interface_groups(&self, interface_id: &str) -> Vec<String> {
        let output = self.ec2.describe_network_interfaces().network_interface_ids(interface_id).send().await.expect("describe interface");
        let mut groups: Vec<String> = output.network_interfaces()[0].groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect();
        groups.sort();
        groups
    }
}

/// Returns the workspace root, where the playbooks are.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace root exists")
}

/// Finds the `contain` binary: `CONTAIN_BIN`, or `contain` in this test's target directory.
pub fn contain_binary() -> PathBuf {
    if let Ok(path) = std::env::var("CONTAIN_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("tests run from target/PROFILE/deps");
    let binary = profile_dir.join("contain");
    assert!(binary.exists(), "{} does not exist: build it first with `cargo build --workspace --bins`", binary.display());
    binary
}

/// Lists the lines that differ between two descriptions, for assertion messages.
pub fn diff(before: &Value, after: &Value) -> String {
    let before = serde_json::to_string_pretty(before).unwrap_or_default();
    let after = serde_json::to_string_pretty(after).unwrap_or_default();
    let mut out = String::new();
    for (index, (a, b)) in before.lines().zip(after.lines()).enumerate() {
        if a != b {
            out.push_str(&format!("line {index}: - {a}\n         + {b}\n"));
        }
    }
    if before.lines().count() != after.lines().count() {
        out.push_str(&format!("line counts differ: {} before, {} after\n", before.lines().count(), after.lines().count()));
    }
    out
}
