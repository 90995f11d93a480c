//! Scenario S3 of BENCHMARKS.md, its IAM part: deactivate many IAM access keys through a proxy in
//! front of moto that imposes an IAM write bucket, with its refill rate swept over 2, 5, 10 and 20
//! per second. Each rate gets a fresh moto account with KEYS keys, two per user.
//!
//! Usage: `contain-bench s3-iam [KEYS] [SCALE]` (500 and 10), with `CONTAIN_TEST_MOTO_URL` set to
//! a moto server on 127.0.0.1 and `CONTAIN_BIN` to the contain binary.

use std::time::Instant;

use anyhow::Context;
use aws_sdk_iam::types::StatusType;
use contain_test_estate::{BucketLimit, CloudLimits, FaultProxy, fresh_account, moto_endpoint};
use serde_json::{Value, json};

/// The refill rates of the IAM write bucket that the scenario sweeps, per second, unscaled.
const RATES: &[f64] = &[2.0, 5.0, 10.0, 20.0];

/// The burst of the IAM write bucket. AWS does not publish IAM's rate limits, so this is the
/// provider's own default for `iam:mutating`, an estimate.
const WRITE_BURST: f64 = 10.0;

/// The IAM actions that draw on the write bucket.
const WRITE_ACTIONS: &[&str] = &["UpdateAccessKey", "PutUserPolicy", "DeleteUserPolicy", "UpdateSSHPublicKey", "UpdateSigningCertificate", "UpdateServiceSpecificCredential"];

const KEYS_PER_USER: usize = 2;

pub(crate) async fn run(args: &[String]) -> anyhow::Result<()> {
    let keys: usize = args.first().map(|a| a.parse()).transpose().context("KEYS must be a number")?.unwrap_or(500);
    let scale: f64 = args.get(1).map(|a| a.parse()).transpose().context("SCALE must be a number")?.unwrap_or(10.0);
    anyhow::ensure!(keys > 0 && scale > 0.0, "KEYS and SCALE must be positive, not {keys} and {scale}");
    let contain = std::env::var("CONTAIN_BIN").unwrap_or_else(|_| "target/release/contain".into());
    let moto = moto_endpoint()?;

    let mut results = Vec::new();
    let mut failures = Vec::new();
    for rate in RATES {
        let result = run_rate(&contain, &moto, keys, scale, *rate).await?;
        if result["keys_still_active"] != 0 {
            failures.push(format!("{} keys still active at {rate} per second", result["keys_still_active"]));
        }
        results.push(result);
    }
    println!("{}", serde_json::to_string_pretty(&json!({ "scenario": "S3 (IAM)", "keys": keys, "time_scale": scale, "runs": results }))?);
    anyhow::ensure!(failures.is_empty(), "not every key was deactivated: {}", failures.join(", "));
    Ok(())
}

