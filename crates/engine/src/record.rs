//! The incident record of a run (`contain report`): what its journal says, arranged so that
//! someone who was not involved can follow what was changed, by whom, when, and what was undone.
//!
//! The record is built from the journal alone. Only records that the hash chain verifies feed
//! the header and the per-step sections. When the chain is broken, the records from the break
//! on appear in the timeline marked as unverified, and nowhere else.

use std::path::Path;

use chrono::{DateTime, Utc};
use contain_core::{ActionKind, CallerIdentity, Operation, Target};
use contain_journal::{Event, JournalError, JournalFile, Operator, PlaybookInfo, Record, is_locked, journal_path, read_journal};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::plan::Plan;
use crate::report::RunStatus;
use crate::runs::status_of;

mod timeline;

pub use timeline::decision_text;
use timeline::build_timeline;

/// Everything a run's journal records, as `contain report` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRecord {
    pub run_id: String,
    /// The journal file the record was built from.
    pub journal: String,
    pub verification: Verification,
    /// The playbook, from the `run_started` record. `None` when no verified record names it.
    pub playbook: Option<PlaybookInfo>,
    /// SHA-256 of the plan the run executed.
    pub plan_digest: Option<String>,
    pub inputs: Map<String, Value>,
    /// The playbook's failure policy: `halt` or `rollback`.
    pub on_failure: Option<String>,
    pub contain_version: Option<String>,
    /// The status the verified records give. A run without a finishing record is `running`
    /// while a process has its journal locked, else `interrupted`.
    pub status: RunStatus,
    pub started_at: Option<DateTime<Utc>>,
    /// The time of the last `run_finished` or `rollback_finished` record.
    pub finished_at: Option<DateTime<Utc>>,
    /// Milliseconds from the first record to the last `run_finished`: how long the containment
    /// took, without the rollbacks, which have times of their own.
    pub duration_ms: Option<i64>,
    /// Everyone who started, resumed or rolled back the run, in journal order.
    pub operators: Vec<OperatorEntry>,
    /// The principal that started the run through the HTTP API, if it came that way.
    pub api_principal: Option<String>,
    /// The API principal who approved the run, when its playbook requires approval.
    pub approver: Option<String>,
    pub rollbacks: Vec<RollbackEntry>,
    /// Every record, one sentence each, in journal order.
    pub timeline: Vec<TimelineEntry>,
    /// Steps in plan order, each with its targets and their operations.
    pub steps: Vec<StepRecord>,
    /// Evidence the run kept, such as snapshot ids, in journal order.
    pub evidence: Vec<EvidenceItem>,
    /// Operations that rollback cannot undo, whether or not they were applied.
    pub irreversible: Vec<IrreversibleChange>,
}

/// The result of checking the journal's hash chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// True when every record carries the hash of the one before it. A torn last line does not
    /// count against it.
    pub intact: bool,
    /// Records that the chain verifies, which every section but the timeline is built from.
    pub verified_records: usize,
    /// True when the last line was written only partly, at a crash, and was ignored.
    pub torn_tail: bool,
    /// The first break in the chain, if any.
    pub broken: Option<ChainBreak>,
    /// Every problem found, as `line N: message`.
    pub problems: Vec<String>,
}

/// The first line at which the hash chain fails.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainBreak {
    /// The line number, from 1, at which reading stopped.
    pub line: usize,
    pub message: String,
    /// The first line whose content the chain does not vouch for. When a record does not carry
    /// the hash of the record before it, either of the two may have been edited, so this is the
    /// line before `line`.
    pub first_unverified_line: usize,
}

/// A record's time and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stamp {
    pub seq: u64,
    pub time: DateTime<Utc>,
}

/// The part an operator took in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    StartedRun,
    ResumedRun,
    StartedRollback,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorEntry {
    pub role: OperatorRole,
    #[serde(flatten)]
    pub at: Stamp,
    pub local_user: String,
    /// The cloud identities the credentials resolved to. `contain rollback` does not read them,
    /// so they are empty for a rollback it started. A rollback started by the failure policy
    /// carries the run's.
    pub cloud_identities: Vec<CallerIdentity>,
}

