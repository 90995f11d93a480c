//! Scenario S2 of BENCHMARKS.md: a deny-all NSG associated with many Azure subnets in VNets of
//! three regions, against contain-azure-fake in its cloud-limits mode. The fake imposes ARM's
//! read and write buckets per region, a lognormal latency and operations that end after a
//! lognormal duration. A write to a VNet whose subnet write still runs gets 429
//! `RetryableErrorDueToAnotherOperation`.
//!
//! Usage: `contain-bench s2 [SUBNETS] [SCALE]` (200 and 10), with `CONTAIN_BIN` set to the
//! contain binary (default `target/release/contain`). The fake runs in this process on 127.0.0.1.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use contain_azure_fake::{ArmLimits, FakeAzure, refuse_real_endpoint};
use serde_json::{Value, json};

/// Subnets per VNet. ARM runs one subnet write per VNet at a time, so this sets the length of
/// the longest chain of writes.
const VNET_SIZE: usize = 10;
const REGIONS: &[&str] = &["eastus", "westeurope", "southeastasia"];
const SUBSCRIPTION: &str = "00000000-0000-4000-8000-0000000000b2";
const RESOURCE_GROUP: &str = "bench-s2";

/// ARM's limits with the scenario's latency and operation durations, unscaled.
fn cloud_limits(scale: f64) -> ArmLimits {
    ArmLimits {
        latency_p50_ms: 150.0,
        latency_p99_ms: 800.0,
        operation_p50_seconds: 8.0,
        operation_p99_seconds: 20.0,
        operation_retry_after_seconds: 10.0,
        scale,
        ..ArmLimits::default()
    }
}

pub(crate) async fn run(args: &[String]) -> anyhow::Result<()> {
    let subnets: usize = args.first().map(|a| a.parse()).transpose().context("SUBNETS must be a number")?.unwrap_or(200);
    let scale: f64 = args.get(1).map(|a| a.parse()).transpose().context("SCALE must be a number")?.unwrap_or(10.0);
    anyhow::ensure!(subnets > 0 && scale > 0.0, "SUBNETS and SCALE must be positive, not {subnets} and {scale}");
    let contain = std::env::var("CONTAIN_BIN").unwrap_or_else(|_| "target/release/contain".into());

    let fake = FakeAzure::start_on_port(0).await.context("cannot start the Azure fake on 127.0.0.1")?;
    refuse_real_endpoint(&fake.url()).map_err(anyhow::Error::msg)?;
    let vnets = seed(&fake, subnets);
    eprintln!("S2: {subnets} subnets in {} VNets of {} regions in the fake at {}", vnets.len(), REGIONS.len(), fake.url());
    let limits = cloud_limits(scale);
    fake.set_limits(limits.clone());

    let work = tempfile::tempdir()?;
    let playbook = work.path().join("s2.yaml");
    std::fs::write(&playbook, playbook_text(vnets.len()))?;
    let config = work.path().join("config.toml");
    std::fs::write(&config, config_text(&limits))?;

    eprintln!("S2: isolating the subnets through the limits (time scale x{scale})");
    let started = Instant::now();
    let output = tokio::process::Command::new(&contain)
        .args(["--config", config.to_str().unwrap(), "run", playbook.to_str().unwrap()])
        .args(["-i", &format!("vnets={}", vnets.join(",")), "-i", "incident=INC-BENCH", "--yes", "-o", "json"])
        .env_clear()
        .envs(fake.contain_env())
        .env("CONTAIN_STATE_DIR", work.path())
        .env("HOME", work.path())
        .output()
        .await
        .with_context(|| format!("cannot run {contain}: build it first (cargo build --release --bin contain)"))?;
    let wall = started.elapsed().as_secs_f64();
    let usage = crate::child_usage();

    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| format!("contain printed no report: {}", String::from_utf8_lossy(&output.stderr)))?;
    let targets = report["steps"][0]["targets"].as_array().cloned().unwrap_or_default();
    let contained = targets.iter().filter(|t| t["outcome"] == "contained" || t["outcome"] == "already_contained").count();
    let isolated = isolated_subnets(&fake, &vnets);

    let (floor, floor_detail) = floor(&fake, &limits, &vnets);
    let counts = fake.limit_counts();
    let calls: u64 = counts.values().map(|c| c.calls).sum();
    let throttled: u64 = counts.values().map(|c| c.throttled).sum();
    let busy: u64 = counts.values().map(|c| c.busy).sum();
    let result = json!({
        "scenario": "S2",
        "subnets": subnets,
        "vnets": vnets.len(),
        "regions": REGIONS.len(),
        "time_scale": scale,
        "status": report["status"],
        "targets": targets.len(),
        "contained": contained,
        "not_contained": vnets.len() - contained,
        "subnets_isolated": isolated,
        "wall_seconds": wall,
        "floor_seconds": floor,
        "floor": floor_detail,
        "ratio_to_floor": wall / floor,
        "ratio_to_floor_obeying_retry_after": wall / floor_detail["obeying_retry_after_seconds"].as_f64().unwrap_or(floor),
        "calls": calls,
        "throttled": throttled,
        "busy": busy,
        "operations": fake.operation_records().len(),
        "timeline": timeline(&fake, &vnets),
        "requests": counts.iter().map(|(kind, c)| (kind.clone(), json!({ "calls": c.calls, "throttled": c.throttled, "busy": c.busy }))).collect::<BTreeMap<_, _>>(),
        "engine_cpu_seconds": usage.0,
        "engine_cpu_ms_per_subnet": usage.0 * 1000.0 / subnets as f64,
        "engine_peak_memory_mb": usage.1,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    if contained != vnets.len() || isolated != subnets {
        anyhow::bail!(
            "{} of {} VNets were not contained and {} of {subnets} subnets not isolated: {}",
            vnets.len() - contained,
            vnets.len(),
            subnets - isolated,
            String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or_default()
        );
    }
    Ok(())
}

fn vnet_id(index: usize) -> String {
    format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/virtualNetworks/vnet-{index:03}")
}

fn region_of(index: usize) -> &'static str {
    REGIONS[index % REGIONS.len()]
}

