//! Group commit: concurrent appenders share fsyncs.
//!
//! Records are numbered by their sequence number. The state below tracks the last record written
//! to the file and the last one known durable. An appender whose record is not yet durable waits
//! for the fsync in progress to end. When none is in progress, it starts one itself: it notes the
//! last record written, syncs without holding the lock, and then marks every record up to that one
//! durable. Records written while an fsync runs wait for the next one, because that fsync may have
//! started before their bytes reached the file.
//!
//! A failed fsync poisons the writer for good. Linux clears the error state of the pages whose
//! writeback failed, so they are not written again, and a later fsync succeeds without them on
//! disk (<https://knowledge.enterprisedb.com/hc/en-us/articles/13522554539164>). PostgreSQL has
//! stopped with a panic on a failed fsync since 11.2 and 10.7 for this reason. Every appender the
//! failed fsync covered fails, and so does every later one.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::JournalError;

/// The call that makes the written records durable: `File::sync_data`, or a test's stand-in.
pub(crate) type SyncData = Box<dyn Fn(&File) -> io::Result<()> + Send + Sync>;

/// The counts of one writer, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records written by this writer (records already in an opened journal are not counted).
    pub records: u64,
    /// fsyncs started to make those records durable, failed ones included.
    pub syncs: u64,
}

/// The reason an appender's record is not durable.
pub(crate) enum Failure {
    /// This appender's own fsync or write failed.
    Io(io::Error),
    /// An earlier write or fsync failed, in this appender or another.
    Poisoned(String),
}

impl Failure {
    pub(crate) fn into_error(self, path: &Path) -> JournalError {
        match self {
            Failure::Io(source) => JournalError::Io { path: path.to_path_buf(), source },
            Failure::Poisoned(reason) => JournalError::Poisoned { path: path.to_path_buf(), reason },
        }
    }
}

pub(crate) struct GroupCommit {
    state: Mutex<SyncState>,
    /// Notified when an fsync ends, successful or not.
    sync_ended: Condvar,
    sync_data: SyncData,
}

struct SyncState {
    /// Sequence number of the last record written to the file.
    written: u64,
    /// Sequence number of the last record known to be on disk.
    durable: u64,
    /// True while an appender runs an fsync.
    syncing: bool,
    /// The first failed write or fsync, after which nothing counts as durable.
    failure: Option<String>,
    stats: JournalStats,
}

impl GroupCommit {
    /// Starts with every record up to `last_seq` (those already in the file) counted durable.
    pub(crate) fn new(last_seq: u64, sync_data: SyncData) -> GroupCommit {
        let state = SyncState { written: last_seq, durable: last_seq, syncing: false, failure: None, stats: JournalStats::default() };
        GroupCommit { state: Mutex::new(state), sync_ended: Condvar::new(), sync_data }
    }

    #[cfg(test)]
    pub(crate) fn set_sync_data(&mut self, sync_data: SyncData) {
        self.sync_data = sync_data;
    }

    pub(crate) fn stats(&self) -> JournalStats {
        self.lock().stats
    }

    /// Fails when an earlier write or fsync failed.
    pub(crate) fn check_writable(&self) -> Result<(), Failure> {
        match &self.lock().failure {
            Some(reason) => Err(Failure::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    /// Notes that the record `seq` and all before it are in the file. Callers write records in
    /// sequence order.
    pub(crate) fn written(&self, seq: u64) {
        let mut state = self.lock();
        state.written = seq;
        state.stats.records += 1;
    }

    /// Stops the writer after a failed write.
    pub(crate) fn poison(&self, error: &io::Error) {
        let mut state = self.lock();
        state.failure.get_or_insert_with(|| format!("write failed: {error}"));
        self.sync_ended.notify_all();
    }

    /// Returns once the record `seq` is on disk, running an fsync when none is in progress.
    pub(crate) fn wait_durable(&self, seq: u64, file: &File) -> Result<(), Failure> {
        let mut state = self.lock();
        loop {
            if state.durable >= seq {
                return Ok(());
            }
            if let Some(reason) = &state.failure {
                return Err(Failure::Poisoned(reason.clone()));
            }
            if state.syncing {
                state = self.sync_ended.wait(state).expect("journal sync lock");
                continue;
            }

            // Lead an fsync for every record written so far, this one included.
            state.syncing = true;
            let covered = state.written;
            drop(state);
            let result = (self.sync_data)(file);

            state = self.lock();
            state.syncing = false;
            state.stats.syncs += 1;
            self.sync_ended.notify_all();
            match result {
                Ok(()) => state.durable = covered,
                Err(error) => {
                    state.failure.get_or_insert_with(|| format!("fsync failed: {error}"));
                    return Err(Failure::Io(error));
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().expect("journal sync lock")
    }
}