/// One rollback of the run, started by the operator or by the failure policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackEntry {
    pub started: Stamp,
    pub reason: String,
    /// True for `contain rollback --force`, which reverts targets that changed since the run.
    pub forced: bool,
    pub local_user: String,
    /// The `rollback_finished` record, or `None` when the rollback did not finish.
    pub finished: Option<Stamp>,
    pub status: Option<String>,
}

/// One journal line as a sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// The line number in the journal, from 1.
    pub line: usize,
    /// `None` for a line that is not a readable record.
    pub seq: Option<u64>,
    pub time: Option<DateTime<Utc>>,
    /// The record kind, such as `step_applied`.
    pub kind: Option<String>,
    pub text: String,
    /// False for a line at or after a break in the hash chain: its content is not verified.
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub id: String,
    /// `None` only for a step that the journal names in `step_skipped` records alone.
    pub action: Option<ActionKind>,
    pub targets: Vec<TargetRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetRecord {
    pub target: Target,
    /// The plan's notes for the reviewer, such as "already isolated: nothing to do".
    pub notes: Vec<String>,
    /// The reason the action cannot contain the target, when the plan found one.
    pub uncontainable: Option<String>,
    /// `step_skipped` records: the target was left unchanged, with the reason.
    pub skipped: Vec<Skip>,
    pub operations: Vec<OperationRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skip {
    #[serde(flatten)]
    pub at: Stamp,
    pub reason: String,
}

/// One change to one resource, with everything the journal records about it.
///
/// An operation with no `intended_at` and no outcomes was planned but never started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationRecord {
    pub id: String,
    pub kind: String,
    /// The resource the operation changes, which may differ from the target.
    pub subject: String,
    pub description: String,
    /// The subject's value before the change, journaled before the cloud call.
    pub prior: Value,
    /// The value the change sets.
    pub desired: Value,
    pub reversible: bool,
    /// The latest `step_intent` record of the operation.
    pub intended_at: Option<Stamp>,
    /// Outcomes of the change, oldest first, so the last entry is the current state.
    pub outcomes: Vec<ChangeOutcome>,
    /// Revert outcomes of the change, oldest first. Empty when no rollback touched it.
    pub rollback: Vec<RevertOutcome>,
}

/// The outcome of applying an operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChangeOutcome {
    /// The intent was journaled and no outcome follows it: the process stopped during the
    /// cloud call, or is still in it.
    NoOutcome {
        #[serde(flatten)]
        at: Stamp,
    },
    Applied {
        #[serde(flatten)]
        at: Stamp,
        /// The value the change left.
        value: Value,
    },
    /// The subject already had the desired value, so nothing was written.
    AlreadyInPlace {
        #[serde(flatten)]
        at: Stamp,
        value: Value,
    },
    Failed {
        #[serde(flatten)]
        at: Stamp,
        error: String,
        error_code: Option<String>,
        /// True when the failed call left a change that rollback must revert.
        left_change: bool,
        /// The part of its own change that the action undid before it returned the error.
        compensation: Option<String>,
    },
    /// The decision about an intent that a crash left without an outcome, made by reading the
    /// subject again.
    Reconciled {
        #[serde(flatten)]
        at: Stamp,
        /// `applied`, `not_applied`, `partly_applied` or `unknown`.
        decision: String,
        detail: Option<String>,
        /// The subject's value that the decision rests on.
        observed: Value,
    },
}

/// The outcome of reverting an operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RevertOutcome {
    /// A revert was journaled and no outcome follows it: the process stopped during it.
    NoOutcome {
        #[serde(flatten)]
        at: Stamp,
    },
    Reverted {
        #[serde(flatten)]
        at: Stamp,
    },
    /// The subject already had its prior value, so nothing was written.
    AlreadyReverted {
        #[serde(flatten)]
        at: Stamp,
    },
    /// The revert call failed.
    Failed {
        #[serde(flatten)]
        at: Stamp,
        error: String,
    },
    /// Rollback left the change in place without a call, because the target changed since the
    /// run or another operation of the target could not be reverted.
    Refused {
        #[serde(flatten)]
        at: Stamp,
        reason: String,
    },
}

/// One evidence id, such as a snapshot id, and the operation that kept it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceItem {
    pub id: String,
    pub step: String,
    pub target: Target,
    pub operation_id: String,
    /// The `step_applied` record that lists it.
    #[serde(flatten)]
    pub at: Stamp,
}

