//! Journal I/O from async code: every write and fsync runs on tokio's blocking threads, so that
//! targets waiting for their records to reach the disk do not hold the async worker threads.

use std::sync::Arc;

use contain_core::{PendingLog, Target};
use contain_journal::{Event, JournalError, JournalWriter};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::EngineError;

/// The journal of a run, shared by its concurrent targets. Their appends share fsyncs (group
/// commit), and each returns once its own record is on disk.
pub(crate) type SharedJournal = Arc<JournalWriter>;

/// Appends a record and returns once it is on disk.
pub(crate) async fn append(journal: &SharedJournal, event: Event) -> Result<(), EngineError> {
    let journal = journal.clone();
    blocking(move || journal.append(event)).await?;
    Ok(())
}

/// Runs journal file work (open, read, append) on a blocking thread.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, JournalError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, JournalError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => panic!("the async runtime shut down while a journal write was pending"),
        },
    }
}

/// Logs how many fsyncs the run's records took, to show what group commit saved.
pub(crate) fn log_stats(run_id: &str, journal: &JournalWriter) {
    let stats = journal.stats();
    tracing::debug!(run_id, records = stats.records, fsyncs = stats.syncs, "journal records written and fsyncs made");
}

/// Journals what an action reports in the middle of one operation, synced before the action
/// goes on waiting.
pub(crate) struct JournalPending {
    pub(crate) journal: SharedJournal,
    pub(crate) step: String,
    pub(crate) target: Target,
    pub(crate) operation_id: String,
}

impl PendingLog for JournalPending {
    fn record(&self, detail: &str) {
        let event = Event::OperationPending { step: self.step.clone(), target: self.target.clone(), operation_id: self.operation_id.clone(), detail: detail.to_string() };
        // `record` is synchronous, so the wait for the fsync cannot be awaited. On a multi-thread
        // runtime the worker hands its other tasks over while it waits.
        // NOTE: on a current-thread runtime the wait blocks the runtime for one fsync.
        let result = match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| self.journal.append(event)),
            _ => self.journal.append(event),
        };
        if let Err(error) = result {
            tracing::error!(step = %self.step, target = %self.target, operation = %self.operation_id, "cannot journal `{detail}`: {error}");
        }
    }
}
