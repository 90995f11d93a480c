//! Counters of cloud work and step durations, shared by all runs in the process, for the
//! server's `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use contain_core::{ActionKind, ErrorKind};

/// The upper bounds, in seconds, of the step duration histogram's buckets.
pub const STEP_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The counts of one kind of cloud call for one kind of operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudCalls {
    /// `read`, `change` or `revert`.
    pub call: &'static str,
    /// The operation kind the provider names, such as `ec2.interface_groups`.
    pub operation: String,
    pub attempts: u64,
    /// Failures where the cloud asked to slow down (throttling).
    pub throttled: u64,
    /// Other passing failures: 5xx, resets, time-outs.
    pub transient: u64,
}

/// The totals over every kind of operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloudCounters {
    /// Reads of an operation's subject (drift checks, reconciliation, retries).
    pub reads: u64,
    /// Attempts to apply an operation.
    pub changes: u64,
    /// Attempts to revert an operation.
    pub reverts: u64,
    pub throttled: u64,
    pub transient: u64,
}

/// A histogram of how long the steps of one action took to apply, over every run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepDurations {
    pub action: String,
    /// Cumulative counts, one per bound of [`STEP_BUCKETS`].
    pub buckets: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

static CALLS: Mutex<BTreeMap<(&'static str, String), CloudCalls>> = Mutex::new(BTreeMap::new());
static STEPS: Mutex<BTreeMap<String, StepDurations>> = Mutex::new(BTreeMap::new());

/// Returns the counts of cloud calls, by call and operation kind.
pub fn cloud_calls() -> Vec<CloudCalls> {
    CALLS.lock().expect("metrics lock").values().cloned().collect()
}

/// Returns the totals of cloud calls.
pub fn cloud_counters() -> CloudCounters {
    let mut totals = CloudCounters::default();
    for calls in cloud_calls() {
        match calls.call {
            "read" => totals.reads += calls.attempts,
            "change" => totals.changes += calls.attempts,
            _ => totals.reverts += calls.attempts,
        }
        totals.throttled += calls.throttled;
        totals.transient += calls.transient;
    }
    totals
}

/// Returns the step duration histograms, by action.
pub fn step_durations() -> Vec<StepDurations> {
    STEPS.lock().expect("metrics lock").values().cloned().collect()
}

/// Counts one attempt of a cloud call, and its failure if it failed.
pub(crate) fn count_call(call: &'static str, operation: &str, failure: Option<ErrorKind>) {
    let mut calls = CALLS.lock().expect("metrics lock");
    let entry = calls.entry((call, operation.to_string())).or_insert_with(|| CloudCalls { call, operation: operation.to_string(), ..CloudCalls::default() });
    entry.attempts += 1;
    match failure {
        Some(ErrorKind::Throttled) => entry.throttled += 1,
        Some(ErrorKind::Transient) => entry.transient += 1,
        _ => {}
    }
}

/// Records how long a step took to apply.
pub(crate) fn observe_step(action: ActionKind, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let mut steps = STEPS.lock().expect("metrics lock");
    let entry = steps.entry(action.as_str().to_string()).or_insert_with(|| StepDurations {
        action: action.as_str().to_string(),
        buckets: vec![0; STEP_BUCKETS.len()],
        ..StepDurations::default()
    });
    for (bound, count) in STEP_BUCKETS.iter().zip(entry.buckets.iter_mut()) {
        if seconds <= *bound {
            *count += 1;
        }
    }
    entry.sum_seconds += seconds;
    entry.count += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_histogram_is_cumulative() {
        observe_step(ActionKind::Block, Duration::from_millis(300));
        observe_step(ActionKind::Block, Duration::from_secs(7));
        let block = step_durations().into_iter().find(|s| s.action == "block").unwrap();
        assert_eq!(block.count, 2);
        assert_eq!(block.buckets[1], 0, "not within 0.25 s");
        assert_eq!(block.buckets[2], 1, "one within 0.5 s");
        assert_eq!(block.buckets[6], 2, "both within 10 s");
        assert!((block.sum_seconds - 7.3).abs() < 1e-9);
    }

    #[test]
    fn calls_by_operation() {
        count_call("change", "test.calls_by_operation", None);
        count_call("change", "test.calls_by_operation", Some(ErrorKind::Throttled));
        let calls = cloud_calls().into_iter().find(|c| c.operation == "test.calls_by_operation").unwrap();
        assert_eq!((calls.attempts, calls.throttled, calls.transient), (2, 1, 0));
    }
}
