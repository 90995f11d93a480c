//! Scenario S3 of BENCHMARKS.md, its Entra ID part: revoke the sessions of many Entra users and
//! disable them, against contain-azure-fake with Graph's write limit. The fake imposes one
//! bucket for Graph writes (burst and refill set here) and a lognormal latency per Graph request.
//! A write that finds the bucket empty gets 429 with `Retry-After`, inside a 200 answer for the
//! inner requests of a `$batch`.
//!
//! Usage: `contain-bench s3 [USERS] [SCALE]` (1000 and 10), with `CONTAIN_BIN` set to the contain
//! binary (default `target/release/contain`). The fake runs in this process on 127.0.0.1.

use std::collections::BTreeMap;
use std::time::Instant;

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

    let fake = FakeAzure::start_on_port(0).await.context("cannot start the Azure fake on 127.0.0.1")?;
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
    let output = tokio::process::Command::new(&contain)
        .args(["--config", config.to_str().unwrap(), "run", playbook.to_str().unwrap()])
        .args(["-i", &format!("users={}", ids.join(",")), "-i", "incident=INC-BENCH", "--yes", "-o", "json"])
        .env_clear()
        .envs(crate::s2::fake_env(&fake))
        .env("CONTAIN_STATE_DIR", work.path())
        .env("HOME", work.path())
        .output()
        .await
        .with_context(|| format!("cannot run {contain}: build it first (cargo build --release --bin contain)"))?;
    let wall = started.elapsed().as_secs_f64();
    let usage = crate::child_usage();

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
    let writes: u64 = counts
        .iter()
        .filter(|(kind, _)| !kind.starts_with("GET ") && kind.as_str() != "POST $batch")
        .map(|(_, c)| c.calls - c.throttled)
        .sum();
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

/// Returns the engine's settings: the Graph write bucket as the fake's, refill scaled, and
/// Graph's published read bucket (2,000 and 100 per second) with its refill scaled too, although
/// the fake does not limit reads.
fn config_text(limits: &GraphLimits) -> String {
    format!(
        "[engine]\nconcurrency = 64\n\n[pacing]\n\"graph:identity-writes\" = {{ burst = {}, per_second = {} }}\n\"graph:reads\" = {{ burst = 2000, per_second = {} }}\n",
        limits.write_burst,
        limits.write_per_second * limits.scale,
        100.0 * limits.scale
    )
}
