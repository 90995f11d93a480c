//! The README's curl cycle for SOAR integrators, run as written: plan, run, approval by a
//! second person, rollback.

use std::process::{Command, Stdio};

use contain_e2e::{Harness, contain_binary, workspace_root};

/// Returns the shell block between the README's `soar-cycle` markers.
fn readme_cycle() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let (_, rest) = readme.split_once("<!-- soar-cycle:start -->").expect("the README marks the cycle's start");
    let (block, _) = rest.split_once("<!-- soar-cycle:end -->").expect("the README marks the cycle's end");
    let block = block.trim();
    let script = block.strip_prefix("```sh").and_then(|b| b.strip_suffix("```")).expect("one sh code block between the markers");
    script.to_string()
}

#[tokio::test]
async fn readme_curl_cycle() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let dir = harness.state_dir.path().join("soar");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(workspace_root().join("playbooks"), dir.join("playbooks")).unwrap();
    std::fs::write(dir.join("cycle.sh"), readme_cycle()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    // The block runs under `set -e`; whatever way it ends, its server stops.
    let wrapper = "set -euo pipefail; trap 'kill $(jobs -p) 2>/dev/null || true' EXIT; source ./cycle.sh";
    let binaries = contain_binary().parent().unwrap().display().to_string();
    let mut command = Command::new("bash");
    command.args(["-c", wrapper]).current_dir(&dir).env_clear().stdin(Stdio::null());
    for (key, value) in harness.account.env(&harness.endpoint) {
        command.env(key, value);
    }
    command
        .env("PATH", format!("{binaries}:{}", std::env::var("PATH").unwrap_or_default()))
        .env("HOME", harness.state_dir.path())
        .env("CONTAIN_STATE_DIR", harness.state_dir.path())
        .env("INSTANCE", &harness.estate.single.instance_id)
        .env("PORT", port.to_string());
    let output = tokio::time::timeout(std::time::Duration::from_secs(180), tokio::process::Command::from(command).output()).await.expect("the cycle ends within 3 minutes").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the README cycle failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");

    // What the block printed: the plan's steps, the waiting run, who ran and approved it, and
    // an intact journal.
    for expected in ["\"isolate\"", "\"awaiting_approval\"", "\"approved_by\": \"alice\"", "\"succeeded\"\n\"soar\"\n\"alice\"", "true\n"] {
        assert!(stdout.contains(expected), "`{expected}` in the cycle's output:\n{stdout}");
    }
    let after = harness.describe().await;
    assert!(after == before, "the rollback restored the estate: {}", contain_e2e::diff(&before, &after));
    let tokens = std::fs::read_to_string(dir.join("tokens.yaml")).unwrap();
    let soar_token = std::fs::read_to_string(dir.join("soar.token")).unwrap();
    assert!(!tokens.contains(soar_token.trim()), "the tokens file stores hashes only");
}
