//! Summaries of the runs in a state directory, read from their journals.

use std::path::Path;

use chrono::{DateTime, Utc};
use contain_journal::{Event, Record, is_locked, journal_path, read_journal};
use serde::Serialize;

use crate::report::RunStatus;

/// One run, as `contain runs list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub status: RunStatus,
    pub playbook: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub local_user: Option<String>,
    /// Problems found in the journal; empty when its hash chain holds.
    pub journal_problems: Vec<String>,
}

/// The status the journal's last finishing record gives, if any.
pub(crate) fn status_of(records: &[Record]) -> Option<RunStatus> {
    records.iter().rev().find_map(|r| match &r.event {
        Event::RunFinished { status } | Event::RollbackFinished { status } => RunStatus::parse(status),
        _ => None,
    })
}

/// Summarizes one run from its journal. A run with no finishing record is `running` while a
/// process holds its journal, else `interrupted`.
pub fn run_summary(state_dir: &Path, run_id: &str) -> std::io::Result<RunSummary> {
    let journal = read_journal(&journal_path(state_dir, run_id))?;
    let records = &journal.records;
    let (playbook, local_user) = records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { playbook, operator, .. } => Some((playbook.name.clone(), Some(operator.local_user.clone()))),
            _ => None,
        })
        .unwrap_or_default();

    let finished = records.iter().rev().find(|r| matches!(r.event, Event::RunFinished { .. } | Event::RollbackFinished { .. }));
    let rollback_open = records.iter().rposition(|r| matches!(r.event, Event::RollbackStarted { .. }))
        > records.iter().rposition(|r| matches!(r.event, Event::RollbackFinished { .. } | Event::RunFinished { .. }));
    let status = match (status_of(records), rollback_open) {
        (Some(status), false) => status,
        _ if is_locked(state_dir, run_id) => RunStatus::Running,
        _ => RunStatus::Interrupted,
    };

    Ok(RunSummary {
        run_id: run_id.to_string(),
        status,
        playbook,
        started_at: records.first().map(|r| r.time),
        finished_at: finished.map(|r| r.time),
        local_user,
        journal_problems: journal.problems.iter().map(|p| format!("line {}: {}", p.line, p.message)).collect(),
    })
}