async fn run_rate(contain: &str, moto: &str, keys: usize, scale: f64, rate: f64) -> anyhow::Result<Value> {
    let users = keys.div_ceil(KEYS_PER_USER);
    eprintln!("S3 (IAM): {users} users with {keys} access keys in a fresh moto account, refill {rate} per second");
    let account = fresh_account(moto).await?;
    let iam = aws_sdk_iam::Client::new(&account.sdk_config(moto).await);
    let names = seed(&iam, keys).await?;

    let proxy = FaultProxy::start(moto).await?;
    let bucket = BucketLimit { name: "iam-write".into(), actions: WRITE_ACTIONS.iter().map(|a| a.to_string()).collect(), burst: WRITE_BURST, per_second: rate * scale };
    proxy.set_limits(CloudLimits { buckets: vec![bucket], default_bucket: None, latency_p50_ms: 150.0 / scale, latency_p99_ms: 800.0 / scale, error_rate: 0.0, drain: None });

    let work = tempfile::tempdir()?;
    let playbook = work.path().join("s3-iam.yaml");
    std::fs::write(&playbook, playbook_text(users))?;
    let config = work.path().join("config.toml");
    std::fs::write(&config, config_text(rate * scale, scale))?;

    let started = Instant::now();
    let output = tokio::process::Command::new(contain)
        .args(["--config", config.to_str().unwrap(), "run", playbook.to_str().unwrap()])
        .args(["-i", &format!("users={}", names.join(",")), "-i", "incident=INC-BENCH", "--yes", "-o", "json"])
        .env_clear()
        .envs(account.env(&proxy.url))
        .env("CONTAIN_STATE_DIR", work.path())
        .env("HOME", work.path())
        .output()
        .await
        .with_context(|| format!("cannot run {contain}: build it first (cargo build --release --bin contain)"))?;
    let wall = started.elapsed().as_secs_f64();

    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| format!("contain printed no report: {}", String::from_utf8_lossy(&output.stderr)))?;
    let still_active = active_keys(&iam, &names).await?;
    let counts = proxy.counts();
    let writes: u64 = WRITE_ACTIONS.iter().filter_map(|a| counts.get(*a)).map(|c| c.calls - c.throttled).sum();
    let floor = (writes as f64 - WRITE_BURST).max(0.0) / (rate * scale) + 0.150 / scale;
    let calls: u64 = counts.values().map(|c| c.calls).sum();
    let throttled: u64 = counts.values().map(|c| c.throttled).sum();
    Ok(json!({
        "writes_per_second_unscaled": rate,
        "status": report["status"],
        "keys_still_active": still_active,
        "wall_seconds": wall,
        "floor_seconds": floor,
        "ratio_to_floor": wall / floor,
        "writes_admitted": writes,
        "calls": calls,
        "throttled": throttled,
        "actions": counts.iter().map(|(a, c)| (a.clone(), json!({ "calls": c.calls, "throttled": c.throttled }))).collect::<std::collections::BTreeMap<_, _>>(),
        "stderr_last_line": String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or_default(),
    }))
}

/// Creates users with `KEYS_PER_USER` active access keys each (the last user fewer), `keys` in all,
/// and returns the user names.
async fn seed(iam: &aws_sdk_iam::Client, keys: usize) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for first in (0..keys).step_by(KEYS_PER_USER) {
        let name = format!("bench-user-{:04}", first / KEYS_PER_USER);
        iam.create_user().user_name(&name).send().await.context("CreateUser")?;
        for _ in first..(first + KEYS_PER_USER).min(keys) {
            iam.create_access_key().user_name(&name).send().await.context("CreateAccessKey")?;
        }
        names.push(name);
    }
    Ok(names)
}

/// Counts the users' access keys that are still active, reading moto directly.
async fn active_keys(iam: &aws_sdk_iam::Client, names: &[String]) -> anyhow::Result<usize> {
    let mut active = 0;
    for name in names {
        let listed = iam.list_access_keys().user_name(name).send().await.context("ListAccessKeys")?;
        active += listed.access_key_metadata().iter().filter(|key| key.status() == Some(&StatusType::Active)).count();
    }
    Ok(active)
}

/// Returns a playbook that deactivates every access key of the users, and nothing else.
fn playbook_text(users: usize) -> String {
    format!(
        "name: bench-s3-iam\ndescription: Deactivate the access keys of many IAM users.\ninputs:\n  users:\n    type: aws.iam.user\n    list: true\n    description: The users.\n  incident:\n    type: string\n    description: Incident id.\nsteps:\n  - id: revoke\n    action: revoke\n    target: \"${{{{ inputs.users }}}}\"\n    max_targets: {users}\n    with:\n      access_keys: true\n      revoke_sessions: false\n"
    )
}

/// Returns the engine's settings: the write bucket as the proxy's, and the provider's default
/// read bucket (20 and 10 per second) with its refill scaled.
fn config_text(write_per_second: f64, scale: f64) -> String {
    format!(
        "[engine]\nconcurrency = 64\n\n[pacing]\n\"iam:mutating\" = {{ burst = {WRITE_BURST}, per_second = {write_per_second} }}\n\"iam:read\" = {{ burst = 20, per_second = {} }}\n",
        10.0 * scale
    )
}
