//! Side by side with Cloud Custodian (BENCHMARKS.md): Custodian's `modify-security-groups` and
//! contain's `isolate` on the same instances. Both go through a proxy that delays every request by
//! a fixed time and imposes no rate limit, so concurrency counts as it does against a real cloud.
//!
//! Each run of each tool starts from the same fresh state: a new moto account with INSTANCES
//! instances tagged `compromised=true` (every second one with a second network interface, as in
//! S1) and an empty isolation group that both tools use. After each run every interface is read
//! from moto directly, and the benchmark fails unless each one is in the isolation group alone.
//!
//! Usage: `contain-bench custodian [INSTANCES] [RUNS]` (200 and 5), with
//! `CONTAIN_TEST_MOTO_URL` set to a moto server on 127.0.0.1, `CONTAIN_BIN` to the contain binary
//! and `CUSTODIAN_BIN` to the `custodian` command (default `.venv-custodian/bin/custodian`).
//! With `MOTO_PID` set to moto's process id, each run also reports the CPU time moto used, which
//! shows when moto, which serves one request at a time, is the limit.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use contain_test_estate::{Account, CloudLimits, FaultProxy, fresh_account, moto_endpoint};
use serde_json::{Value, json};

/// The delay the proxy adds to every request before forwarding it to moto, in milliseconds.
const HOLD_MS: f64 = 100.0;

/// Targets contain changes at once.
const CONCURRENCY: usize = 64;

/// The tools compared, in the order each run takes them.
const TOOLS: &[Tool] = &[Tool::Custodian, Tool::ContainSameJob, Tool::ContainFull];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    /// Custodian's `modify-security-groups` with `remove: all` and an `isolation-group`.
    Custodian,
    /// contain's `isolate` doing what Custodian does: one group change per interface, no
    /// allow-all step, no protection, no tags.
    ContainSameJob,
    /// contain's `isolate` with its defaults: through the allow-all group, protection on, tags.
    ContainFull,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Custodian => "custodian",
            Tool::ContainSameJob => "contain_same_job",
            Tool::ContainFull => "contain_full_isolation",
        }
    }
}

/// One fresh estate: its account, the instances and the isolation group.
struct Estate {
    account: Account,
    ec2: aws_sdk_ec2::Client,
    instances: Vec<String>,
    isolation_group: String,
}