/// An operation that rollback cannot undo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IrreversibleChange {
    pub step: String,
    pub target: Target,
    pub operation_id: String,
    pub description: String,
    /// The operation's current outcome, or `None` when it was never started.
    pub outcome: Option<ChangeOutcome>,
}

impl ChangeOutcome {
    pub fn at(&self) -> Stamp {
        match self {
            ChangeOutcome::NoOutcome { at }
            | ChangeOutcome::Applied { at, .. }
            | ChangeOutcome::AlreadyInPlace { at, .. }
            | ChangeOutcome::Failed { at, .. }
            | ChangeOutcome::Reconciled { at, .. } => *at,
        }
    }
}

impl RevertOutcome {
    pub fn at(&self) -> Stamp {
        match self {
            RevertOutcome::NoOutcome { at }
            | RevertOutcome::Reverted { at }
            | RevertOutcome::AlreadyReverted { at }
            | RevertOutcome::Failed { at, .. }
            | RevertOutcome::Refused { at, .. } => *at,
        }
    }
}

impl OperationRecord {
    /// Lists the evidence ids that the operation's `step_applied` records name, or that
    /// reconciliation found after a crash.
    pub fn evidence(&self) -> Vec<String> {
        self.outcomes.iter().filter_map(kept_evidence).flat_map(|(value, _)| evidence_ids(value)).collect()
    }
}

/// Builds the incident record of a run from its journal.
///
/// Returns [`JournalError::NotFound`] when the run has no journal and [`JournalError::Io`] when
/// the journal cannot be read. A journal with a broken hash chain still gives a record.
pub fn incident_record(state_dir: &Path, run_id: &str) -> Result<IncidentRecord, JournalError> {
    let path = journal_path(state_dir, run_id);
    let io_error = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => JournalError::NotFound { run_id: run_id.to_string(), path: path.clone() },
        _ => JournalError::Io { path: path.clone(), source },
    };
    let journal = read_journal(&path).map_err(io_error)?;

    let broken = chain_break(&journal, &path).map_err(io_error)?;
    let verified_count = broken.as_ref().map_or(journal.records.len(), |b| b.first_unverified_line.saturating_sub(1).min(journal.records.len()));
    let verified = &journal.records[..verified_count];
    let unverified = match &broken {
        Some(b) => unverified_lines(&path, b.first_unverified_line).map_err(io_error)?,
        None => Vec::new(),
    };

    let verification = Verification {
        intact: journal.chain_intact(),
        verified_records: verified.len(),
        torn_tail: journal.torn_tail,
        broken,
        problems: journal.problems.iter().map(|p| format!("line {}: {}", p.line, p.message)).collect(),
    };

    let mut record = IncidentRecord {
        run_id: run_id.to_string(),
        journal: path.display().to_string(),
        verification,
        playbook: None,
        plan_digest: None,
        inputs: Map::new(),
        on_failure: None,
        contain_version: None,
        status: run_status(state_dir, run_id, verified),
        started_at: verified.first().map(|r| r.time),
        finished_at: None,
        duration_ms: None,
        operators: Vec::new(),
        api_principal: None,
        approver: None,
        rollbacks: Vec::new(),
        timeline: Vec::new(),
        steps: Vec::new(),
        evidence: Vec::new(),
        irreversible: Vec::new(),
    };
    fill_header(&mut record, verified);
    record.steps = build_steps(verified);
    record.evidence = collect_evidence(&record.steps);
    record.irreversible = collect_irreversible(&record.steps);
    record.timeline = build_timeline(verified, &unverified);
    Ok(record)
}

/// Finds where the hash chain stops vouching for the records, if it does.
fn chain_break(journal: &JournalFile, path: &Path) -> std::io::Result<Option<ChainBreak>> {
    let torn_line = journal.torn_tail.then(|| journal.problems.last().map(|p| p.line)).flatten();
    let Some(problem) = journal.problems.iter().find(|p| Some(p.line) != torn_line) else {
        return Ok(None);
    };

    // The reader stops at a line that is unreadable, out of sequence, or does not carry the
    // previous record's hash. Only the last case puts the record before it in doubt too.
    let expected_seq = journal.records.last().map_or(1, |r| r.seq + 1);
    let hash_mismatch = match read_line(path, problem.line)? {
        Some(line) => serde_json::from_slice::<Record>(&line).is_ok_and(|r| r.seq == expected_seq),
        None => false,
    };
    let first_unverified_line = if hash_mismatch && problem.line > 1 { problem.line - 1 } else { problem.line };
    Ok(Some(ChainBreak { line: problem.line, message: problem.message.clone(), first_unverified_line }))
}

