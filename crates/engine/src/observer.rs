//! A way for the caller to follow a run as it goes, target by target: the command line's
//! progress bar. The journal remains the record; an observer only displays.

use contain_core::Target;

use crate::report::TargetOutcome;

/// Receives the outcome of each target as soon as its step has finished with it.
pub trait RunObserver: Send + Sync {
    /// Called once per target of each applied step, from the task that applied it.
    fn target_done(&self, step: &str, target: &Target, outcome: TargetOutcome);
}
