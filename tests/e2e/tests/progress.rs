//! The progress bar of `contain run`: on a terminal for a run of many targets, and never in
//! output that a program reads.

use std::process::Command;

use contain_e2e::{Harness, contain_binary, workspace_root};

const PLAYBOOK: &str = "tests/e2e/playbooks/crash-matrix.yaml";

#[tokio::test]
async fn progress_bar_on_terminal_only() {
    let harness = Harness::new().await;
    let estate = &harness.estate;
    let instances = format!("instances={},{}", estate.single.instance_id, estate.double.instance_id);
    let vpc = format!("vpc={}", estate.vpc_id);
    let args = ["run", PLAYBOOK, "-i", &instances, "-i", &vpc, "-i", "incident=INC-B1", "--yes"];

    // Python's pty module gives the command a terminal, as a responder's shell would.
    let mut command = Command::new("python3");
    command.args(["-c", "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)"]).arg(contain_binary()).args(args).current_dir(workspace_root()).env_clear();
    for (key, value) in harness.account.env(&harness.endpoint) {
        command.env(key, value);
    }
    // A terminal sets TERM; without it the bar library takes the terminal for a dumb one.
    command.env("TERM", "xterm").env("CONTAIN_STATE_DIR", harness.state_dir.path()).env("HOME", harness.state_dir.path()).env("PATH", std::env::var("PATH").unwrap_or_default());
    let output = command.output().expect("python3 runs");
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{terminal}");
    assert!(terminal.contains("/5 targets"), "a bar over the 5 step targets: {terminal}");
    assert!(terminal.contains("5/5 targets"), "the bar reaches the end: {terminal}");

    // Piped output, as a script reads it, has no bar.
    let rolled_back = harness.contain(&["rollback", &harness.run_ids()[0], "--yes"]);
    assert_eq!(rolled_back.code, 0, "{}", rolled_back.stderr);
    let piped = harness.contain(&args);
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(!piped.stderr.contains("targets"), "{}", piped.stderr);
    assert!(!piped.stdout.contains("/5 targets"), "{}", piped.stdout);
}
