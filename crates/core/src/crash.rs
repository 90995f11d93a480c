//! Crash points for the crash tests: stop the process abruptly, as `kill -9` would, right after
//! the k-th journal record or the k-th changing cloud call.
//!
//! They exist only in builds with the `crash-points` feature, which the test script turns on;
//! in every other build [`reached`] does nothing. In a build with the feature, the environment
//! variables `CONTAIN_CRASH_AFTER_RECORD` and `CONTAIN_CRASH_AFTER_CALL` hold k. The process is
//! killed with SIGKILL, so no destructor runs and nothing buffered is written: what survives is
//! what was already on disk or in the cloud.

/// The points at which a test may ask for a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// A journal record was written and synced.
    JournalRecord,
    /// A cloud call that changes something got its response, before its caller saw it.
    CloudCall,
}

/// Counts one passage through `point`, and kills the process when the count reaches the k set
/// for it.
#[cfg(feature = "crash-points")]
pub fn reached(point: CrashPoint) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static RECORDS: AtomicU64 = AtomicU64::new(0);
    static CALLS: AtomicU64 = AtomicU64::new(0);
    static LIMITS: OnceLock<(Option<u64>, Option<u64>)> = OnceLock::new();

    let limit = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let (records, calls) = *LIMITS.get_or_init(|| (limit("CONTAIN_CRASH_AFTER_RECORD"), limit("CONTAIN_CRASH_AFTER_CALL")));
    let (counter, limit) = match point {
        CrashPoint::JournalRecord => (&RECORDS, records),
        CrashPoint::CloudCall => (&CALLS, calls),
    };
    let Some(limit) = limit else {
        return;
    };
    if counter.fetch_add(1, Ordering::SeqCst) + 1 == limit {
        eprintln!("contain: crash point: killing the process after {point:?} {limit}");
        // SAFETY: kill(2) with this process's own id has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Does nothing: this build has no crash points.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn reached(_point: CrashPoint) {}
