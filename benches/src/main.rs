//! `contain-bench`: scenario S1 of BENCHMARKS.md. It isolates many EC2 instances, of one and two
//! network interfaces, through a proxy in front of moto that imposes EC2's token buckets (with
//! time scaled), a lognormal latency, 500 errors on 1% of requests, and another client draining the
//! ModifyNetworkInterfaceAttribute bucket. It reports the wall time, the floor the buckets allow
//! for the calls made, their ratio, the calls and throttles per action, and the engine's CPU
//! time and peak memory.
//!
//! Usage: `contain-bench [INSTANCES] [SCALE]` (1000 and 10), with `CONTAIN_TEST_MOTO_URL` set to
//! a moto server on 127.0.0.1 (`scripts/bench.sh` starts one) and `CONTAIN_BIN` to the contain
//! binary (default `target/release/contain`).
//!
//! `contain-bench s2 [SUBNETS] [SCALE]` runs scenario S2 instead (see `s2.rs`), and
//! `contain-bench s3 [USERS] [SCALE]` the Entra ID part of scenario S3 (see `s3.rs`), and
//! `contain-bench s3-iam [KEYS] [SCALE]` its IAM part (see `s3_iam.rs`).
//! `contain-bench custodian [INSTANCES] [RUNS]` compares contain with Cloud Custodian (see
//! `custodian.rs`).

mod custodian;
mod s2;
mod s3;
mod s3_iam;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use aws_sdk_ec2::types::InstanceType;
use contain_test_estate::{BucketLimit, CloudLimits, FaultProxy, any_image, fresh_account, moto_endpoint};
use serde_json::json;

/// EC2's published buckets that isolation draws on: name, actions, burst, refill per second.
const BUCKETS: &[(&str, &[&str], f64, f64)] = &[
    ("describe", &["DescribeInstances", "DescribeNetworkInterfaces", "DescribeSecurityGroups", "DescribeVpcs", "DescribeSubnets", "DescribeInstanceAttribute"], 100.0, 20.0),
    ("modify-interface", &["ModifyNetworkInterfaceAttribute"], 100.0, 5.0),
    ("resource-intensive", &["AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"], 50.0, 5.0),
    ("create-tags", &["CreateTags"], 100.0, 10.0),
    ("mutating", &["ModifyInstanceAttribute", "CreateSecurityGroup", "DeleteSecurityGroup"], 50.0, 5.0),
];

/// The engine's bucket of each proxy bucket, for the `[pacing]` settings.
const ENGINE_BUCKETS: &[(&str, &str)] = &[
    ("describe", "ec2:describe"),
    ("modify-interface", "ec2:ModifyNetworkInterfaceAttribute"),
    ("resource-intensive", "ec2:resource-intensive"),
    ("create-tags", "ec2:CreateTags"),
    ("mutating", "ec2:mutating"),
];