/// Stores the VNets, `VNET_SIZE` subnets each (the last one fewer), round robin over the
/// regions, and returns their ids.
fn seed(fake: &FakeAzure, subnets: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for (index, first) in (0..subnets).step_by(VNET_SIZE).enumerate() {
        let count = VNET_SIZE.min(subnets - first);
        let subnet_bodies: Vec<Value> = (0..count).map(|s| json!({ "name": format!("subnet-{s}"), "properties": { "addressPrefix": format!("10.{}.{s}.0/24", index % 256) } })).collect();
        let id = vnet_id(index);
        fake.insert(&id, json!({ "location": region_of(index), "properties": { "addressSpace": { "addressPrefixes": [format!("10.{}.0.0/16", index % 256)] }, "subnets": subnet_bodies } }));
        ids.push(id);
    }
    ids
}

/// Counts the subnets whose NSG is the isolation group of their VNet's region.
fn isolated_subnets(fake: &FakeAzure, vnets: &[String]) -> usize {
    let mut isolated = 0;
    for (index, id) in vnets.iter().enumerate() {
        let group = format!("networksecuritygroups/contain-isolation-{}", region_of(index));
        let vnet = fake.get(id).unwrap_or(Value::Null);
        for subnet in vnet.pointer("/properties/subnets").and_then(Value::as_array).into_iter().flatten() {
            let nsg = subnet.pointer("/properties/networkSecurityGroup/id").and_then(Value::as_str).unwrap_or_default();
            if nsg.to_ascii_lowercase().ends_with(&group) {
                isolated += 1;
            }
        }
    }
    isolated
}