pub(crate) async fn run(args: &[String]) -> anyhow::Result<()> {
    let instances: usize = args.first().map(|a| a.parse()).transpose().context("INSTANCES must be a number")?.unwrap_or(200);
    let runs: usize = args.get(1).map(|a| a.parse()).transpose().context("RUNS must be a number")?.unwrap_or(5);
    anyhow::ensure!(instances > 0 && runs > 0, "INSTANCES and RUNS must be positive, not {instances} and {runs}");
    let contain = std::env::var("CONTAIN_BIN").unwrap_or_else(|_| "target/release/contain".into());
    let custodian = std::env::var("CUSTODIAN_BIN").unwrap_or_else(|_| ".venv-custodian/bin/custodian".into());
    let moto = moto_endpoint()?;
    let proxy = FaultProxy::start(&moto).await?;
    let moto_pid: Option<u32> = std::env::var("MOTO_PID").ok().filter(|p| !p.is_empty()).map(|p| p.parse()).transpose().context("MOTO_PID must be a process id")?;

    let mut results: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for run in 1..=runs {
        for tool in TOOLS {
            eprintln!("custodian comparison: run {run} of {runs}, {}: building {instances} instances in a fresh moto account", tool.name());
            let estate = build(&moto, instances).await?;
            // New limits reset the proxy's counts, so each run counts its own calls.
            proxy.set_limits(hold_only());
            let work = tempfile::tempdir()?;
            let moto_cpu_before = moto_pid.and_then(process_cpu_seconds);
            let started = Instant::now();
            let output = match tool {
                Tool::Custodian => run_custodian(&custodian, &estate, &proxy.url, work.path())?,
                Tool::ContainSameJob | Tool::ContainFull => run_contain(&contain, *tool, &estate, &proxy.url, work.path(), instances)?,
            };
            let wall = started.elapsed().as_secs_f64();
            let counts = proxy.counts();
            let moto_cpu = moto_cpu_before.zip(moto_pid.and_then(process_cpu_seconds)).map(|(before, after)| after - before);

            let not_isolated = not_isolated(&estate).await?;
            if !not_isolated.is_empty() {
                anyhow::bail!(
                    "{} left {} of {instances} instances not isolated (first: {}); exit status {}, last lines of its output:\n{}",
                    tool.name(),
                    not_isolated.len(),
                    not_isolated[0],
                    output.status,
                    tail(&output, 20)
                );
            }
            eprintln!("custodian comparison: {} isolated {instances} instances in {wall:.2} s", tool.name());
            results.entry(tool.name()).or_default().push(json!({
                "wall_seconds": wall,
                "exit_status": output.status.code(),
                "moto_cpu_seconds": moto_cpu,
                "calls": counts.values().map(|c| c.calls).sum::<u64>(),
                "actions": counts.iter().map(|(a, c)| (a.clone(), c.calls)).collect::<BTreeMap<_, _>>(),
            }));
        }
    }

    let median_of = |tool: Tool| median(results[tool.name()].iter().map(|r| r["wall_seconds"].as_f64().unwrap_or_default()).collect());
    let custodian_median = median_of(Tool::Custodian);
    let mut summary = serde_json::Map::new();
    for tool in TOOLS {
        let wall = median_of(*tool);
        summary.insert(
            tool.name().into(),
            json!({ "median_wall_seconds": wall, "custodian_over_this": custodian_median / wall, "runs": results[tool.name()] }),
        );
    }
    let report = json!({
        "comparison": "Cloud Custodian",
        "instances": instances,
        "interfaces": instances + instances.div_ceil(2),
        "runs_per_tool": runs,
        "proxy_hold_ms": HOLD_MS,
        "contain_concurrency": CONCURRENCY,
        "tools": summary,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Returns the proxy's settings: every request delayed `HOLD_MS` (a lognormal whose median and 99th
/// percentile are equal has no spread), no bucket and no error.
fn hold_only() -> CloudLimits {
    CloudLimits { buckets: Vec::new(), default_bucket: None, latency_p50_ms: HOLD_MS, latency_p99_ms: HOLD_MS, error_rate: 0.0, drain: None }
}

/// Builds the estate in a fresh moto account, talking to moto directly. The instances are tagged
/// `compromised=true`. Their VPC gets contain's isolation group, named and tagged as contain makes
/// it and with no rules, so contain finds it and Custodian is given its id.
async fn build(moto: &str, instances: usize) -> anyhow::Result<Estate> {
    let account = fresh_account(moto).await?;
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(moto).await);
    let ids = crate::build_estate(&ec2, instances).await?;
    for chunk in ids.chunks(100) {
        let tag = Tag::builder().key("compromised").value("true").build();
        ec2.create_tags().set_resources(Some(chunk.to_vec())).tags(tag).send().await.context("CreateTags compromised=true")?;
    }

    let described = ec2.describe_instances().instance_ids(&ids[0]).send().await.context("DescribeInstances")?;
    let vpc_id = described.reservations().iter().flat_map(|r| r.instances()).find_map(|i| i.vpc_id()).context("the first instance has no VPC")?.to_string();
    let managed = Tag::builder().key("contain:managed").value("isolation-group").build();
    let group = ec2
        .create_security_group()
        .group_name(format!("contain-isolation-{vpc_id}"))
        .description("Isolation group of the Custodian comparison: no inbound or outbound rule")
        .vpc_id(&vpc_id)
        .tag_specifications(TagSpecification::builder().resource_type(ResourceType::SecurityGroup).tags(managed).build())
        .send()
        .await
        .context("CreateSecurityGroup")?;
    let group_id = group.group_id().context("no group id")?.to_string();
    let egress = ec2.describe_security_groups().group_ids(&group_id).send().await.context("DescribeSecurityGroups")?;
    let rules = egress.security_groups().first().map(|g| g.ip_permissions_egress().to_vec()).unwrap_or_default();
    if !rules.is_empty() {
        ec2.revoke_security_group_egress().group_id(&group_id).set_ip_permissions(Some(rules)).send().await.context("RevokeSecurityGroupEgress")?;
    }
    Ok(Estate { account, ec2, instances: ids, isolation_group: group_id })
}

fn run_custodian(custodian: &str, estate: &Estate, endpoint: &str, work: &std::path::Path) -> anyhow::Result<std::process::Output> {
    let policy = work.join("policy.yml");
    std::fs::write(&policy, custodian_policy(&estate.isolation_group))?;
    let output_dir = work.join("output");
    let output = std::process::Command::new(custodian)
        .args(["run", "--region", contain_test_estate::REGION, "--cache-period", "0", "-s"])
        .arg(&output_dir)
        .arg(&policy)
        .env_clear()
        .envs(estate.account.env(endpoint))
        .env("AWS_DEFAULT_REGION", contain_test_estate::REGION)
        .env("HOME", work)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .with_context(|| format!("cannot run {custodian}: make its venv first (scripts/custodian-compare.sh does)"))?;
    // Custodian must have reached only the proxy on 127.0.0.1.
    let log = std::fs::read_to_string(output_dir.join("isolate-compromised").join("custodian-run.log")).unwrap_or_default();
    let printed = format!("{}{}{log}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    anyhow::ensure!(!printed.contains("amazonaws.com"), "Custodian named an AWS endpoint, not only the proxy at {endpoint}:\n{printed}");
    Ok(output)
}

fn custodian_policy(isolation_group: &str) -> String {
    format!(
        "policies:\n  - name: isolate-compromised\n    resource: aws.ec2\n    filters:\n      - \"tag:compromised\": \"true\"\n    actions:\n      - type: modify-security-groups\n        remove: all\n        isolation-group: {isolation_group}\n"
    )
}

fn run_contain(contain: &str, tool: Tool, estate: &Estate, endpoint: &str, work: &std::path::Path, instances: usize) -> anyhow::Result<std::process::Output> {
    let playbook = work.join("isolate.yaml");
    std::fs::write(&playbook, contain_playbook(tool, instances))?;
    let config = work.join("config.toml");
    std::fs::write(&config, contain_config())?;
    let output = std::process::Command::new(contain)
        .args(["--config", config.to_str().unwrap(), "run", playbook.to_str().unwrap(), "--yes", "-o", "json"])
        .env_clear()
        .envs(estate.account.env(endpoint))
        .env("CONTAIN_STATE_DIR", work)
        .env("HOME", work)
        .output()
        .with_context(|| format!("cannot run {contain}: build it first (cargo build --release --bin contain)"))?;
    Ok(output)
}

/// Returns the playbook: the instances tagged `compromised=true`, found by contain's selector as
/// Custodian's filter finds them.
fn contain_playbook(tool: Tool, instances: usize) -> String {
    let options = match tool {
        Tool::ContainSameJob => "      sever_tracked_connections: false\n      protect: false\n      tag: false\n",
        _ => "      incident: INC-BENCH\n",
    };
    format!(
        "name: bench-custodian-{}\ndescription: Isolate every instance tagged compromised=true.\nsteps:\n  - id: isolate\n    action: isolate\n    target: {{ select: aws.ec2.instance, tags: {{ compromised: \"true\" }} }}\n    max_targets: {instances}\n    with:\n{options}",
        tool.name().replace('_', "-")
    )
}

/// Returns contain's settings for the proxy, which imposes no rate limit. Every bucket that
/// isolation draws on (EC2's, and the Auto Scaling and ELBv2 reads of each instance's membership)
/// gets 100,000 tokens and 100,000 per second, far more than 200 instances need, so pacing does
/// not wait. The published EC2 buckets belong to scenario S1, not to this comparison.
fn contain_config() -> String {
    let mut text = format!("[engine]\nconcurrency = {CONCURRENCY}\n\n[pacing]\n");
    let buckets = [
        "ec2:describe",
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:resource-intensive",
        "ec2:CreateTags",
        "ec2:mutating",
        "autoscaling:read",
        "autoscaling:mutating",
        "elbv2:read",
        "elbv2:mutating",
    ];
    for bucket in buckets {
        text.push_str(&format!("\"{bucket}\" = {{ burst = 100000, per_second = 100000 }}\n"));
    }
    text
}

/// Returns the instances that have an interface whose groups are not the isolation group alone,
/// read from moto directly.
async fn not_isolated(estate: &Estate) -> anyhow::Result<Vec<String>> {
    let mut bad = Vec::new();
    for chunk in estate.instances.chunks(100) {
        let described = estate
            .ec2
            .describe_instances()
            .filters(Filter::builder().name("instance-id").set_values(Some(chunk.to_vec())).build())
            .send()
            .await
            .context("DescribeInstances")?;
        let mut seen = 0;
        for instance in described.reservations().iter().flat_map(|r| r.instances()) {
            seen += 1;
            let isolated = !instance.network_interfaces().is_empty()
                && instance.network_interfaces().iter().all(|eni| {
                    let groups: Vec<&str> = eni.groups().iter().filter_map(|g| g.group_id()).collect();
                    groups == [estate.isolation_group.as_str()]
                });
            if !isolated {
                bad.push(instance.instance_id().unwrap_or_default().to_string());
            }
        }
        anyhow::ensure!(seen == chunk.len(), "moto described {seen} of {} instances", chunk.len());
    }
    Ok(bad)
}

/// Returns the CPU time (user and system) a process has used so far, from `/proc/PID/stat`, or
/// `None` when it cannot be read.
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name, in clock ticks.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf reads a system constant and has no other effect.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / per_second)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 }
}

fn tail(output: &std::process::Output, lines: usize) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