/// The other client's draw on the ModifyNetworkInterfaceAttribute bucket, per second.
const DRAIN_PER_SECOND: f64 = 2.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a.eq_ignore_ascii_case("s2")) {
        return s2::run(&args[1..]).await;
    }
    if args.first().is_some_and(|a| a.eq_ignore_ascii_case("s3-iam")) {
        return s3_iam::run(&args[1..]).await;
    }
    if args.first().is_some_and(|a| a.eq_ignore_ascii_case("s3")) {
        return s3::run(&args[1..]).await;
    }
    if args.first().is_some_and(|a| a.eq_ignore_ascii_case("custodian")) {
        return custodian::run(&args[1..]).await;
    }
    let instances: usize = args.first().map(|a| a.parse()).transpose().context("INSTANCES must be a number")?.unwrap_or(1000);
    let scale: f64 = args.get(1).map(|a| a.parse()).transpose().context("SCALE must be a number")?.unwrap_or(10.0);
    let contain = std::env::var("CONTAIN_BIN").unwrap_or_else(|_| "target/release/contain".into());
    let moto = moto_endpoint()?;

    eprintln!("S1: building {instances} instances in moto (half with two interfaces)");
    let account = fresh_account(&moto).await?;
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(&moto).await);
    let ids = build_estate(&ec2, instances).await?;

    let proxy = FaultProxy::start(&moto).await?;
    let buckets: Vec<BucketLimit> = BUCKETS
        .iter()
        .map(|(name, actions, burst, rate)| BucketLimit { name: name.to_string(), actions: actions.iter().map(|a| a.to_string()).collect(), burst: *burst, per_second: rate * scale })
        .collect();
    proxy.set_limits(CloudLimits {
        buckets: buckets.clone(),
        default_bucket: None,
        latency_p50_ms: 150.0 / scale,
        latency_p99_ms: 800.0 / scale,
        error_rate: 0.01,
        drain: Some(("modify-interface".into(), DRAIN_PER_SECOND * scale)),
    });

    let work = tempfile::tempdir()?;
    let playbook = work.path().join("s1.yaml");
    std::fs::write(&playbook, playbook_text(instances))?;
    let config = work.path().join("config.toml");
    std::fs::write(&config, config_text(scale))?;

    eprintln!("S1: isolating {instances} instances through the limits (time scale x{scale})");
    let started = Instant::now();
    let mut command = std::process::Command::new(&contain);
    command
        .args(["--config", config.to_str().unwrap(), "run", playbook.to_str().unwrap()])
        .args(["-i", &format!("instances={}", ids.join(",")), "-i", "incident=INC-BENCH", "--yes", "-o", "json"])
        .env_clear()
        .envs(account.env(&proxy.url))
        .env("CONTAIN_STATE_DIR", work.path())
        .env("HOME", work.path());
    let mut running = tokio::task::spawn_blocking(move || command.output());
    // Each second, the calls each bucket has admitted so far: where the run spends its time.
    let mut timeline = Vec::new();
    let output = loop {
        tokio::select! {
            finished = &mut running => break finished?,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => timeline.push(admitted_by_bucket(&buckets, &proxy.counts())),
        }
    };
    let output = output.with_context(|| format!("cannot run {contain}: build it first (cargo build --release --bin contain)"))?;
    let wall = started.elapsed().as_secs_f64();
    let usage = child_usage();

    let report: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| format!("contain printed no report: {}", String::from_utf8_lossy(&output.stderr)))?;
    let targets = report["steps"][0]["targets"].as_array().cloned().unwrap_or_default();
    let contained = targets.iter().filter(|t| t["outcome"] == "contained" || t["outcome"] == "already_contained").count();

    let counts = proxy.counts();
    let mut floor: f64 = 0.0;
    let mut by_bucket = BTreeMap::new();
    // The floor counts the calls that did the work. A dry run, a throttled call and a call
    // that failed with a 500 error are the client's own cost, not the strategy's.
    for bucket in &buckets {
        let admitted: u64 = bucket.actions.iter().filter_map(|a| counts.get(a)).map(|c| c.calls - c.throttled).sum();
        let work: u64 = bucket.actions.iter().filter_map(|a| counts.get(a)).map(|c| c.calls - c.throttled - c.dry_runs - c.errors).sum();
        let rate = if bucket.name == "modify-interface" { bucket.per_second - DRAIN_PER_SECOND * scale } else { bucket.per_second };
        let seconds = (work as f64 - bucket.burst).max(0.0) / rate;
        floor = floor.max(seconds);
        by_bucket.insert(bucket.name.clone(), json!({ "calls": admitted, "calls_of_the_work": work, "floor_seconds": seconds }));
    }
    floor += 0.150 / scale;

    let calls: u64 = counts.values().map(|c| c.calls).sum();
    let throttled: u64 = counts.values().map(|c| c.throttled).sum();
    let result = json!({
        "scenario": "S1",
        "instances": instances,
        "time_scale": scale,
        "status": report["status"],
        "contained": contained,
        "not_contained": instances - contained,
        "wall_seconds": wall,
        "floor_seconds": floor,
        "ratio_to_floor": wall / floor,
        "calls": calls,
        "throttled": throttled,
        "buckets": by_bucket,
        "admitted_at_each_second": timeline,
        "actions": counts.iter().map(|(a, c)| (a.clone(), json!({ "calls": c.calls, "throttled": c.throttled, "errors": c.errors, "dry_runs": c.dry_runs }))).collect::<BTreeMap<_, _>>(),
        "engine_cpu_seconds": usage.0,
        "engine_cpu_ms_per_target": usage.0 * 1000.0 / instances as f64,
        "engine_peak_memory_mb": usage.1,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    if contained != instances {
        anyhow::bail!("{} of {instances} targets were not contained: {}", instances - contained, String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or_default());
    }
    Ok(())
}

/// Returns the calls each bucket has admitted so far, dry runs included, throttled calls not.
fn admitted_by_bucket(buckets: &[BucketLimit], counts: &BTreeMap<String, contain_test_estate::ActionCounts>) -> BTreeMap<String, u64> {
    buckets.iter().map(|bucket| (bucket.name.clone(), bucket.actions.iter().filter_map(|a| counts.get(a)).map(|c| c.calls - c.throttled).sum())).collect()
}

/// Creates the instances in moto, every second one with a second interface, and returns their
/// ids.
async fn build_estate(ec2: &aws_sdk_ec2::Client, instances: usize) -> anyhow::Result<Vec<String>> {
    let vpc = ec2.create_vpc().cidr_block("10.30.0.0/16").send().await.context("CreateVpc")?;
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).context("no VPC id")?.to_string();
    let mut subnets = Vec::new();
    for cidr in ["10.30.0.0/18", "10.30.64.0/18"] {
        let subnet = ec2.create_subnet().vpc_id(&vpc_id).cidr_block(cidr).send().await.context("CreateSubnet")?;
        subnets.push(subnet.subnet().and_then(|s| s.subnet_id()).context("no subnet id")?.to_string());
    }
    let image = any_image(ec2).await?;

    let mut ids = Vec::new();
    while ids.len() < instances {
        let count = (instances - ids.len()).min(250) as i32;
        let run = ec2.run_instances().image_id(&image).instance_type(InstanceType::T3Micro).min_count(count).max_count(count).subnet_id(&subnets[0]).send().await.context("RunInstances")?;
        ids.extend(run.instances().iter().filter_map(|i| i.instance_id().map(str::to_string)));
    }
    for id in ids.iter().step_by(2) {
        let eni = ec2.create_network_interface().subnet_id(&subnets[1]).send().await.context("CreateNetworkInterface")?;
        let eni_id = eni.network_interface().and_then(|n| n.network_interface_id()).context("no interface id")?;
        ec2.attach_network_interface().network_interface_id(eni_id).instance_id(id).device_index(1).send().await.context("AttachNetworkInterface")?;
    }
    Ok(ids)
}

