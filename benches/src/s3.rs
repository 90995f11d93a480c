//! Scenario S3 of BENCHMARKS.md, its Entra ID part: revoke the sessions of many Entra users and
//! disable them, against contain-azure-fake with Graph's write limit. The fake imposes one
//! bucket for Graph writes (burst and refill set here) and a lognormal latency per Graph request.
//! A write that finds the bucket empty gets 429 with `Retry-After`, inside a 200 response for the
//! inner requests of a `$batch`.
//!
//! Usage: `contain-bench s3 [USERS] [SCALE]` (1000 and 10), with `CONTAIN_BIN` set to the contain
//! binary (default `target/release/contain`). The fake runs in this process on 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use contain_azure_fake::{FakeAzure, GraphLimits, LimitCounts, refuse_real_endpoint};
use serde_json::{Value, json};

/// The sign-in sessions' valid-from time of every seeded user. Revocation sets it to the time
/// of the request, so a user whose value is still this one was not revoked.
const VALID_FROM: &str = "2026-01-01T00:00:00Z";

/// The write bucket's size, at most USERS so that refill decides the floor. Graph publishes
/// 3,000, which would hold all 2,000 writes of 1,000 users, so the scenario takes the bucket as
/// drained to 200 by other clients of the same application.
const WRITE_BURST: f64 = 200.0;

/// Graph's identity write limit of about 3,000 per 150 s per application and tenant, with the
/// same latency as the ARM scenarios (an estimate, not a published figure), unscaled.
fn graph_limits(users: usize, scale: f64) -> GraphLimits {
    GraphLimits {
        write_burst: WRITE_BURST.min(users as f64),
        write_per_second: 3000.0 / 150.0,
        latency_p50_ms: 150.0,
        latency_p99_ms: 800.0,
        scale,
    }
}