/// Reads one line (numbered from 1) of a file, without its `\n`.
fn read_line(path: &Path, number: usize) -> std::io::Result<Option<Vec<u8>>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.split(|&b| b == b'\n').nth(number - 1).map(<[u8]>::to_vec))
}

/// Reads every complete line from `first` on, as a record where it parses. A last line without
/// its `\n` is a torn write and is left out, as the reader leaves it out.
fn unverified_lines(path: &Path, first: usize) -> std::io::Result<Vec<(usize, Result<Record, String>)>> {
    let bytes = std::fs::read(path)?;
    let mut lines = Vec::new();
    let mut offset = 0;
    let mut number = 0;
    while let Some(end) = bytes[offset..].iter().position(|&b| b == b'\n') {
        number += 1;
        let line = &bytes[offset..offset + end];
        offset += end + 1;
        if number >= first {
            lines.push((number, serde_json::from_slice::<Record>(line).map_err(|e| e.to_string())));
        }
    }
    Ok(lines)
}

/// Returns the run's status from the verified records, by the rule `contain runs list` uses.
fn run_status(state_dir: &Path, run_id: &str, records: &[Record]) -> RunStatus {
    let last_rollback_start = records.iter().rposition(|r| matches!(r.event, Event::RollbackStarted { .. }));
    let last_finish = records.iter().rposition(|r| matches!(r.event, Event::RollbackFinished { .. } | Event::RunFinished { .. }));
    match (status_of(records), last_rollback_start > last_finish) {
        (Some(status), false) => status,
        _ if is_locked(state_dir, run_id) => RunStatus::Running,
        _ => RunStatus::Interrupted,
    }
}

/// Fills the playbook, inputs, operators, rollbacks and times from the verified records.
fn fill_header(record: &mut IncidentRecord, records: &[Record]) {
    let operator_entry = |role, at, operator: &Operator| OperatorEntry {
        role,
        at,
        local_user: operator.local_user.clone(),
        cloud_identities: operator.cloud_identities.clone(),
    };
    let mut run_finished = None;

    for r in records {
        let at = Stamp { seq: r.seq, time: r.time };
        match &r.event {
            Event::RunStarted { playbook, plan_digest, inputs, on_failure, operator, contain_version, .. } => {
                record.playbook = Some(playbook.clone());
                record.plan_digest = Some(plan_digest.clone());
                record.inputs = inputs.clone();
                record.on_failure = Some(on_failure.clone());
                record.contain_version = Some(contain_version.clone());
                record.api_principal = operator.api_principal.clone();
                record.approver = operator.approved_by.clone();
                record.operators.push(operator_entry(OperatorRole::StartedRun, at, operator));
            }
            Event::RunResumed { operator } => record.operators.push(operator_entry(OperatorRole::ResumedRun, at, operator)),
            Event::RollbackStarted { reason, forced, operator } => {
                record.operators.push(operator_entry(OperatorRole::StartedRollback, at, operator));
                record.rollbacks.push(RollbackEntry {
                    started: at,
                    reason: reason.clone(),
                    forced: *forced,
                    local_user: operator.local_user.clone(),
                    finished: None,
                    status: None,
                });
            }
            Event::RollbackFinished { status } => {
                if let Some(open) = record.rollbacks.iter_mut().rev().find(|rb| rb.finished.is_none()) {
                    open.finished = Some(at);
                    open.status = Some(status.clone());
                }
                record.finished_at = Some(r.time);
            }
            Event::RunFinished { .. } => {
                record.finished_at = Some(r.time);
                run_finished = Some(r.time);
            }
            _ => {}
        }
    }
    if let (Some(start), Some(end)) = (record.started_at, run_finished) {
        record.duration_ms = Some((end - start).num_milliseconds());
    }
}

