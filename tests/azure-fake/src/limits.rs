//! The optional cloud-limits mode of the fake: ARM's request buckets per
//! region, a lognormal latency per ARM request, and asynchronous operations
//! that end after a sampled duration, with time scaled for benchmarks.
//!
//! Rates are multiplied by `scale`, and latencies and operation durations are
//! divided by it. `Retry-After` is whole seconds in HTTP, so every scaled
//! `Retry-After` is rounded up to whole seconds, and is at least 1.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The limits that the fake imposes on ARM requests, in the cloud's own
/// (unscaled) units.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmLimits {
    /// Size of the read bucket of each region (ARM: 250).
    pub read_burst: f64,
    /// Refill of the read bucket per second (ARM: 25).
    pub read_per_second: f64,
    /// Size of the write bucket of each region (ARM: 200).
    pub write_burst: f64,
    /// Refill of the write bucket per second (ARM: 10).
    pub write_per_second: f64,
    /// Size of the Microsoft.Network write bucket of each region (1,000 per 5 minutes).
    pub network_write_burst: f64,
    /// Refill of the Microsoft.Network write bucket per second (1,000 / 300).
    pub network_write_per_second: f64,
    /// Median latency of an ARM request, in milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile of the latency of an ARM request, in milliseconds.
    pub latency_p99_ms: f64,
    /// Median duration of an asynchronous operation, in seconds.
    pub operation_p50_seconds: f64,
    /// 99th percentile of the duration of an asynchronous operation, in seconds.
    pub operation_p99_seconds: f64,
    /// `Retry-After` of a write and of an operation status that is in progress, in seconds.
    pub operation_retry_after_seconds: f64,
    /// Time scale: rates are multiplied by it, latencies and durations divided by it.
    pub scale: f64,
}

impl Default for ArmLimits {
    /// Returns ARM's published limits per subscription, principal and region,
    /// with an 8 s median operation and a 150 ms median latency, unscaled.
    fn default() -> ArmLimits {
        ArmLimits {
            read_burst: 250.0,
            read_per_second: 25.0,
            write_burst: 200.0,
            write_per_second: 10.0,
            network_write_burst: 1000.0,
            network_write_per_second: 1000.0 / 300.0,
            latency_p50_ms: 150.0,
            latency_p99_ms: 800.0,
            operation_p50_seconds: 8.0,
            operation_p99_seconds: 20.0,
            operation_retry_after_seconds: 10.0,
            scale: 1.0,
        }
    }
}

/// Counts of one kind of ARM or Graph request under the limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitCounts {
    pub calls: u64,
    /// Requests that got 429 because a bucket was empty: `SubscriptionRequestsThrottled`
    /// from ARM, `TooManyRequests` from Graph.
    pub throttled: u64,
    /// ARM writes that got 429 `RetryableErrorDueToAnotherOperation` because the
    /// resource was locked; always 0 for Graph.
    pub busy: u64,
}

/// One asynchronous operation that the fake started under the limits.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRecord {
    /// Lower-case id of the top-level resource the operation locked.
    pub resource: String,
    /// Percent-decoded path of the write that started it.
    pub request_path: String,
    /// Azure region of the resource, such as `westus`.
    pub location: String,
    /// Time from `set_limits` to the write, in real time.
    pub started: Duration,
    /// Time from the write to the end of the operation, scaled (real time).
    pub duration: Duration,
}

/// Which bucket a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum BucketKind {
    Reads,
    Writes,
    NetworkWrites,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The limits in force with the state of their buckets and the counts.
#[derive(Debug)]
pub(crate) struct LimitState {
    pub limits: ArmLimits,
    buckets: BTreeMap<(String, BucketKind), Bucket>,
    /// Counts by `METHOD kind`, such as `PUT subnets` or `GET operations`.
    pub counts: BTreeMap<String, LimitCounts>,
    pub operations: Vec<OperationRecord>,
    /// When `set_limits` was called, the origin of `OperationRecord::started`.
    pub since: Instant,
}

impl LimitState {
    pub fn new(limits: ArmLimits) -> LimitState {
        LimitState {
            limits,
            buckets: BTreeMap::new(),
            counts: BTreeMap::new(),
            operations: Vec::new(),
            since: Instant::now(),
        }
    }

    fn bucket_limit(&self, kind: BucketKind) -> (f64, f64) {
        let limits = &self.limits;
        let (burst, per_second) = match kind {
            BucketKind::Reads => (limits.read_burst, limits.read_per_second),
            BucketKind::Writes => (limits.write_burst, limits.write_per_second),
            BucketKind::NetworkWrites => {
                (limits.network_write_burst, limits.network_write_per_second)
            }
        };
        (burst, per_second * limits.scale)
    }

