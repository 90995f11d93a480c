//! Retrying cloud calls that failed for a passing reason: throttling, or a fault of the cloud
//! or the network.
//!
//! The provider clients make one attempt per call while applying, so that every retry passes
//! through here. Reads are safe to repeat and are retried as they are. A change is not repeated
//! blindly: before each new attempt the engine reads the subject again and lets the action
//! decide whether the failed attempt took effect (see `Engine::apply_with_retries`).

use std::time::Duration;

use contain_core::{Action, ActionError, Assessment, CallContext, ErrorKind, Operation, Reconciliation, Target};
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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 6, base: Duration::from_millis(200), cap: Duration::from_secs(10) }
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

/// True for failures that may pass: throttling, and faults of the cloud or the network.
pub(crate) fn is_transient(error: &ActionError) -> bool {
    matches!(error.kind, ErrorKind::Throttled | ErrorKind::Transient)
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

impl Engine {
    /// Reads an operation's subject, retrying passing failures.
    pub(crate) async fn read_with_retries(&self, action: &dyn Action, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let mut attempt = 1;
        loop {
            let result = action.read(context, target, operation).await;
            crate::metrics::count_call("read", &operation.kind, result.as_ref().err().map(|e| e.kind));
            match result {
                Err(error) if is_transient(&error) && attempt < self.retry.attempts => {
                    attempt += 1;
                    wait(&self.retry, attempt, &format!("the read of {}", operation.subject), &error).await;
                }
                other => return other,
            }
        }
    }

    /// Applies an operation, retrying passing failures. Before each new attempt it reads the
    /// subject and lets the action decide whether the failed attempt took effect: one that did is
    /// not repeated, and its value is the subject's value read.
    pub(crate) async fn apply_with_retries(&self, action: &dyn Action, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let mut attempt = 1;
        loop {
            let result = action.apply(context, target, operation).await;
            crate::metrics::count_call("change", &operation.kind, result.as_ref().err().map(|e| e.kind));
            let error = match result {
                Ok(applied) => return Ok(applied),
                Err(error) => error,
            };
            if !is_transient(&error) || attempt >= self.retry.attempts {
                return Err(error);
            }
            attempt += 1;
            wait(&self.retry, attempt, &format!("{} on {target}", operation.id), &error).await;

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
        let mut attempt = 1;
        loop {
            let result = action.revert(context, target, operation, applied).await;
            crate::metrics::count_call("revert", &operation.kind, result.as_ref().err().map(|e| e.kind));
            let error = match result {
                Ok(notes) => return Ok(notes),
                Err(error) => error,
            };
            if !is_transient(&error) || attempt >= self.retry.attempts {
                return Err(error);
            }
            attempt += 1;
            wait(&self.retry, attempt, &format!("the revert of {} on {target}", operation.id), &error).await;

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
        let policy = RetryPolicy { attempts: 10, base: Duration::from_millis(100), cap: Duration::from_millis(1000) };
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
