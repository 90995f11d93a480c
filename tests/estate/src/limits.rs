//! API rate limits, latency and server errors for the proxy, as a cloud imposes them: a token
//! bucket per group of actions that returns `RequestLimitExceeded` when empty, a lognormal
//! latency, 500 errors on a share of requests, and another client that drains a bucket. The benchmark puts
//! them in front of moto, which has none of them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One bucket of the cloud: the actions that draw on it, its size and its refill rate.
#[derive(Debug, Clone)]
pub struct BucketLimit {
    pub name: String,
    pub actions: Vec<String>,
    pub burst: f64,
    pub per_second: f64,
}

/// What the proxy imposes.
#[derive(Debug, Clone)]
pub struct CloudLimits {
    pub buckets: Vec<BucketLimit>,
    /// The bucket of every action no other bucket names.
    pub default_bucket: Option<BucketLimit>,
    /// Median and 99th percentile of the latency added to every request, in milliseconds.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    /// The share of requests that get a 500 error without reaching moto.
    pub error_rate: f64,
    /// Another client taking tokens from a bucket: its name and tokens per second.
    pub drain: Option<(String, f64)>,
}

/// Counts of one action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionCounts {
    pub calls: u64,
    pub throttled: u64,
    pub errors: u64,
    /// Calls sent with `DryRun=true` and forwarded: they draw on the bucket as EC2's do, but
    /// change nothing.
    pub dry_runs: u64,
}

/// What the proxy does with one request under the limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    Forward(Duration),
    Throttle,
    ServerError,
}

#[derive(Debug)]
struct BucketState {
    limit: BucketLimit,
    tokens: f64,
    updated: Instant,
}

/// The limits with their buckets' state and the counts.
#[derive(Debug)]
pub(crate) struct LimitState {
    limits: CloudLimits,
    buckets: BTreeMap<String, BucketState>,
    pub(crate) counts: BTreeMap<String, ActionCounts>,
}

impl LimitState {
    pub(crate) fn new(limits: CloudLimits) -> LimitState {
        let now = Instant::now();
        let mut buckets = BTreeMap::new();
        for limit in limits.buckets.iter().chain(limits.default_bucket.iter()) {
            buckets.insert(limit.name.clone(), BucketState { limit: limit.clone(), tokens: limit.burst, updated: now });
        }
        LimitState { limits, buckets, counts: BTreeMap::new() }
    }

    fn bucket_of(&self, action: &str) -> Option<String> {
        let named = self.limits.buckets.iter().find(|b| b.actions.iter().any(|a| a == action)).map(|b| b.name.clone());
        named.or_else(|| self.limits.default_bucket.as_ref().map(|b| b.name.clone()))
    }

    /// Decides what happens to a request of `action`, taking a token when it goes through.
    pub(crate) fn admit(&mut self, action: &str, dry_run: bool) -> Verdict {
        let now = Instant::now();
        let drain = self.limits.drain.clone();
        for (name, state) in self.buckets.iter_mut() {
            let elapsed = now.saturating_duration_since(state.updated).as_secs_f64();
            let drained = match &drain {
                Some((bucket, rate)) if bucket == name => elapsed * rate,
                _ => 0.0,
            };
            state.tokens = (state.tokens + elapsed * state.limit.per_second - drained).clamp(-state.limit.burst, state.limit.burst);
            state.updated = now;
        }
        let bucket = self.bucket_of(action);
        let counts = self.counts.entry(action.to_string()).or_default();
        counts.calls += 1;

        if let Some(name) = bucket {
            let bucket = self.buckets.get_mut(&name).expect("every named bucket has a state");
            if bucket.tokens < 1.0 {
                counts.throttled += 1;
                return Verdict::Throttle;
            }
            bucket.tokens -= 1.0;
        }
        if uniform() < self.limits.error_rate {
            counts.errors += 1;
            return Verdict::ServerError;
        }
        if dry_run {
            counts.dry_runs += 1;
        }
        Verdict::Forward(lognormal(self.limits.latency_p50_ms, self.limits.latency_p99_ms))
    }
}

/// Draws a uniform number in [0, 1).
fn uniform() -> f64 {
    // The low 62 bits of a version 4 UUID are random; the two above them mark the variant.
    let bits = (uuid::Uuid::new_v4().as_u128() as u64 & ((1 << 62) - 1)) >> 9;
    bits as f64 / (1u64 << 53) as f64
}

/// Draws a latency from the lognormal distribution with this median and 99th percentile.
fn lognormal(p50_ms: f64, p99_ms: f64) -> Duration {
    if p50_ms <= 0.0 {
        return Duration::ZERO;
    }
    // The 99th percentile of the standard normal distribution is 2.326.
    let sigma = (p99_ms.max(p50_ms) / p50_ms).ln() / 2.326;
    let normal = (-2.0 * (1.0 - uniform()).ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
    Duration::from_secs_f64((p50_ms.ln() + sigma * normal).exp() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> CloudLimits {
        CloudLimits {
            buckets: vec![BucketLimit { name: "modify".into(), actions: vec!["ModifyNetworkInterfaceAttribute".into()], burst: 3.0, per_second: 1.0 }],
            default_bucket: None,
            latency_p50_ms: 0.0,
            latency_p99_ms: 0.0,
            error_rate: 0.0,
            drain: None,
        }
    }

    #[test]
    fn empty_bucket_throttles() {
        let mut state = LimitState::new(limits());
        let verdicts: Vec<Verdict> = (0..4).map(|_| state.admit("ModifyNetworkInterfaceAttribute", false)).collect();
        assert_eq!(verdicts[..3], [Verdict::Forward(Duration::ZERO); 3]);
        assert_eq!(verdicts[3], Verdict::Throttle);
        assert_eq!(state.admit("DescribeInstances", false), Verdict::Forward(Duration::ZERO), "no bucket, no limit");
        assert_eq!(state.counts["ModifyNetworkInterfaceAttribute"], ActionCounts { calls: 4, throttled: 1, errors: 0, dry_runs: 0 });
    }

    #[test]
    fn latency_quantiles() {
        let mut draws: Vec<f64> = (0..20_000).map(|_| lognormal(150.0, 800.0).as_secs_f64() * 1000.0).collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[10_000];
        let p99 = draws[19_800];
        assert!((130.0..170.0).contains(&median), "median {median}");
        assert!((650.0..980.0).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn equal_quantiles_give_fixed_latency() {
        for _ in 0..1_000 {
            let millis = lognormal(100.0, 100.0).as_secs_f64() * 1000.0;
            assert!((millis - 100.0).abs() < 1e-6, "latency {millis} ms");
        }
    }
}