/// Builds the steps, targets and operations: the plan in the `run_started` record gives their
/// order and the operations never started, and the journal gives what happened.
fn build_steps(records: &[Record]) -> Vec<StepRecord> {
    let mut steps: Vec<StepRecord> = Vec::new();
    let plan = records.iter().find_map(|r| match &r.event {
        // A journal written before plans were journaled has none, so the steps then come from
        // the other records alone.
        Event::RunStarted { plan: Some(plan), .. } => plan.parse::<Plan>().ok(),
        _ => None,
    });
    for step in plan.iter().flat_map(|p| &p.steps) {
        let targets = step
            .targets
            .iter()
            .map(|planned| TargetRecord {
                target: planned.target.clone(),
                notes: planned.plan.notes.clone(),
                uncontainable: planned.plan.uncontainable.clone(),
                skipped: Vec::new(),
                operations: planned.plan.operations.iter().map(planned_operation).collect(),
            })
            .collect();
        steps.push(StepRecord { id: step.id.clone(), action: Some(step.action), targets });
    }

    for r in records {
        let at = Stamp { seq: r.seq, time: r.time };
        match &r.event {
            Event::StepIntent { step, action, target, operation } => {
                let step_record = step_entry(&mut steps, step);
                step_record.action.get_or_insert(*action);
                let op = operation_entry(target_entry(step_record, target), operation);
                // Apply binds the planned operation to the run, so the journaled one is exact.
                *op = OperationRecord { intended_at: Some(at), outcomes: std::mem::take(&mut op.outcomes), rollback: std::mem::take(&mut op.rollback), ..planned_operation(operation) };
                op.outcomes.push(ChangeOutcome::NoOutcome { at });
            }
            Event::StepApplied { step, target, operation_id, applied, already_in_place } => {
                let value = applied.clone();
                let outcome = if *already_in_place { ChangeOutcome::AlreadyInPlace { at, value } } else { ChangeOutcome::Applied { at, value } };
                record_outcome(&mut steps, step, target, operation_id, outcome);
            }
            Event::StepFailed { step, target, operation_id, error, error_code, changed, compensation } => {
                let outcome = ChangeOutcome::Failed { at, error: error.clone(), error_code: error_code.clone(), left_change: *changed, compensation: compensation.clone() };
                record_outcome(&mut steps, step, target, operation_id, outcome);
            }
            Event::Reconciled { step, target, operation_id, decision, detail, observed } => {
                let outcome = ChangeOutcome::Reconciled { at, decision: decision.clone(), detail: detail.clone(), observed: observed.clone() };
                record_outcome(&mut steps, step, target, operation_id, outcome);
            }
            Event::StepSkipped { step, target, reason } => {
                target_entry(step_entry(&mut steps, step), target).skipped.push(Skip { at, reason: reason.clone() });
            }
            Event::RevertIntent { step, target, operation_id } => {
                record_revert(&mut steps, step, target, operation_id, RevertOutcome::NoOutcome { at });
            }
            Event::Reverted { step, target, operation_id, already_in_place } => {
                let outcome = if *already_in_place { RevertOutcome::AlreadyReverted { at } } else { RevertOutcome::Reverted { at } };
                record_revert(&mut steps, step, target, operation_id, outcome);
            }
            Event::RevertFailed { step, target, operation_id, error } => {
                // Rollback journals a target it refuses as `revert_failed` with this prefix
                // (crates/engine/src/rollback.rs), and a failed revert call without it.
                let outcome = match error.strip_prefix("refused: ") {
                    Some(reason) => RevertOutcome::Refused { at, reason: reason.to_string() },
                    None => RevertOutcome::Failed { at, error: error.clone() },
                };
                record_revert(&mut steps, step, target, operation_id, outcome);
            }
            _ => {}
        }
    }
    steps
}

fn planned_operation(operation: &Operation) -> OperationRecord {
    OperationRecord {
        id: operation.id.clone(),
        kind: operation.kind.clone(),
        subject: operation.subject.clone(),
        description: operation.description.clone(),
        prior: operation.prior.clone(),
        desired: operation.desired.clone(),
        reversible: operation.reversible,
        intended_at: None,
        outcomes: Vec::new(),
        rollback: Vec::new(),
    }
}

fn step_entry<'s>(steps: &'s mut Vec<StepRecord>, id: &str) -> &'s mut StepRecord {
    let index = match steps.iter().position(|s| s.id == id) {
        Some(index) => index,
        None => {
            steps.push(StepRecord { id: id.to_string(), action: None, targets: Vec::new() });
            steps.len() - 1
        }
    };
    &mut steps[index]
}

