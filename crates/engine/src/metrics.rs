//! Counters of cloud work, shared by all runs in the process, for the server's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

static READS: AtomicU64 = AtomicU64::new(0);
static CHANGES: AtomicU64 = AtomicU64::new(0);
static REVERTS: AtomicU64 = AtomicU64::new(0);
static THROTTLED: AtomicU64 = AtomicU64::new(0);
static TRANSIENT: AtomicU64 = AtomicU64::new(0);

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloudCounters {
    /// Reads of an operation's subject (drift checks, reconciliation, retries).
    pub reads: u64,
    /// Attempts to apply an operation.
    pub changes: u64,
    /// Attempts to revert an operation.
    pub reverts: u64,
    /// Failures where the cloud asked to slow down (throttling).
    pub throttled: u64,
    /// Other passing failures: 5xx, resets, time-outs.
    pub transient: u64,
}

pub fn cloud_counters() -> CloudCounters {
    CloudCounters {
        reads: READS.load(Ordering::Relaxed),
        changes: CHANGES.load(Ordering::Relaxed),
        reverts: REVERTS.load(Ordering::Relaxed),
        throttled: THROTTLED.load(Ordering::Relaxed),
        transient: TRANSIENT.load(Ordering::Relaxed),
    }
}

pub(crate) fn count_read() {
    READS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn count_change() {
    CHANGES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn count_revert() {
    REVERTS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn count_failure(kind: contain_core::ErrorKind) {
    match kind {
        contain_core::ErrorKind::Throttled => THROTTLED.fetch_add(1, Ordering::Relaxed),
        contain_core::ErrorKind::Transient => TRANSIENT.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
}
