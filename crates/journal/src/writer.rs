use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::commit::GroupCommit;
use crate::reader::{JournalFile, read_journal};
use crate::{Event, GENESIS_HASH, Record, journal_path};

pub use crate::commit::JournalStats;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("run {run_id} is in use by another contain process (its journal {path} is locked): wait for it to finish")]
    Locked { run_id: String, path: PathBuf },
    #[error("run {run_id} has no journal at {path}: check the run id with `contain runs list`")]
    NotFound { run_id: String, path: PathBuf },
    #[error("run {run_id} already has a journal at {path}")]
    Exists { run_id: String, path: PathBuf },
    /// An earlier write or fsync failed, so the writer accepts no more records: after a failed
    /// fsync the kernel may have dropped the unsynced pages, and a later fsync that succeeds
    /// would not bring them back.
    #[error(
        "journal {path} is not writable any more: an earlier write or fsync failed ({reason}), so records after it may not be on disk; check the disk, then `contain journal verify` and `contain resume` the run"
    )]
    Poisoned { path: PathBuf, reason: String },
}

/// Appends records to one run's journal. `append` returns only once its record is synced to disk.
///
/// Many threads may append at once (group commit). Each writes its record under a lock, in
/// sequence order and hash-chained, then waits until an fsync that started after the write has
/// completed. One fsync serves every record written before it started, so concurrent appenders
/// share it instead of queueing for one each. A failed write or fsync fails every appender whose
/// record it covered, and every later append.
///
/// `append` blocks its thread for the fsync: async callers run it on a blocking thread.
///
/// The writer holds an exclusive operating-system lock on the file for its lifetime, so a second
/// process cannot write the same run's journal; the lock goes away with the process that held it.
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    run_id: String,
    chain: Mutex<Chain>,
    commit: GroupCommit,
}

/// The position of the next record in the hash chain.
struct Chain {
    next_seq: u64,
    prev_hash: String,
}

impl JournalWriter {
    /// Creates the journal of a new run.
    pub fn create(state_dir: &Path, run_id: &str) -> Result<JournalWriter, JournalError> {
        let path = journal_path(state_dir, run_id);
        let io_error = |source| JournalError::Io { path: path.clone(), source };
        let dir = path.parent().expect("journal path has a parent");
        std::fs::create_dir_all(dir).map_err(io_error)?;

        let file = match OpenOptions::new().append(true).create_new(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(JournalError::Exists { run_id: run_id.to_string(), path });
            }
            Err(e) => return Err(io_error(e)),
        };
        lock(&file, run_id, &path)?;

        // The new directory entry must survive a crash as well as the records.
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_error)?;

        Ok(JournalWriter::new(file, path, run_id, 1, GENESIS_HASH.to_string()))
    }

    /// Opens an existing run's journal to append, for rollback or resume.
    ///
    /// Returns the records read. A torn last line is cut off before appending, and reported in
    /// the returned file's problems.
    pub fn open(state_dir: &Path, run_id: &str) -> Result<(JournalWriter, JournalFile), JournalError> {
        let path = journal_path(state_dir, run_id);
        let io_error = |source| JournalError::Io { path: path.clone(), source };

        let file = match OpenOptions::new().read(true).append(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(JournalError::NotFound { run_id: run_id.to_string(), path });
            }
            Err(e) => return Err(io_error(e)),
        };
        lock(&file, run_id, &path)?;

        let journal = read_journal(&path).map_err(io_error)?;
        if journal.valid_len < journal.file_len {
            file.set_len(journal.valid_len).map_err(io_error)?;
            file.sync_all().map_err(io_error)?;
        }

        let (next_seq, prev_hash) = match journal.records.last() {
            Some(last) => (last.seq + 1, journal.last_hash.clone()),
            None => (1, GENESIS_HASH.to_string()),
        };
        Ok((JournalWriter::new(file, path, run_id, next_seq, prev_hash), journal))
    }

    fn new(file: File, path: PathBuf, run_id: &str, next_seq: u64, prev_hash: String) -> JournalWriter {
        JournalWriter {
            file,
            path,
            run_id: run_id.to_string(),
            chain: Mutex::new(Chain { next_seq, prev_hash }),
            commit: GroupCommit::new(next_seq - 1, Box::new(|file: &File| file.sync_data())),
        }
    }

    /// Replaces the call that makes written records durable (`File::sync_data`), so that tests
    /// can slow it down or make it fail.
    #[cfg(test)]
    pub(crate) fn set_sync_data(&mut self, sync_data: crate::commit::SyncData) {
        self.commit.set_sync_data(sync_data);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Returns how many records this writer appended and how many fsyncs made them durable.
    pub fn stats(&self) -> JournalStats {
        self.commit.stats()
    }

    /// Appends one record and returns once it is synced to disk, which may be by an fsync that
    /// another appender started. Blocks the calling thread until then.
    pub fn append(&self, event: Event) -> Result<Record, JournalError> {
        let record = self.write(event)?;
        self.commit.wait_durable(record.seq, &self.file).map_err(|failure| failure.into_error(&self.path))?;
        contain_core::crash::reached(contain_core::crash::CrashPoint::JournalRecord);
        Ok(record)
    }

    /// Writes one record at the end of the chain, without syncing it.
    fn write(&self, event: Event) -> Result<Record, JournalError> {
        let mut chain = self.chain.lock().expect("journal chain lock");
        self.commit.check_writable().map_err(|failure| failure.into_error(&self.path))?;

        let record = Record { seq: chain.next_seq, time: Utc::now(), prev: chain.prev_hash.clone(), run_id: self.run_id.clone(), event };
        // One buffer for the line, because the first record contains the whole plan: tens of
        // megabytes for many thousands of targets.
        let mut bytes = serde_json::to_vec(&record).expect("journal records serialize to JSON");
        let hash = Sha256::digest(&bytes);
        bytes.push(b'\n');

        // A failed write may leave part of the line in the file, after which no record would
        // chain: the writer stops accepting records.
        if let Err(source) = (&self.file).write_all(&bytes) {
            self.commit.poison(&source);
            return Err(JournalError::Io { path: self.path.clone(), source });
        }
        self.commit.written(record.seq);

        chain.prev_hash = hex::encode(hash);
        chain.next_seq += 1;
        Ok(record)
    }
}

fn lock(file: &File, run_id: &str, path: &Path) -> Result<(), JournalError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(JournalError::Locked { run_id: run_id.to_string(), path: path.to_path_buf() })
        }
        Err(std::fs::TryLockError::Error(source)) => Err(JournalError::Io { path: path.to_path_buf(), source }),
    }
}

/// True when a process holds the run's journal open for writing.
pub fn is_locked(state_dir: &Path, run_id: &str) -> bool {
    let path = journal_path(state_dir, run_id);
    match File::open(&path) {
        Ok(file) => matches!(file.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}