fn target_entry<'s>(step: &'s mut StepRecord, target: &Target) -> &'s mut TargetRecord {
    let index = match step.targets.iter().position(|t| &t.target == target) {
        Some(index) => index,
        None => {
            step.targets.push(TargetRecord { target: target.clone(), notes: Vec::new(), uncontainable: None, skipped: Vec::new(), operations: Vec::new() });
            step.targets.len() - 1
        }
    };
    &mut step.targets[index]
}

fn operation_entry<'t>(target: &'t mut TargetRecord, operation: &Operation) -> &'t mut OperationRecord {
    let index = match target.operations.iter().position(|o| o.id == operation.id) {
        Some(index) => index,
        None => {
            target.operations.push(planned_operation(operation));
            target.operations.len() - 1
        }
    };
    &mut target.operations[index]
}

fn find_operation<'s>(steps: &'s mut [StepRecord], step: &str, target: &Target, operation_id: &str) -> Option<&'s mut OperationRecord> {
    steps
        .iter_mut()
        .find(|s| s.id == step)?
        .targets
        .iter_mut()
        .find(|t| &t.target == target)?
        .operations
        .iter_mut()
        .find(|o| o.id == operation_id)
}

/// Appends an outcome, replacing the open intent that it closes.
// NOTE: an outcome whose intent the journal lacks (a hand-made or damaged journal) is dropped
// from the steps; the timeline still shows it.
fn record_outcome(steps: &mut [StepRecord], step: &str, target: &Target, operation_id: &str, outcome: ChangeOutcome) {
    let Some(op) = find_operation(steps, step, target, operation_id) else {
        return;
    };
    if matches!(op.outcomes.last(), Some(ChangeOutcome::NoOutcome { .. })) {
        op.outcomes.pop();
    }
    op.outcomes.push(outcome);
}

/// Appends a revert outcome, replacing the open revert intent that it closes.
fn record_revert(steps: &mut [StepRecord], step: &str, target: &Target, operation_id: &str, outcome: RevertOutcome) {
    let Some(op) = find_operation(steps, step, target, operation_id) else {
        return;
    };
    if matches!(op.rollback.last(), Some(RevertOutcome::NoOutcome { .. })) {
        op.rollback.pop();
    }
    op.rollback.push(outcome);
}

/// Returns the value that names an outcome's evidence, and its time: the applied value, or the
/// value read when reconciliation found the change made.
fn kept_evidence(outcome: &ChangeOutcome) -> Option<(&Value, Stamp)> {
    match outcome {
        ChangeOutcome::Applied { value, at } | ChangeOutcome::AlreadyInPlace { value, at } => Some((value, *at)),
        ChangeOutcome::Reconciled { observed, at, decision, .. } if decision == "applied" || decision == "partly_applied" => Some((observed, *at)),
        _ => None,
    }
}

/// Lists the ids under `evidence` in an applied value.
fn evidence_ids(value: &Value) -> Vec<String> {
    value["evidence"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_string)).collect()
}

fn collect_evidence(steps: &[StepRecord]) -> Vec<EvidenceItem> {
    let mut items: Vec<EvidenceItem> = Vec::new();
    for step in steps {
        for target in &step.targets {
            for op in &target.operations {
                for (value, at) in op.outcomes.iter().filter_map(kept_evidence) {
                    for id in evidence_ids(value) {
                        if !items.iter().any(|item| item.id == id) {
                            items.push(EvidenceItem { id, step: step.id.clone(), target: target.target.clone(), operation_id: op.id.clone(), at });
                        }
                    }
                }
            }
        }
    }
    items.sort_by_key(|item| item.at.seq);
    items
}

