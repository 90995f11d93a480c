//! The Graph side of the cloud-limits mode: one token bucket for Graph writes
//! and an optional lognormal latency per Graph request, with time scaled for
//! benchmarks as in [`crate::limits`].
//!
//! Graph limits identity writes per application and tenant. The fake issues
//! tokens to one application in one tenant, so it keeps one bucket.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::limits::{LimitCounts, lognormal, whole_seconds};

/// The limits that the fake imposes on Graph requests, in the cloud's own
/// (unscaled) units.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphLimits {
    /// Size of the write bucket (Graph identity writes: 3,000).
    pub write_burst: f64,
    /// Refill of the write bucket per second (3,000 per 150 s: 20).
    pub write_per_second: f64,
    /// Median latency of a Graph request, in milliseconds, or 0 for no latency.
    pub latency_p50_ms: f64,
    /// 99th percentile of the latency of a Graph request, in milliseconds.
    pub latency_p99_ms: f64,
    /// Time scale: the refill rate is multiplied by it, latencies divided by it.
    pub scale: f64,
}

impl Default for GraphLimits {
    /// Returns Graph's identity write limit of about 3,000 requests per 150 s
    /// per application and tenant, with no latency, unscaled.
    fn default() -> GraphLimits {
        GraphLimits {
            write_burst: 3000.0,
            write_per_second: 20.0,
            latency_p50_ms: 0.0,
            latency_p99_ms: 0.0,
            scale: 1.0,
        }
    }
}

/// The Graph limits in force with the state of the write bucket and the counts.
#[derive(Debug)]
pub(crate) struct GraphLimitState {
    pub limits: GraphLimits,
    tokens: f64,
    updated: Instant,
    /// Counts by `METHOD kind`, such as `PATCH users` or `POST revokeSignInSessions`.
    pub counts: BTreeMap<String, LimitCounts>,
}

impl GraphLimitState {
    pub fn new(limits: GraphLimits) -> GraphLimitState {
        GraphLimitState {
            tokens: limits.write_burst,
            updated: Instant::now(),
            limits,
            counts: BTreeMap::new(),
        }
    }

    /// Counts a Graph request and, for a write, takes a token from the write
    /// bucket. Returns the `Retry-After` in whole seconds when the bucket is
    /// empty, and then takes no token.
    ///
    /// Writes are PATCH, PUT, DELETE and every POST but `$batch` itself,
    /// whose inner requests the caller admits one by one.
    pub fn admit(&mut self, method: &str, segments: &[String]) -> Result<(), u64> {
        let kind = graph_request_kind(segments);
        let key = format!("{method} {kind}");
        self.counts.entry(key.clone()).or_default().calls += 1;
        let is_write = !matches!(method, "GET" | "HEAD") && kind != "$batch";
        if !is_write {
            return Ok(());
        }

        let per_second = self.limits.write_per_second * self.limits.scale;
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(self.limits.write_burst);
        self.updated = now;
        if self.tokens < 1.0 {
            self.counts.entry(key).or_default().throttled += 1;
            return Err(whole_seconds((1.0 - self.tokens) / per_second));
        }
        self.tokens -= 1.0;
        Ok(())
    }

    /// Draws the latency of one Graph request, scaled, or `None` without latency.
    pub fn latency(&self) -> Option<Duration> {
        let limits = &self.limits;
        (limits.latency_p50_ms > 0.0).then(|| {
            lognormal(limits.latency_p50_ms / 1000.0, limits.latency_p99_ms / 1000.0)
                .div_f64(limits.scale)
        })
    }
}

/// Returns the kind of a Graph request for the counts, from the segments
/// after `v1.0`: the last name of the `collection/{id}/name/...` pattern,
/// such as `users`, `revokeSignInSessions`, `memberOf` or `$batch`.
pub(crate) fn graph_request_kind(segments: &[String]) -> String {
    segments
        .iter()
        .step_by(2)
        .last()
        .cloned()
        .unwrap_or_else(|| "other".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(path: &str) -> Vec<String> {
        crate::http::split_path(path)
    }

    #[test]
    fn request_kind_names_collection_or_action() {
        assert_eq!(graph_request_kind(&split("/users/u1")), "users");
        assert_eq!(
            graph_request_kind(&split("/users/u1/revokeSignInSessions")),
            "revokeSignInSessions"
        );
        assert_eq!(
            graph_request_kind(&split("/users/u1/memberOf/microsoft.graph.directoryRole")),
            "memberOf"
        );
        assert_eq!(graph_request_kind(&split("/$batch")), "$batch");
    }

    #[test]
    fn write_bucket_throttles_writes_only() {
        let mut state = GraphLimitState::new(GraphLimits {
            write_burst: 2.0,
            write_per_second: 0.5,
            ..GraphLimits::default()
        });
        let user = split("/users/u1");
        let revoke = split("/users/u1/revokeSignInSessions");
        assert_eq!(state.admit("PATCH", &user), Ok(()));
        assert_eq!(state.admit("POST", &revoke), Ok(()));
        assert_eq!(state.admit("PATCH", &user), Err(2));
        assert_eq!(state.admit("GET", &user), Ok(()), "reads are not limited");
        assert_eq!(
            state.admit("POST", &split("/$batch")),
            Ok(()),
            "a batch draws only through its inner requests"
        );
        assert_eq!(state.counts["PATCH users"].calls, 2);
        assert_eq!(state.counts["PATCH users"].throttled, 1);
        assert_eq!(state.counts["POST revokeSignInSessions"].throttled, 0);
    }
}
