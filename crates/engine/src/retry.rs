//! Retrying cloud calls that failed for a passing reason: throttling, or a fault of the cloud
//! or the network.
//!
//! The provider clients make one attempt per call while applying, so that every retry passes
//! through here. Reads are safe to repeat and are retried as they are. A change is not repeated
//! blindly: before each new attempt the engine reads the subject again and lets the action
//! decide whether the failed attempt took effect (see `Engine::apply_with_retries`).
//!
//! Every attempt first takes a token of its API bucket from the pacer ([`crate::pacing`]).
//! Throttled calls are retried until the policy's time budget is spent, not a small number of
//! attempts: the pacer slows the bucket down, so the retry waits until the bucket can take it.

use std::time::Duration;

use contain_core::{Action, ActionError, Assessment, CallContext, CallKind, ErrorKind, Operation, RateLimit, Reconciliation, Target};
use std::time::Instant;
use serde_json::Value;

use crate::Engine;

/// How often and how long to wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the second attempt, doubled for each attempt after it.
    pub base: Duration,
    /// The maximum wait.
    pub cap: Duration,
    /// How long throttled calls are retried, past `attempts`.
    pub throttle_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 6, base: Duration::from_millis(200), cap: Duration::from_secs(10), throttle_budget: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// Returns the wait before attempt `next` (2 for the first retry): a random time up to the
    /// doubled base ("full jitter"), so that many targets throttled together do not retry together.
    pub fn delay(&self, next: u32) -> Duration {
        let doublings = next.saturating_sub(2).min(20);
        let ceiling = self.base.saturating_mul(1 << doublings).min(self.cap);
        let random = uuid::Uuid::new_v4().as_u128() as u64;
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(if millis == 0 { 0 } else { random % (millis + 1) })
    }
}

/// Waits before attempt `next`, logging why at info level.
pub(crate) async fn wait(policy: &RetryPolicy, next: u32, what: &str, error: &ActionError) {
    let delay = policy.delay(next);
    tracing::info!(
        attempt = next,
        of = policy.attempts,
        delay_ms = delay.as_millis() as u64,
        kind = %error.kind,
        "retrying {what} in {} ms (attempt {next} of {}): {}",
        delay.as_millis(),
        policy.attempts,
        error.message
    );
    tokio::time::sleep(delay).await;
}

/// A call's API bucket: its key in the pacer, its limit, and the tokens one call takes.
pub(crate) type Bucket = Option<(String, RateLimit, f64)>;

impl Engine {
    /// Returns the API bucket a call draws on, with the configured or published limit.
    fn bucket(&self, target: &Target, operation: &Operation, call: CallKind) -> Bucket {
        let provider = self.provider_for(&target.resource_type)?;
        let (name, published) = provider.rate_bucket(&operation.kind, call)?;
        let cost = provider.call_cost(operation, call);
        self.bucket_key(provider.name(), target, name, published, cost)
    }

    /// Returns the bucket that inspecting `target` draws on, when its provider names one.
    pub(crate) fn inspect_bucket(&self, target: &Target) -> Bucket {
        let provider = self.provider_for(&target.resource_type)?;
        let (name, published, cost) = provider.inspect_bucket(&target.resource_type)?;
        self.bucket_key(provider.name(), target, name, published, cost)
    }

    /// Builds the bucket's key in the pacer (per provider, account and region), with the
    /// configured or published limit.
    fn bucket_key(&self, provider: &str, target: &Target, name: &str, published: RateLimit, cost: f64) -> Bucket {
        let limit = self.rate_limits.get(name).copied().unwrap_or(published);
        let account = target.account.as_deref().unwrap_or("-");
        let region = target.region.as_deref().unwrap_or("-");
        Some((format!("{provider}/{account}/{region}/{name}"), limit, cost))
    }

    /// Waits for the bucket's tokens before a call, and returns when they were reserved.
    pub(crate) async fn pace(&self, bucket: &Bucket) -> Instant {
        match bucket {
            Some((key, limit, cost)) => crate::pacing::PACER.acquire(key, *limit, *cost).await,
            None => Instant::now(),
        }
    }

    /// Tells the pacer how a call went, whose tokens were reserved at `reserved`.
    pub(crate) fn paced<T>(&self, bucket: &Bucket, reserved: Instant, result: &Result<T, ActionError>) {
        let Some((key, _, _)) = bucket else { return };
        match result {
            Err(error) if error.kind == ErrorKind::Throttled => crate::pacing::PACER.throttled(key, reserved),
            Err(_) => {}
            Ok(_) => crate::pacing::PACER.succeeded(key),
        }
    }