fn collect_irreversible(steps: &[StepRecord]) -> Vec<IrreversibleChange> {
    let mut changes = Vec::new();
    for step in steps {
        for target in &step.targets {
            for op in target.operations.iter().filter(|o| !o.reversible) {
                changes.push(IrreversibleChange {
                    step: step.id.clone(),
                    target: target.target.clone(),
                    operation_id: op.id.clone(),
                    description: op.description.clone(),
                    outcome: op.outcomes.last().cloned(),
                });
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use contain_journal::JournalWriter;
    use serde_json::json;

    fn target() -> Target {
        Target { resource_type: "aws.ec2.instance".into(), id: "i-0abc".into(), region: Some("us-east-1".into()), account: None }
    }

    fn operation(id: &str, reversible: bool) -> Operation {
        Operation {
            id: id.into(),
            kind: "test.kind".into(),
            subject: "vol-1".into(),
            description: format!("change {id}"),
            prior: json!({ "snapshot": null }),
            desired: json!({ "snapshot": "<created by this run>" }),
            reversible,
        }
    }

    fn started() -> Event {
        Event::RunStarted {
            playbook: PlaybookInfo { name: "test".into(), path: "test.yaml".into(), digest: "d".into() },
            plan_digest: "p".into(),
            inputs: Map::new(),
            on_failure: "rollback".into(),
            operator: Operator { local_user: "alice".into(), cloud_identities: Vec::new(), api_principal: None, approved_by: None },
            contain_version: "0.1.0".into(),
            plan: None,
        }
    }

    /// Writes a run: a snapshot applied, a deletion applied, one change failed, then a rollback.
    fn write_run(dir: &Path) {
        let writer = JournalWriter::create(dir, "run-t").unwrap();
        let step = || "s".to_string();
        writer.append(started()).unwrap();
        writer.append(Event::StepIntent { step: step(), action: ActionKind::Snapshot, target: target(), operation: operation("a", true) }).unwrap();
        writer
            .append(Event::StepApplied { step: step(), target: target(), operation_id: "a".into(), applied: json!({ "snapshot": "snap-1", "evidence": ["snap-1"] }), already_in_place: false })
            .unwrap();
        writer.append(Event::StepIntent { step: step(), action: ActionKind::Snapshot, target: target(), operation: operation("gone", false) }).unwrap();
        writer.append(Event::StepApplied { step: step(), target: target(), operation_id: "gone".into(), applied: json!({}), already_in_place: false }).unwrap();
        writer.append(Event::StepIntent { step: step(), action: ActionKind::Snapshot, target: target(), operation: operation("b", true) }).unwrap();
        writer
            .append(Event::StepFailed { step: step(), target: target(), operation_id: "b".into(), error: "boom".into(), error_code: None, changed: false, compensation: None })
            .unwrap();
        writer.append(Event::RunFinished { status: "partial".into() }).unwrap();
        let operator = Operator { local_user: "bob".into(), cloud_identities: Vec::new(), api_principal: None, approved_by: None };
        writer.append(Event::RollbackStarted { reason: "test".into(), forced: false, operator }).unwrap();
        writer.append(Event::RevertIntent { step: step(), target: target(), operation_id: "a".into() }).unwrap();
        writer.append(Event::Reverted { step: step(), target: target(), operation_id: "a".into(), already_in_place: false }).unwrap();
        writer.append(Event::RollbackFinished { status: "rolled_back".into() }).unwrap();
    }

    /// A snapshot that a crash left without an outcome, and that reconciliation found made, is
    /// listed as evidence.
    #[test]
    fn reconciled_evidence_listed() {
        let dir = StateDir::new();
        let writer = JournalWriter::create(&dir, "run-r").unwrap();
        writer.append(started()).unwrap();
        writer.append(Event::StepIntent { step: "s".into(), action: ActionKind::Snapshot, target: target(), operation: operation("a", true) }).unwrap();
        let observed = json!({ "snapshot": "snap-9", "evidence": ["snap-9"] });
        writer.append(Event::Reconciled { step: "s".into(), target: target(), operation_id: "a".into(), decision: "applied".into(), detail: None, observed }).unwrap();
        writer.append(Event::StepIntent { step: "s".into(), action: ActionKind::Snapshot, target: target(), operation: operation("b", true) }).unwrap();
        let absent = json!({ "snapshot": "snap-never", "evidence": ["snap-never"] });
        writer.append(Event::Reconciled { step: "s".into(), target: target(), operation_id: "b".into(), decision: "not_applied".into(), detail: None, observed: absent }).unwrap();

        let record = incident_record(&dir, "run-r").unwrap();
        let ids: Vec<&str> = record.evidence.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["snap-9"], "only the change reconciliation found made");
    }

    #[test]
    fn record_of_intact_run() {
        let dir = StateDir::new();
        write_run(&dir);
        let record = incident_record(&dir, "run-t").unwrap();

        assert!(record.verification.intact);
        assert_eq!(record.verification.verified_records, 12);
        assert_eq!(record.status, RunStatus::RolledBack);
        assert_eq!(record.operators.iter().map(|o| o.local_user.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
        assert_eq!(record.rollbacks[0].status.as_deref(), Some("rolled_back"));
        assert_eq!(record.timeline.len(), 12);

        let ops = &record.steps[0].targets[0].operations;
        assert_eq!(ops.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["a", "gone", "b"]);
        assert!(matches!(ops[0].rollback.as_slice(), [RevertOutcome::Reverted { at }] if at.seq == 11));
        assert!(matches!(&ops[2].outcomes[..], [ChangeOutcome::Failed { error, left_change: false, .. }] if error == "boom"));
        assert_eq!(record.evidence.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["snap-1"]);
        assert_eq!(record.irreversible.len(), 1);
        assert_eq!(record.irreversible[0].operation_id, "gone");
    }

    #[test]
    fn edited_record_is_left_unverified() {
        let dir = StateDir::new();
        write_run(&dir);
        let path = journal_path(&dir, "run-t");
        let text = std::fs::read_to_string(&path).unwrap().replace("\"boom\"", "\"bOom\"");
        std::fs::write(&path, text).unwrap();

        let record = incident_record(&dir, "run-t").unwrap();
        let broken = record.verification.broken.as_ref().expect("a break");
        assert!(!record.verification.intact);
        assert_eq!(broken.line, 8, "record 8 does not carry the hash of the edited record 7");
        assert_eq!(broken.first_unverified_line, 7);
        assert_eq!(record.verification.verified_records, 6);
        assert_eq!(record.status, RunStatus::Interrupted, "the finishing records are not verified");
        assert_eq!(record.timeline.len(), 12, "the timeline keeps every line");
        assert!(record.timeline[6..].iter().all(|e| !e.verified));
        assert!(record.steps[0].targets[0].operations[2].outcomes.iter().all(|o| matches!(o, ChangeOutcome::NoOutcome { .. })));
    }

    #[test]
    fn unreadable_line_starts_unverified_part() {
        let dir = StateDir::new();
        write_run(&dir);
        let path = journal_path(&dir, "run-t");
        let mut lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(str::to_string).collect();
        lines[6] = lines[6].replacen('{', "[", 1);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();

        let record = incident_record(&dir, "run-t").unwrap();
        let broken = record.verification.broken.as_ref().expect("a break");
        assert_eq!(broken.line, 7);
        assert_eq!(broken.first_unverified_line, 7, "an unreadable line puts no earlier record in doubt");
        assert_eq!(record.verification.verified_records, 6);
        assert_eq!(record.timeline[6].seq, None);
        assert!(record.timeline[6].text.starts_with("unreadable line"), "{}", record.timeline[6].text);
        assert_eq!(record.timeline[7].seq, Some(8), "lines after the break are still read");
        assert!(!record.timeline[7].verified);
    }

    #[test]
    fn torn_tail_keeps_chain_intact() {
        let dir = StateDir::new();
        write_run(&dir);
        let path = journal_path(&dir, "run-t");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"seq\":13,\"ti");
        std::fs::write(&path, text).unwrap();

        let record = incident_record(&dir, "run-t").unwrap();
        assert!(record.verification.intact);
        assert!(record.verification.torn_tail);
        assert_eq!(record.verification.broken, None);
        assert_eq!(record.timeline.len(), 12, "the torn line is ignored");
        assert_eq!(record.status, RunStatus::RolledBack);
    }

    #[test]
    fn timeline_says_evidence_stays() {
        let dir = StateDir::new();
        write_run(&dir);
        let record = incident_record(&dir, "run-t").unwrap();

        let reverted = record.timeline.iter().find(|e| e.kind.as_deref() == Some("reverted")).expect("a reverted record");
        assert_eq!(reverted.text, "Step s, i-0abc (us-east-1): reverted (the evidence stays: snap-1): change a.");
    }

    /// A state directory that is removed when the test ends. The engine has no `tempfile`
    /// dependency, so the tests make their own.
    struct StateDir(std::path::PathBuf);

    impl StateDir {
        fn new() -> StateDir {
            let dir = std::env::temp_dir().join(format!("contain-record-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            StateDir(dir)
        }
    }

    impl std::ops::Deref for StateDir {
        type Target = Path;

        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for StateDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