/// Returns the floor in (scaled) seconds and how it was found: the largest of
/// - each VNet's chain, because ARM runs one write per VNet at a time. The chain is its region's
///   isolation group created (median latency plus the sampled duration of the group's first
///   operation), then each write to the VNet in turn (median latency plus its sampled duration).
/// - each region's write bucket: the writes beyond its burst at its refill rate, plus the
///   median latency.
///
/// It also returns the longest chain for a client that obeys `Retry-After`. Such a client sees an
/// operation end only at a poll, and it sends each poll `Retry-After` (1 s at scale 10, for ARM's
/// 10 s) after the previous response. So at median latency the polls reach the fake every
/// `Retry-After` plus two latencies, and an operation counts as the first poll after its end.
fn floor(fake: &FakeAzure, limits: &ArmLimits, vnets: &[String]) -> (f64, Value) {
    let latency = limits.latency_p50_ms / 1000.0 / limits.scale;
    let retry_after = (limits.operation_retry_after_seconds / limits.scale).ceil().max(1.0);
    let poll_period = retry_after + 2.0 * latency;
    let polled = |duration: Duration| (duration.as_secs_f64() / poll_period).ceil().max(1.0) * poll_period + latency;
    let records = fake.operation_records();
    let mut group_seconds: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for region in REGIONS {
        let group = format!("networksecuritygroups/contain-isolation-{region}");
        let first = records.iter().find(|r| r.resource.ends_with(&group)).map(|r| r.duration).unwrap_or_default();
        group_seconds.insert(region, (latency + first.as_secs_f64(), latency + polled(first)));
    }

    let mut longest = (0.0, String::new());
    let mut longest_polled = 0.0_f64;
    for (index, id) in vnets.iter().enumerate() {
        let key = id.to_ascii_lowercase();
        let writes: Vec<Duration> = records.iter().filter(|r| r.resource == key).map(|r| r.duration).collect();
        let (group, group_polled) = group_seconds[region_of(index)];
        let waits = latency * writes.len() as f64;
        let chain = group + writes.iter().map(Duration::as_secs_f64).sum::<f64>() + waits;
        if chain > longest.0 {
            longest = (chain, id.rsplit('/').next().unwrap_or_default().to_string());
        }
        longest_polled = longest_polled.max(group_polled + writes.iter().map(|d| polled(*d)).sum::<f64>() + waits);
    }

    let mut bucket = 0.0_f64;
    for region in REGIONS {
        let writes = records.iter().filter(|r| r.location == *region).count() as f64;
        let seconds = (writes - limits.write_burst).max(0.0) / (limits.write_per_second * limits.scale) + latency;
        bucket = bucket.max(seconds);
    }
    let floor = longest.0.max(bucket);
    let detail = json!({
        "longest_vnet_chain_seconds": longest.0,
        "longest_vnet": longest.1,
        "write_bucket_seconds": bucket,
        "retry_after_seconds": retry_after,
        "obeying_retry_after_seconds": longest_polled.max(bucket),
    });
    (floor, detail)
}

/// Returns when the operations ran, in seconds since the limits were set. For the isolation
/// groups it lists the start and end of each write by region. For each VNet it gives the start
/// of its first write, the end of its last, and the number of writes.
fn timeline(fake: &FakeAzure, vnets: &[String]) -> Value {
    let records = fake.operation_records();
    let span = |r: &contain_azure_fake::OperationRecord| (r.started.as_secs_f64(), (r.started + r.duration).as_secs_f64());
    let mut groups = BTreeMap::new();
    for region in REGIONS {
        let group = format!("networksecuritygroups/contain-isolation-{region}");
        let writes: Vec<(f64, f64)> = records.iter().filter(|r| r.resource.ends_with(&group)).map(span).collect();
        groups.insert(region.to_string(), json!(writes));
    }
    let mut networks = BTreeMap::new();
    for id in vnets {
        let key = id.to_ascii_lowercase();
        let writes: Vec<(f64, f64)> = records.iter().filter(|r| r.resource == key).map(span).collect();
        let first = writes.iter().map(|w| w.0).fold(f64::INFINITY, f64::min);
        let last = writes.iter().map(|w| w.1).fold(0.0, f64::max);
        networks.insert(id.rsplit('/').next().unwrap_or_default().to_string(), json!({ "first_write": first, "last_end": last, "writes": writes.len() }));
    }
    json!({ "isolation_groups": groups, "vnets": networks })
}

fn playbook_text(vnets: usize) -> String {
    format!(
        "name: bench-s2\ndescription: Isolate the subnets of many VNets at once.\ninputs:\n  vnets:\n    type: azure.network.vnet\n    list: true\n    description: The virtual networks.\n  incident:\n    type: string\n    description: Incident id.\nsteps:\n  - id: isolate\n    action: isolate\n    target: \"${{{{ inputs.vnets }}}}\"\n    max_targets: {vnets}\n"
    )
}

/// Returns the engine's settings: ARM's buckets with refill rates scaled as the fake's are.
/// The poll interval is unused while the fake names a `Retry-After`, which it always does.
fn config_text(limits: &ArmLimits) -> String {
    format!(
        "[engine]\nconcurrency = 64\n\n[azure]\npoll_interval_seconds = 1\n\n[pacing]\n\"arm:reads\" = {{ burst = {}, per_second = {} }}\n\"arm:writes\" = {{ burst = {}, per_second = {} }}\n",
        limits.read_burst,
        limits.read_per_second * limits.scale,
        limits.write_burst,
        limits.write_per_second * limits.scale
    )
}
