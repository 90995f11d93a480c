//! Client-side pacing: a token bucket per provider bucket, account and region, shared by every
//! run in the process, so that many targets contained at once stay within the cloud's published
//! rate limits instead of being throttled. A throttling error halves the bucket's rate, and each
//! success gives back a little of it, up to the published rate (additive increase,
//! multiplicative decrease). Only a call reserved after the last slow-down can slow the bucket
//! down again, because the calls already in flight when the cloud began to throttle were sent at
//! the old rate, so their throttling errors tell nothing about the new one.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use std::time::Instant;

use contain_core::RateLimit;

/// The lowest rate throttling can bring a bucket to, as a share of its published rate.
const MIN_RATE_SHARE: f64 = 0.05;
/// The share of the published rate each success gives back.
const RECOVERY_SHARE: f64 = 0.02;

/// One bucket's state. Tokens may go below zero: a caller that takes one it does not have waits
/// until the refill covers it, so callers are served in the order they came.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    published: f64,
    updated: Instant,
    /// When throttling last slowed the bucket down.
    slowed: Option<Instant>,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
    }
}

/// The buckets of the process.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// The pacer every engine in the process shares.
pub(crate) static PACER: LazyLock<Pacer> = LazyLock::new(Pacer::default);

impl Pacer {
    /// Takes a token from the bucket `key`, made with `limit` on first use, and returns how long
    /// the caller must wait before its call.
    #[cfg(test)]
    pub(crate) fn reserve(&self, key: &str, limit: RateLimit) -> Duration {
        self.reserve_at(key, limit, 1.0, Instant::now())
    }

    /// Takes `tokens` tokens as [`Pacer::reserve`] takes one, at the time `now`.
    fn reserve_at(&self, key: &str, limit: RateLimit, tokens: f64, now: Instant) -> Duration {
        let mut buckets = self.buckets.lock().expect("pacer lock");
        let bucket = buckets.entry(key.to_string()).or_insert_with(|| Bucket {
            tokens: limit.burst,
            burst: limit.burst,
            rate: limit.per_second,
            published: limit.per_second,
            updated: now,
            slowed: None,
        });
        bucket.refill(now);
        bucket.tokens -= tokens;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / bucket.rate)
        }
    }

    /// Waits for `tokens` tokens of the bucket `key`: one per cloud call the caller makes.
    /// Returns when the tokens were reserved, for [`Pacer::throttled`].
    pub(crate) async fn acquire(&self, key: &str, limit: RateLimit, tokens: f64) -> Instant {
        let reserved = Instant::now();
        let wait = self.reserve_at(key, limit, tokens, reserved);
        if !wait.is_zero() {
            tracing::debug!(bucket = key, wait_ms = wait.as_millis() as u64, "pacing a cloud call");
            tokio::time::sleep(wait).await;
        }
        reserved
    }

    /// Slows the bucket down after the cloud throttled a call whose tokens were reserved at
    /// `reserved`, unless the bucket was slowed down since.
    pub(crate) fn throttled(&self, key: &str, reserved: Instant) {
        self.throttled_at(key, reserved, Instant::now());
    }

    fn throttled_at(&self, key: &str, reserved: Instant, now: Instant) {
        let mut buckets = self.buckets.lock().expect("pacer lock");
        let Some(bucket) = buckets.get_mut(key) else { return };
        if bucket.slowed.is_some_and(|slowed| reserved <= slowed) {
            return;
        }
        bucket.refill(now);
        bucket.rate = (bucket.rate / 2.0).max(bucket.published * MIN_RATE_SHARE);
        bucket.tokens = bucket.tokens.min(0.0);
        bucket.slowed = Some(now);
        tracing::info!(bucket = key, rate_per_second = bucket.rate, "throttled by the cloud: slowing this API bucket down");
    }

    /// Gives back some of the rate after a call the cloud did not throttle.
    pub(crate) fn succeeded(&self, key: &str) {
        let mut buckets = self.buckets.lock().expect("pacer lock");
        if let Some(bucket) = buckets.get_mut(key)
            && bucket.rate < bucket.published
        {
            bucket.refill(Instant::now());
            bucket.rate = (bucket.rate + bucket.published * RECOVERY_SHARE).min(bucket.published);
        }
    }

    /// Returns the bucket's current rate, for tests and metrics.
    #[cfg(test)]
    pub(crate) fn rate(&self, key: &str) -> Option<f64> {
        self.buckets.lock().expect("pacer lock").get(key).map(|b| b.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit { burst: 3.0, per_second: 2.0 };

    #[test]
    fn burst_then_refill_rate() {
        let pacer = Pacer::default();
        let start = Instant::now();
        let waits: Vec<Duration> = (0..6).map(|_| pacer.reserve_at("b", LIMIT, 1.0, start)).collect();
        assert_eq!(&waits[..3], [Duration::ZERO; 3], "the burst goes at once");
        assert_eq!(waits[3], Duration::from_millis(500), "then one per half second");
        assert_eq!(waits[5], Duration::from_millis(1500), "in the order the callers came");

        let later = start + Duration::from_secs(10);
        assert_eq!(pacer.reserve_at("b", LIMIT, 1.0, later), Duration::ZERO, "refilled after a pause");
    }

    #[test]
    fn call_of_several_requests_takes_as_many_tokens() {
        let pacer = Pacer::default();
        let start = Instant::now();
        assert_eq!(pacer.reserve_at("b", LIMIT, 2.0, start), Duration::ZERO);
        assert_eq!(pacer.reserve_at("b", LIMIT, 2.0, start), Duration::from_millis(500), "one token short at two per second");
        assert_eq!(pacer.reserve_at("b", LIMIT, 1.0, start), Duration::from_millis(1000));
    }

    #[test]
    fn throttling_halves_then_recovers() {
        let pacer = Pacer::default();
        let start = Instant::now();
        pacer.reserve_at("b", LIMIT, 1.0, start);
        pacer.throttled_at("b", start, start);
        assert_eq!(pacer.rate("b"), Some(1.0));
        for n in 1..=10 {
            let later = start + Duration::from_millis(n);
            pacer.throttled_at("b", later, later);
        }
        assert_eq!(pacer.rate("b"), Some(0.1), "never below 5% of the published rate");
        for _ in 0..100 {
            pacer.succeeded("b");
        }
        assert_eq!(pacer.rate("b"), Some(2.0), "back to the published rate, not above");
        assert_eq!(pacer.reserve("other", LIMIT), Duration::ZERO, "buckets are apart");
    }

    #[test]
    fn slow_down_ignores_calls_reserved_before_it() {
        let pacer = Pacer::default();
        let start = Instant::now();
        let first_answer = start + Duration::from_millis(100);
        pacer.reserve_at("b", LIMIT, 1.0, start);
        pacer.throttled_at("b", start, first_answer);

        // Four more calls of the same burst come back throttled after the slow-down.
        for n in 1..=4 {
            pacer.throttled_at("b", start + Duration::from_millis(n), first_answer + Duration::from_millis(n));
        }
        assert_eq!(pacer.rate("b"), Some(1.0), "one slow-down for the burst");

        let after = first_answer + Duration::from_millis(10);
        pacer.throttled_at("b", after, after + Duration::from_millis(100));
        assert_eq!(pacer.rate("b"), Some(0.5), "a call reserved after the slow-down slows the bucket down again");
    }
}
