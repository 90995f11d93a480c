//! No secret in any output. The credentials' secret key and session token, and a canary external
//! id in the configuration, must appear in no journal, log, plan file, lock file or output. This
//! holds on success and on every error path, with debug logging on.

use contain_e2e::{EC2_PLAYBOOK, Harness, Invocation};
use contain_test_estate::{Effect, Fault, FaultProxy};

const CANARY_EXTERNAL_ID: &str = "canary-external-id-5f0c1d9e";

fn outputs(invocation: &Invocation) -> String {
    format!("{}\n{}", invocation.stdout, invocation.stderr)
}

/// Reads every file under the state directory.
fn state_files(harness: &Harness) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![harness.state_dir.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|name| name == "config.toml") {
                // The configuration is the input that carries the canary.
                continue;
            } else {
                files.push((path.display().to_string(), String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string()));
            }
        }
    }
    files
}

#[tokio::test]
async fn no_secret_in_any_output() {
    let harness = Harness::new().await;
    let mut secrets = vec![harness.account.secret_access_key.clone(), harness.account.session_token.clone(), CANARY_EXTERNAL_ID.to_string()];
    secrets.extend(["canary-azure-secret-7b21".to_string(), "canary-api-token-93ce".to_string()]);
    let config = harness.state_dir.path().join("config.toml");
    std::fs::write(&config, format!("[aws.accounts.999999999999]\nrole_arn = \"arn:aws:iam::999999999999:role/contain\"\nexternal_id = \"{CANARY_EXTERNAL_ID}\"\n")).unwrap();
    let config = config.display().to_string();
    let plan_file = harness.state_dir.path().join("plan.json").display().to_string();
    let instance = format!("instance={}", harness.estate.double.instance_id);
    // Secrets of other clouds and tools that may sit in a responder's environment.
    let planted = [("AZURE_CLIENT_SECRET", "canary-azure-secret-7b21"), ("CONTAIN_API_TOKEN", "canary-api-token-93ce")];
    // Trace is the most verbose level: the AWS SDK's request logs must stay out of it.
    let debug = [("CONTAIN_LOG", "trace"), planted[0], planted[1]];
    let contain = |args: &[&str]| harness.contain_with(&harness.endpoint, &debug, &[&["--config", config.as_str()], args].concat());

    let mut seen = Vec::new();
    let plan = contain(&["plan", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-S", "--out", &plan_file]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stderr.contains("TRACE"), "trace logging is on");
    seen.push(("plan", outputs(&plan)));

    let apply = contain(&["apply", &plan_file, "--yes", "-o", "json"]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let run_id = apply.json()["run_id"].as_str().unwrap().to_string();
    seen.push(("apply", outputs(&apply)));
    for args in [vec!["runs", "show", &run_id], vec!["runs", "list", "-o", "json"], vec!["journal", "verify", &run_id], vec!["report", &run_id], vec!["report", &run_id, "-o", "json"]] {
        let shown = contain(&args);
        seen.push(("history", outputs(&shown)));
    }
    let rollback = contain(&["rollback", &run_id, "--yes"]);
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    seen.push(("rollback", outputs(&rollback)));

    // Error paths: bad input, a missing target, a refused call, a target in an account whose
    // role cannot be assumed, an unknown run.
    seen.push(("bad input", outputs(&contain(&["plan", EC2_PLAYBOOK, "-i", "instance=not-an-instance", "-i", "incident=INC-S"]))));
    seen.push(("missing target", outputs(&contain(&["plan", EC2_PLAYBOOK, "-i", "instance=i-0123456789abcdef0", "-i", "incident=INC-S"]))));
    let foreign = "instance=arn:aws:ec2:us-east-1:999999999999:instance/i-0123456789abcdef0";
    seen.push(("foreign account", outputs(&contain(&["plan", EC2_PLAYBOOK, "-i", foreign, "-i", "incident=INC-S"]))));
    seen.push(("unknown run", outputs(&contain(&["rollback", "run-20000101T000000Z-000000", "--yes"]))));
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    proxy.add_fault(Fault {
        body_contains: vec!["Action=ModifyNetworkInterfaceAttribute&".into()],
        body_lacks: vec!["DryRun=true".into()],
        body: None,
        skip: 0,
        times: 100,
        status: 403,
        code: "UnauthorizedOperation".into(),
        message: "You are not authorized to perform this operation.".into(),
        effect: Effect::Answer,
    });
    let refused = harness.contain_with(&proxy.url, &debug, &["--config", &config, "run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-S", "--yes"]);
    assert_ne!(refused.code, 0, "the refused call fails the run");
    seen.push(("refused call", outputs(&refused)));

    for (what, text) in seen.iter().map(|(w, t)| (w.to_string(), t.clone())).chain(state_files(&harness)) {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{what} contains a secret ({}…)", &secret[..6]);
        }
    }
}
