use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{GENESIS_HASH, Record};

/// A problem found while reading a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalProblem {
    /// The line number, from 1.
    pub line: usize,
    pub message: String,
}

/// The records of one journal, with what verification found.
#[derive(Debug, Clone)]
pub struct JournalFile {
    /// Records up to the first line that could not be read or broke the chain.
    pub records: Vec<Record>,
    /// Problems, in line order. Empty for an intact journal.
    pub problems: Vec<JournalProblem>,
    /// True when the last line was torn (written partly at a crash) and was ignored.
    pub torn_tail: bool,
    /// SHA-256 of the last good record's line.
    pub last_hash: String,
    /// Length of the file up to the end of the last good line.
    pub valid_len: u64,
    pub file_len: u64,
}

impl JournalFile {
    /// True when the hash chain holds and no line is damaged. A torn tail does not count: it is
    /// the expected trace of a crash during a write.
    pub fn chain_intact(&self) -> bool {
        self.problems.iter().all(|p| !p.message.starts_with("chain"))
            && self.problems.len() == usize::from(self.torn_tail)
    }
}

/// Reads and verifies a journal.
pub fn read_journal(path: &Path) -> std::io::Result<JournalFile> {
    let bytes = std::fs::read(path)?;
    let mut journal = JournalFile {
        records: Vec::new(),
        problems: Vec::new(),
        torn_tail: false,
        last_hash: GENESIS_HASH.to_string(),
        valid_len: 0,
        file_len: bytes.len() as u64,
    };

    let mut offset = 0usize;
    let mut line_number = 0usize;
    let mut broken = false;
    while offset < bytes.len() {
        line_number += 1;
        let rest = &bytes[offset..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            journal.torn_tail = true;
            journal.problems.push(JournalProblem {
                line: line_number,
                message: format!("torn last line ({} bytes without a newline), ignored: a crash interrupted its write", rest.len()),
            });
            break;
        };
        let line = &rest[..end];
        offset += end + 1;
        if broken {
            continue;
        }

        let record: Record = match serde_json::from_slice(line) {
            Ok(record) => record,
            Err(e) => {
                journal.problems.push(JournalProblem { line: line_number, message: format!("chain broken: unreadable record: {e}") });
                broken = true;
                continue;
            }
        };

        let expected_seq = journal.records.last().map(|r| r.seq + 1).unwrap_or(1);
        if record.seq != expected_seq {
            journal.problems.push(JournalProblem {
                line: line_number,
                message: format!("chain broken: record has seq {}, expected {expected_seq}: a record was removed or reordered", record.seq),
            });
            broken = true;
            continue;
        }
        if record.prev != journal.last_hash {
            journal.problems.push(JournalProblem {
                line: line_number,
                message: format!(
                    "chain broken: record {} does not carry the hash of record {}: that record was edited, or one was removed",
                    record.seq,
                    record.seq.saturating_sub(1)
                ),
            });
            broken = true;
            continue;
        }

        journal.last_hash = hex::encode(Sha256::digest(line));
        journal.valid_len = offset as u64;
        journal.records.push(record);
    }

    Ok(journal)
}
