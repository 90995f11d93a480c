use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::reader::{JournalFile, read_journal};
use crate::{Event, GENESIS_HASH, Record, journal_path};

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
}

/// Appends records to one run's journal, each synced to disk before `append` returns.
///
/// The writer holds an exclusive operating-system lock on the file for its lifetime, so a second
/// process cannot write the same run's journal; the lock goes away with the process that held it.
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    run_id: String,
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

        Ok(JournalWriter { file, path, run_id: run_id.to_string(), next_seq: 1, prev_hash: GENESIS_HASH.to_string() })
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
        let writer = JournalWriter { file, path, run_id: run_id.to_string(), next_seq, prev_hash };
        Ok((writer, journal))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Appends one record and syncs it to disk before returning.
    pub fn append(&mut self, event: Event) -> Result<Record, JournalError> {
        let record = Record {
            seq: self.next_seq,
            time: Utc::now(),
            prev: self.prev_hash.clone(),
            run_id: self.run_id.clone(),
            event,
        };
        let line = serde_json::to_string(&record).expect("journal records serialize to JSON");

        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let io_error = |source| JournalError::Io { path: self.path.clone(), source };
        self.file.write_all(&bytes).map_err(io_error)?;
        self.file.sync_data().map_err(io_error)?;

        self.prev_hash = hex::encode(Sha256::digest(line.as_bytes()));
        self.next_seq += 1;
        contain_core::crash::reached(contain_core::crash::CrashPoint::JournalRecord);
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