    /// Takes a token from each bucket that a request draws on, or returns the
    /// `Retry-After` in whole seconds when one of them is empty. A throttled
    /// request takes no token.
    pub fn admit(&mut self, region: &str, method: &str, namespace: &str) -> Result<(), u64> {
        let is_read = method == "GET" || method == "HEAD";
        let mut kinds = vec![if is_read {
            BucketKind::Reads
        } else {
            BucketKind::Writes
        }];
        if !is_read && namespace.eq_ignore_ascii_case("Microsoft.Network") {
            kinds.push(BucketKind::NetworkWrites);
        }
        let now = Instant::now();
        let mut wait: f64 = 0.0;
        for kind in &kinds {
            let (burst, per_second) = self.bucket_limit(*kind);
            let bucket = self
                .buckets
                .entry((region.to_ascii_lowercase(), *kind))
                .or_insert(Bucket {
                    tokens: burst,
                    updated: now,
                });
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
            bucket.updated = now;
            if bucket.tokens < 1.0 {
                wait = wait.max((1.0 - bucket.tokens) / per_second);
            }
        }
        if wait > 0.0 {
            return Err(whole_seconds(wait));
        }
        for kind in &kinds {
            if let Some(bucket) = self.buckets.get_mut(&(region.to_ascii_lowercase(), *kind)) {
                bucket.tokens -= 1.0;
            }
        }
        Ok(())
    }

    pub fn count(&mut self, key: &str) -> &mut LimitCounts {
        self.counts.entry(key.to_string()).or_default()
    }

    /// Draws the latency of one ARM request, scaled.
    pub fn latency(&self) -> Duration {
        let limits = &self.limits;
        lognormal(
            limits.latency_p50_ms / 1000.0,
            limits.latency_p99_ms / 1000.0,
        )
        .div_f64(limits.scale)
    }

    /// Draws the duration of one asynchronous operation, scaled.
    pub fn operation_duration(&self) -> Duration {
        let limits = &self.limits;
        lognormal(limits.operation_p50_seconds, limits.operation_p99_seconds).div_f64(limits.scale)
    }

    /// Returns the scaled `Retry-After` of writes and in-progress operation statuses.
    pub fn operation_retry_after(&self) -> u64 {
        whole_seconds(self.limits.operation_retry_after_seconds / self.limits.scale)
    }
}

/// Rounds a wait up to whole seconds, at least 1, as `Retry-After` carries it.
pub(crate) fn whole_seconds(seconds: f64) -> u64 {
    (seconds.ceil() as u64).max(1)
}

/// Returns the kind of an ARM request for the counts: the last resource type
/// in the path (`subnets`, `networkSecurityGroups`), or `operations` and
/// `operationResults` for polls.
pub(crate) fn request_kind(segments: &[String]) -> String {
    let after_namespace = segments
        .iter()
        .position(|segment| segment.eq_ignore_ascii_case("providers"))
        .map(|index| &segments[(index + 2).min(segments.len())..])
        .unwrap_or_default();
    if after_namespace
        .first()
        .is_some_and(|first| first.eq_ignore_ascii_case("locations"))
    {
        return after_namespace
            .get(2)
            .cloned()
            .unwrap_or_else(|| "locations".to_string());
    }
    after_namespace
        .iter()
        .step_by(2)
        .last()
        .cloned()
        .unwrap_or_else(|| "other".to_string())
}

/// Draws a uniform number in [0, 1).
fn uniform() -> f64 {
    // The low 62 bits of a version 4 UUID are random; the two above them mark the variant.
    let bits = (uuid::Uuid::new_v4().as_u128() as u64 & ((1 << 62) - 1)) >> 9;
    bits as f64 / (1u64 << 53) as f64
}

/// Draws from the lognormal distribution with this median and 99th
/// percentile (in any unit, taken as seconds), by the Box-Muller transform.
pub(crate) fn lognormal(p50: f64, p99: f64) -> Duration {
    if p50 <= 0.0 {
        return Duration::ZERO;
    }
    // The 99th percentile of the standard normal distribution is 2.326.
    let sigma = (p99.max(p50) / p50).ln() / 2.326;
    let normal =
        (-2.0 * (1.0 - uniform()).ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
    Duration::from_secs_f64((p50.ln() + sigma * normal).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_median_is_near_p50() {
        let mut samples: Vec<f64> = (0..4001)
            .map(|_| lognormal(8.0, 20.0).as_secs_f64())
            .collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[2000];
        assert!((7.0..9.0).contains(&median), "median {median}");
        assert!(samples[3960] < 30.0, "99th percentile {}", samples[3960]);
    }

    #[test]
    fn request_kind_names_type_or_poll() {
        let split = |path: &str| crate::http::split_path(path);
        assert_eq!(
            request_kind(&split(
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
            )),
            "subnets"
        );
        assert_eq!(
            request_kind(&split(
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkSecurityGroups/n"
            )),
            "networkSecurityGroups"
        );
        assert_eq!(
            request_kind(&split(
                "/subscriptions/s/providers/Microsoft.Network/locations/westus/operations/1"
            )),
            "operations"
        );
    }

    #[test]
    fn empty_bucket_returns_retry_after() {
        let mut state = LimitState::new(ArmLimits {
            write_burst: 2.0,
            write_per_second: 0.5,
            ..ArmLimits::default()
        });
        assert_eq!(state.admit("westus", "PUT", "Microsoft.Network"), Ok(()));
        assert_eq!(state.admit("westus", "PUT", "Microsoft.Network"), Ok(()));
        assert_eq!(state.admit("westus", "PUT", "Microsoft.Network"), Err(2));
        assert_eq!(
            state.admit("eastus", "PUT", "Microsoft.Network"),
            Ok(()),
            "each region has its own bucket"
        );
        assert_eq!(
            state.admit("westus", "GET", "Microsoft.Network"),
            Ok(()),
            "reads draw on another bucket"
        );
    }
}