pub(crate) async fn run(args: &[String]) -> anyhow::Result<()> {
    let users: usize = args.first().map(|a| a.parse()).transpose().context("USERS must be a number")?.unwrap_or(1000);
    let scale: f64 = args.get(1).map(|a| a.parse()).transpose().context("SCALE must be a number")?.unwrap_or(10.0);
    anyhow::ensure!(users > 0 && scale > 0.0, "USERS and SCALE must be positive, not {users} and {scale}");
    let contain = std::env::var("CONTAIN_BIN").unwrap_or_else(|_| "target/release/contain".into());

    let fake = Arc::new(FakeAzure::start_on_port(0).await.context("cannot start the Azure fake on 127.0.0.1")?);
    refuse_real_endpoint(&fake.url()).map_err(anyhow::Error::msg)?;
    let ids = seed(&fake, users);
    eprintln!("S3: {users} member users in the fake at {}", fake.url());
    let limits = graph_limits(users, scale);
    fake.set_graph_limits(limits.clone());

    let work = tempfile::tempdir()?;
    let playbook = work.path().join("s3.yaml");
    std::fs::write(&playbook, playbook_text(users))?;
    let config = work.path().join("config.toml");
    std::fs::write(&config, config_text(&limits))?;

    eprintln!("S3: revoking and disabling the users through the limits (time scale x{scale})");
    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample_writes(fake.clone(), started, samples.clone()));
    let output = tokio::process::Command::new(&contain)
        .args(["--config", config.to_str().unwrap(), "run", playbook.to_str().unwrap()])
        // One -i per thousand users: Linux refuses a single argument longer than 128 KiB.
        .args(ids.chunks(1000).flat_map(|chunk| ["-i".to_string(), format!("users={}", chunk.join(","))]))
        .args(["-i", "incident=INC-BENCH", "--yes", "-o", "json"])
        .env_clear()
        .envs(fake.contain_env())
        .env("CONTAIN_STATE_DIR", work.path())
        .env("HOME", work.path())
        .output()
        .await
        .with_context(|| format!("cannot run {contain}: build it first (cargo build --release --bin contain)"))?;
    let wall = started.elapsed().as_secs_f64();
    let usage = crate::child_usage();
    sampler.abort();
    let samples = samples.lock().map(|samples| samples.clone()).unwrap_or_default();

    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| format!("contain printed no report: {}", String::from_utf8_lossy(&output.stderr)))?;
    let targets = report["steps"][0]["targets"].as_array().cloned().unwrap_or_default();
    let reported_contained = targets.iter().filter(|t| t["outcome"] == "contained" || t["outcome"] == "already_contained").count();
    let not_contained = not_contained_users(&fake, &ids);

    let counts = fake.graph_limit_counts();
    let (floor, floor_detail) = floor(&limits, &counts);
    let calls: u64 = counts.values().map(|c| c.calls).sum();
    let throttled: u64 = counts.values().map(|c| c.throttled).sum();
    let result = json!({
        "scenario": "S3",
        "users": users,
        "time_scale": scale,
        "status": report["status"],
        "targets": targets.len(),
        "reported_contained": reported_contained,
        "not_contained": not_contained.len(),
        "wall_seconds": wall,
        "floor_seconds": floor,
        "floor": floor_detail,
        "ratio_to_floor": wall / floor,
        "writes": write_progress(&samples),
        "calls": calls,
        "throttled": throttled,
        "requests": counts.iter().map(|(kind, c)| (kind.clone(), json!({ "calls": c.calls, "throttled": c.throttled }))).collect::<BTreeMap<_, _>>(),
        "engine_cpu_seconds": usage.0,
        "engine_cpu_ms_per_user": usage.0 * 1000.0 / users as f64,
        "engine_peak_memory_mb": usage.1,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    if !not_contained.is_empty() || reported_contained != users {
        anyhow::bail!(
            "{} of {users} users are not disabled and revoked in the fake (first: {}), and contain reported {reported_contained} contained: {}",
            not_contained.len(),
            not_contained.first().map(String::as_str).unwrap_or("none"),
            String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or_default()
        );
    }
    Ok(())
}

/// The interval at which `sample_writes` reads the fake's counts.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Appends, every `SAMPLE_INTERVAL` until aborted, the seconds since `started` and the writes
/// that the fake has admitted so far.
async fn sample_writes(fake: Arc<FakeAzure>, started: Instant, samples: Arc<Mutex<Vec<(f64, u64)>>>) {
    loop {
        let writes = admitted_writes(&fake.graph_limit_counts());
        if let Ok(mut samples) = samples.lock() {
            samples.push((started.elapsed().as_secs_f64(), writes));
        }
        tokio::time::sleep(SAMPLE_INTERVAL).await;
    }
}

/// Returns when the admitted writes began and ended (to within `SAMPLE_INTERVAL`), and their
/// count at each whole second of the run.
fn write_progress(samples: &[(f64, u64)]) -> Value {
    let first = samples.iter().find(|(_, writes)| *writes > 0).map(|(seconds, _)| *seconds);
    let total = samples.last().map(|(_, writes)| *writes).unwrap_or(0);
    let last = samples.iter().find(|(_, writes)| *writes == total && total > 0).map(|(seconds, _)| *seconds);
    let mut per_second = Vec::new();
    for (seconds, writes) in samples {
        if *seconds >= per_second.len() as f64 {
            per_second.push(*writes);
        }
    }
    json!({ "first_seen_seconds": first, "all_seen_seconds": last, "admitted_at_each_second": per_second })
}

/// Counts the writes that the fake admitted: every request but reads and `$batch` itself, less
/// the throttled ones.
fn admitted_writes(counts: &BTreeMap<String, LimitCounts>) -> u64 {
    counts
        .iter()
        .filter(|(kind, _)| !kind.starts_with("GET ") && kind.as_str() != "POST $batch")
        .map(|(_, c)| c.calls - c.throttled)
        .sum()
}

fn user_id(index: usize) -> String {
    format!("00000000-0000-4000-8000-{index:012}")
}

/// Stores the enabled member users, without directory roles, and returns their object ids.
fn seed(fake: &FakeAzure, users: usize) -> Vec<String> {
    (0..users)
        .map(|index| {
            let id = user_id(index);
            fake.insert_graph(
                "users",
                json!({ "id": id, "userPrincipalName": format!("user{index:05}@contoso.com"), "displayName": format!("User {index}"),
                        "accountEnabled": true, "userType": "Member", "signInSessionsValidFromDateTime": VALID_FROM }),
            );
            id
        })
        .collect()
}

/// Returns the users that the fake does not show disabled with their sessions revoked.
fn not_contained_users(fake: &FakeAzure, ids: &[String]) -> Vec<String> {
    ids.iter()
        .filter(|id| {
            let user = fake.get_graph("users", id).unwrap_or(Value::Null);
            let disabled = user["accountEnabled"] == false;
            let revoked = user["signInSessionsValidFromDateTime"].as_str().is_some_and(|valid_from| valid_from != VALID_FROM);
            !(disabled && revoked)
        })
        .cloned()
        .collect()
}

/// Returns the floor in (scaled) seconds and how it was found: the writes the run made beyond
/// the bucket's burst at its refill rate, plus the median latency. The strategy is one PATCH and
/// one revokeSignInSessions per user, each a write of its own. Reads are not limited by the fake,
/// so the floor leaves them out.
fn floor(limits: &GraphLimits, counts: &BTreeMap<String, LimitCounts>) -> (f64, Value) {
    let writes = admitted_writes(counts);
    let per_second = limits.write_per_second * limits.scale;
    let bucket = (writes as f64 - limits.write_burst).max(0.0) / per_second;
    let latency = limits.latency_p50_ms / 1000.0 / limits.scale;
    let floor = bucket + latency;
    (floor, json!({ "writes_admitted": writes, "write_burst": limits.write_burst, "writes_per_second": per_second, "bucket_seconds": bucket, "median_latency_seconds": latency }))
}

fn playbook_text(users: usize) -> String {
    format!(
        "name: bench-s3\ndescription: Revoke the sessions of many Entra users and disable them.\ninputs:\n  users:\n    type: azure.entra.user\n    list: true\n    description: The users' object ids.\n  incident:\n    type: string\n    description: Incident id.\nsteps:\n  - id: revoke\n    action: revoke\n    target: \"${{{{ inputs.users }}}}\"\n    max_targets: {users}\n    irreversible: allow\n    with:\n      disable: true\n      revoke_sessions: true\n"
    )
}

/// Returns the engine's settings: the Graph write bucket as the fake's, refill scaled, and the
/// provider's default read bucket (3,500 and 350 per second) with its refill scaled too, although
/// the fake does not limit reads.
fn config_text(limits: &GraphLimits) -> String {
    format!(
        "[engine]\nconcurrency = 64\n\n[pacing]\n\"graph:identity-writes\" = {{ burst = {}, per_second = {} }}\n\"graph:reads\" = {{ burst = 3500, per_second = {} }}\n",
        limits.write_burst,
        limits.write_per_second * limits.scale,
        350.0 * limits.scale
    )
}