fn playbook_text(instances: usize) -> String {
    format!(
        "name: bench-s1\ndescription: Isolate many instances at once.\ninputs:\n  instances:\n    type: aws.ec2.instance\n    list: true\n    description: The instances.\n  incident:\n    type: string\n    description: Incident id.\nsteps:\n  - id: isolate\n    action: isolate\n    target: \"${{{{ inputs.instances }}}}\"\n    max_targets: {instances}\n    with:\n      incident: \"${{{{ inputs.incident }}}}\"\n"
    )
}

/// Returns the engine's settings: the buckets' refill rates scaled as the proxy's are.
fn config_text(scale: f64) -> String {
    let mut text = String::from("[engine]\nconcurrency = 64\n\n[pacing]\n");
    for (proxy_name, engine_name) in ENGINE_BUCKETS {
        let (_, _, burst, rate) = BUCKETS.iter().find(|b| b.0 == *proxy_name).expect("every engine bucket has a proxy bucket");
        text.push_str(&format!("\"{engine_name}\" = {{ burst = {burst}, per_second = {} }}\n", rate * scale));
    }
    text
}

/// Returns the CPU seconds and the peak memory in MB of the child processes so far.
pub(crate) fn child_usage() -> (f64, f64) {
    // SAFETY: getrusage writes into the zeroed struct it is given and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_utime) + seconds(usage.ru_stime), usage.ru_maxrss as f64 / 1024.0)
}
