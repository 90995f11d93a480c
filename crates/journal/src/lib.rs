//! The write-ahead journal of containment runs.
//!
//! Every run has one append-only file, `<state dir>/runs/<run id>.jsonl`, in JSON Lines: one
//! record a line, each line a JSON object ending in `\n`. A record is written and synced to disk
//! (`fsync`) before the cloud call it describes, so after a crash the journal names every change
//! that may have been made. Concurrent appenders share fsyncs (group commit, see
//! [`JournalWriter`]), but none returns before its own record is on disk.
//!
//! # Record format
//!
//! Every record has these fields, then the fields of its kind:
//!
//! | field    | meaning |
//! |----------|---------|
//! | `seq`    | sequence number, 1 for the first record, one more for each next record |
//! | `time`   | UTC time of writing, RFC 3339 with microseconds |
//! | `prev`   | SHA-256, in hex, of the previous record's line without its `\n`; 64 zeros for the first |
//! | `run_id` | the run the record belongs to |
//! | `kind`   | one of the kinds below |
//!
//! Kinds ([`Event`]):
//!
//! - `run_started`: playbook name, path and digest, plan digest, inputs, operator (local user
//!   and cloud identities), and the plan itself, from which `contain resume` works;
//! - `step_intent`: step, target, and the operation with its prior value and planned change;
//! - `operation_pending`: what an action learned while its change was under way, such as the
//!   URL of the long-running operation it waits for, written before it waits;
//! - `step_applied`: the value the change left;
//! - `step_failed`: the cloud error, whether anything was left changed, and the compensation
//!   when the action undid its own partial change;
//! - `step_skipped`: a target left unchanged, with the reason (drift);
//! - `reconciled`: the decision about an intent that a crash left without an outcome (applied,
//!   not_applied, partly_applied or unknown), with the value read as evidence;
//! - `run_resumed`: who resumed an interrupted run;
//! - `rollback_started`, `revert_intent`, `reverted`, `revert_failed`, `rollback_finished`;
//! - `run_finished`: the status.
//!
//! Because each record carries the hash of the one before, editing, removing or reordering a
//! record breaks the chain, which [`read_journal`] reports. A last line without its `\n` is a
//! write torn by a crash: it is reported and ignored.
//!
//! No secret (access key secret, session token, bearer token) may enter a record: records hold
//! resource ids, states and error messages only.
//!
//! This crate depends on `contain-core` for the record payload types and on nothing else of
//! contain.

mod commit;
mod event;
mod plan_json;
mod reader;
mod writer;
#[cfg(test)]
mod tests;

pub use event::{Event, Operator, PlaybookInfo, Record};
pub use plan_json::PlanJson;
pub use reader::{JournalFile, JournalProblem, read_journal};
pub use writer::{JournalError, JournalStats, JournalWriter, is_locked};

use std::path::{Path, PathBuf};

/// The hash in `prev` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// True when `run_id` is a valid run id: letters, digits, `-`, `_` and `.`, not starting with a
/// dot, so that it names a file in the runs directory and nothing else.
pub fn is_valid_run_id(run_id: &str) -> bool {
    !run_id.is_empty()
        && run_id.len() <= 128
        && !run_id.starts_with('.')
        && run_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Returns the path of a run's journal in a state directory.
pub fn journal_path(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir.join("runs").join(format!("{run_id}.jsonl"))
}

/// Lists the ids of every run with a journal in the state directory, in no particular order.
pub fn list_run_ids(state_dir: &Path) -> std::io::Result<Vec<String>> {
    let dir = state_dir.join("runs");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".jsonl")) {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}