    /// Decides whether a failed attempt is tried again, and waits first. A throttled call is
    /// retried within the time budget, and the pacer delays it until its bucket has a token.
    async fn retry_after(&self, error: &ActionError, bucket: &Bucket, attempt: &mut u32, started: Instant, what: &str) -> bool {
        let retry = match error.kind {
            ErrorKind::Throttled => *attempt < self.retry.attempts || started.elapsed() < self.retry.throttle_budget,
            ErrorKind::Transient => *attempt < self.retry.attempts,
            _ => false,
        };
        if !retry {
            return false;
        }
        *attempt += 1;
        if error.kind == ErrorKind::Throttled && bucket.is_some() {
            tracing::info!(attempt = *attempt, "throttled: retrying {what} when its API bucket allows (attempt {}): {}", *attempt, error.message);
        } else {
            wait(&self.retry, (*attempt).min(self.retry.attempts.max(2)), what, error).await;
        }
        true
    }

    /// Reads an operation's subject, retrying passing failures.
    pub(crate) async fn read_with_retries(&self, action: &dyn Action, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let bucket = self.bucket(target, operation, CallKind::Read);
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let reserved = self.pace(&bucket).await;
            let result = action.read(context, target, operation).await;
            crate::metrics::count_call("read", &operation.kind, result.as_ref().err().map(|e| e.kind));
            self.paced(&bucket, reserved, &result);
            match result {
                Err(error) if self.retry_after(&error, &bucket, &mut attempt, started, &format!("the read of {}", operation.subject)).await => {}
                other => return other,
            }
        }
    }

    /// Applies an operation, retrying passing failures. Before each new attempt it reads the
    /// subject and lets the action decide whether the failed attempt took effect: one that did is
    /// not repeated, and its value is the subject's value read.
    pub(crate) async fn apply_with_retries(&self, action: &dyn Action, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let bucket = self.bucket(target, operation, CallKind::Change);
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let reserved = self.pace(&bucket).await;
            let result = action.apply(context, target, operation).await;
            crate::metrics::count_call("change", &operation.kind, result.as_ref().err().map(|e| e.kind));
            self.paced(&bucket, reserved, &result);
            let error = match result {
                Ok(applied) => return Ok(applied),
                Err(error) => error,
            };
            if !self.retry_after(&error, &bucket, &mut attempt, started, &format!("{} on {target}", operation.id)).await {
                return Err(error);
            }

            let Ok(current) = self.read_with_retries(action, context, target, operation).await else {
                return Err(error);
            };
            match action.reconcile(operation, &current) {
                Reconciliation::Applied => {
                    tracing::info!(target = %target, operation = %operation.id, "the failed attempt took effect, so it is not repeated");
                    return Ok(current);
                }
                Reconciliation::NotApplied | Reconciliation::Partly { .. } => {
                    tracing::info!(target = %target, operation = %operation.id, "the failed attempt did not take effect, or only partly: trying again");
                }
                Reconciliation::Unknown { detail } => {
                    return Err(ActionError { message: format!("{}; then {detail}", error.message), ..error });
                }
            }
        }
    }

    /// Reverts an operation, retrying passing failures. Before each new attempt it reads the
    /// subject: when the failed attempt restored the prior value, it is not repeated.
    pub(crate) async fn revert_with_retries(
        &self,
        action: &dyn Action,
        context: &CallContext,
        target: &Target,
        operation: &Operation,
        applied: &Value,
    ) -> Result<Vec<String>, ActionError> {
        let bucket = self.bucket(target, operation, CallKind::Revert);
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let reserved = self.pace(&bucket).await;
            let result = action.revert(context, target, operation, applied).await;
            crate::metrics::count_call("revert", &operation.kind, result.as_ref().err().map(|e| e.kind));
            self.paced(&bucket, reserved, &result);
            let error = match result {
                Ok(notes) => return Ok(notes),
                Err(error) => error,
            };
            if !self.retry_after(&error, &bucket, &mut attempt, started, &format!("the revert of {} on {target}", operation.id)).await {
                return Err(error);
            }

            let Ok(current) = self.read_with_retries(action, context, target, operation).await else {
                return Err(error);
            };
            if action.assess(operation, &current, Some(applied)) == Assessment::Prior {
                tracing::info!(target = %target, operation = %operation.id, "the failed revert took effect, so it is not repeated");
                return Ok(Vec::new());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_bounds() {
        let policy = RetryPolicy { attempts: 10, base: Duration::from_millis(100), cap: Duration::from_millis(1000), ..RetryPolicy::default() };
        for _ in 0..200 {
            assert!(policy.delay(2) <= Duration::from_millis(100));
            assert!(policy.delay(3) <= Duration::from_millis(200));
            assert!(policy.delay(9) <= Duration::from_millis(1000));
        }
        // Jitter: 200 draws up to 1 s are not all equal.
        let draws: std::collections::BTreeSet<Duration> = (0..200).map(|_| policy.delay(9)).collect();
        assert!(draws.len() > 10, "{draws:?}");
    }
}
