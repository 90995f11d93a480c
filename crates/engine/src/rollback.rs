//! Reverting a run from its journal alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use contain_core::{Assessment, CallContext, Mode, Reconciliation};
use contain_journal::{Event, JournalWriter, Operator};
use serde_json::Value;

use crate::journal::{SharedJournal, append, blocking};
use crate::progress::{JournaledOperation, OperationState, journaled_operations};

use crate::report::{OperationOutcome, OperationReport, RunReport, RunStatus, StepReport, TargetOutcome, TargetReport};
use crate::locks::lock_targets;
use crate::runs::status_of;
use crate::{Engine, EngineError, local_user};

/// The options of a rollback: which steps, whether to force, and who requested it.
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    /// Revert targets that someone changed since the run too.
    pub force: bool,
    /// Revert only these steps' changes; all steps when `None`.
    pub steps: Option<Vec<String>>,
    /// The API principal who asked, for the journal.
    pub api_principal: Option<String>,
}

impl Engine {
    /// Reverts all of a run's applied changes; see [`Engine::rollback_with_options`].
    pub async fn rollback(&self, run_id: &str, force: bool) -> Result<RunReport, EngineError> {
        self.rollback_with_options(run_id, RollbackOptions { force, ..RollbackOptions::default() }).await
    }

    /// Reverts a run's applied changes, or those of some of its steps, in reverse order, from
    /// its journal alone.
    ///
    /// A target whose current state is neither what the run left nor its prior state was
    /// changed by someone else: it is refused, naming the difference, unless `force`. Rolling
    /// back a run that has nothing left to revert writes nothing. A step id the run does not
    /// have is refused before anything is read.
    pub async fn rollback_with_options(&self, run_id: &str, options: RollbackOptions) -> Result<RunReport, EngineError> {
        let RollbackOptions { force, steps, api_principal } = options;
        let (state_dir, opened_run_id) = (self.state_dir.clone(), run_id.to_string());
        let (writer, journal) = blocking(move || JournalWriter::open(&state_dir, &opened_run_id)).await?;
        let writer: SharedJournal = Arc::new(writer);
        if let Some(problem) = journal.problems.iter().find(|p| !journal.torn_tail || !p.message.starts_with("torn")) {
            return Err(EngineError::Run {
                run_id: run_id.to_string(),
                message: format!("its journal is damaged at line {}: {}; verify it before rolling back", problem.line, problem.message),
            });
        }
        if let Some(steps) = &steps {
            check_steps(run_id, &journal.records, steps)?;
        }
        let context = CallContext::new(Mode::Apply, run_id.to_string());
        let operations = journaled_operations(&journal.records);
        let _locks = lock_targets(&self.state_dir, run_id, operations.iter().map(|op| &op.target))?;
        // Who rolled back belongs in the record, but a rollback must not wait on it.
        let types: Vec<String> = operations.iter().map(|op| op.target.resource_type.clone()).collect();
        let cloud_identities = self.caller_identities(&context, &types).await.unwrap_or_else(|error| {
            tracing::warn!(run_id, "rolling back without the caller identity: {error}");
            Vec::new()
        });
        let operator = Operator { local_user: local_user(), cloud_identities, api_principal, approved_by: None };

        let reason = match &steps {
            Some(steps) => format!("requested by the operator, for the step(s) {}", steps.join(", ")),
            None => "requested by the operator".to_string(),
        };
        let mut report = self.rollback_with(&writer, &context, force, &reason, operator, steps.as_deref()).await?;
        crate::journal::log_stats(run_id, &writer);
        if report.steps.is_empty() {
            report.status = status_of(&journal.records).unwrap_or(RunStatus::Interrupted);
            report.notes.push("nothing to roll back: every change of this run is already reverted, or it made none".into());
        }
        Ok(report)
    }

    /// Reverts what the journal behind `writer` names as applied, appending to it.
    pub(crate) async fn rollback_with(
        &self,
        writer: &SharedJournal,
        context: &CallContext,
        force: bool,
        reason: &str,
        operator: Operator,
        steps: Option<&[String]>,
    ) -> Result<RunReport, EngineError> {
        let path = writer.path().to_path_buf();
        let records = blocking(move || contain_journal::read_journal(&path).map_err(|source| contain_journal::JournalError::Io { path, source })).await?.records;
        let playbook = records.iter().find_map(|r| match &r.event {
            Event::RunStarted { playbook, .. } => Some(playbook.name.clone()),
            _ => None,
        });
        let journal_path = writer.path().display().to_string();
        let chosen = |op: &JournaledOperation| steps.is_none_or(|steps| steps.contains(&op.step));
        // Changes of the steps left out stay in place, and the status reports them.
        let left_in_place = journaled_operations(&records).iter().any(|op| !chosen(op) && op.state.may_have_changed());
        let (mut pending, irreversible): (Vec<JournaledOperation>, Vec<JournaledOperation>) = journaled_operations(&records)
            .into_iter()
            .filter(|op| chosen(op))
            .filter(|op| op.state.may_have_changed())
            .partition(|op| op.operation.reversible);
        pending.sort_by_key(|op| std::cmp::Reverse(op.seq));

        let mut report = RunReport {
            run_id: context.run_id.clone(),
            status: RunStatus::RolledBack,
            playbook: playbook.unwrap_or_default(),
            steps: Vec::new(),
            journal: journal_path,
            notes: Vec::new(),
            evidence: Vec::new(),
        };
        for op in &irreversible {
            report.notes.push(format!("{} on {} cannot be undone, so rollback left it: {}", op.operation.id, op.target, op.operation.description));
        }
        if pending.is_empty() {
            return Ok(report);
        }
        append(writer, Event::RollbackStarted { reason: reason.to_string(), forced: force, operator }).await?;
        tracing::info!(run_id = %context.run_id, operations = pending.len(), "rollback started");

        // Check every target first, so that a refused target is left wholly untouched.
        let mut refused: BTreeMap<String, String> = BTreeMap::new();
        let mut outcomes: BTreeMap<(String, String, String), OperationReport> = BTreeMap::new();
        let mut to_revert = Vec::new();
        for op in &pending {
            let Some(action) = self.action(op.action, &op.target.resource_type) else {
                refused.insert(op.target.key(), format!("no provider offers {} for {}", op.action, op.target.resource_type));
                continue;
            };
            let current = match self.read_with_retries(action.as_ref(), context, &op.target, &op.operation).await {
                Ok(current) => current,
                Err(error) => {
                    let detail = format!("cannot read {}: {error}", op.operation.subject);
                    if force {
                        tracing::warn!(run_id = %context.run_id, target = %op.target, "reverting without reading the subject (--force): {detail}");
                        to_revert.push((op.clone(), revert_value(op, None)));
                    } else {
                        refused.entry(op.target.key()).or_insert(format!("{detail}, so rollback left {} untouched: try again, or use --force", op.target));
                    }
                    continue;
                }
            };
            let assessment = match &op.state {
                OperationState::Applied(value) => action.assess(&op.operation, &current, Some(value)),
                OperationState::FailedChanged => action.assess(&op.operation, &current, None),
                // An earlier rollback stopped during this revert, which may have made part of
                // its calls: a state between the two is this run's, and is reverted on.
                OperationState::Reverting(value) => match action.assess(&op.operation, &current, Some(value)) {
                    Assessment::Diverged { .. } if op.operation.is_between(&current, value) => Assessment::Applied,
                    other => other,
                },
                // No outcome, or a decision made before that a revert must check again.
                _ => {
                    let decision = action.reconcile(&op.operation, &current);
                    append(writer, Event::Reconciled {
                        step: op.step.clone(),
                        target: op.target.clone(),
                        operation_id: op.operation.id.clone(),
                        decision: decision.as_str().to_string(),
                        detail: decision.detail().map(str::to_string),
                        observed: current.clone(),
                    }).await?;
                    tracing::info!(run_id = %context.run_id, target = %op.target, operation = %op.operation.id, decision = decision.as_str(), "reconciled an operation the journal left without an outcome");
                    match decision {
                        Reconciliation::NotApplied => Assessment::Prior,
                        Reconciliation::Applied | Reconciliation::Partly { .. } => Assessment::Applied,
                        Reconciliation::Unknown { detail } => Assessment::Diverged { detail },
                    }
                }
            };
            match assessment {
                Assessment::Applied => to_revert.push((op.clone(), revert_value(op, Some(&current)))),
                Assessment::Prior => {
                    append(writer, Event::Reverted { step: op.step.clone(), target: op.target.clone(), operation_id: op.operation.id.clone(), already_in_place: true }).await?;
                    outcomes.insert(key(op), op_report(op, OperationOutcome::AlreadyReverted, None));
                }
                Assessment::Diverged { detail } if force => {
                    tracing::warn!(run_id = %context.run_id, target = %op.target, "reverting despite a change since the run (--force): {detail}");
                    to_revert.push((op.clone(), revert_value(op, Some(&current))));
                }
                Assessment::Diverged { detail } => {
                    refused.entry(op.target.key()).or_insert(format!(
                        "{detail}; someone changed {} since this run, so rollback left it untouched: check it, then use --force to restore the state before the run",
                        op.target
                    ));
                }
            }
        }

        for (op, applied) in to_revert {
            if let Some(reason) = refused.get(&op.target.key()) {
                append(writer, Event::RevertFailed { step: op.step.clone(), target: op.target.clone(), operation_id: op.operation.id.clone(), error: format!("refused: {reason}") }).await?;
                outcomes.insert(key(&op), op_report(&op, OperationOutcome::RevertRefused, Some(reason.clone())));
                continue;
            }
            let action = self.action(op.action, &op.target.resource_type).expect("checked above");
            append(writer, Event::RevertIntent { step: op.step.clone(), target: op.target.clone(), operation_id: op.operation.id.clone() }).await?;
            match self.revert_with_retries(action.as_ref(), context, &op.target, &op.operation, &applied).await {
                Ok(notes) => {
                    append(writer, Event::Reverted { step: op.step.clone(), target: op.target.clone(), operation_id: op.operation.id.clone(), already_in_place: false }).await?;
                    outcomes.insert(key(&op), op_report(&op, OperationOutcome::Reverted, None));
                    report.notes.extend(notes);
                }
                Err(error) => {
                    tracing::error!(run_id = %context.run_id, target = %op.target, operation = %op.operation.id, "revert failed: {}", error.message);
                    append(writer, Event::RevertFailed { step: op.step.clone(), target: op.target.clone(), operation_id: op.operation.id.clone(), error: error.message.clone() }).await?;
                    refused.entry(op.target.key()).or_insert(format!("revert of {} failed: {}", op.operation.id, error.message));
                    outcomes.insert(key(&op), op_report(&op, OperationOutcome::RevertFailed, Some(error.message)));
                }
            }
        }
        for op in &pending {
            if let (Some(reason), false) = (refused.get(&op.target.key()), outcomes.contains_key(&key(op))) {
                append(writer, Event::RevertFailed { step: op.step.clone(), target: op.target.clone(), operation_id: op.operation.id.clone(), error: format!("refused: {reason}") }).await?;
                outcomes.insert(key(op), op_report(op, OperationOutcome::RevertRefused, Some(reason.clone())));
            }
        }

        for op in &irreversible {
            outcomes.insert(key(op), op_report(op, OperationOutcome::Irreversible, None));
        }
        let mut reported = pending.clone();
        reported.extend(irreversible.iter().cloned());
        report.steps = step_reports(&reported, &outcomes, &refused);
        let reverted_any = outcomes.values().any(|o| o.outcome == OperationOutcome::Reverted);
        report.status = match (refused.is_empty(), reverted_any) {
            (true, _) if left_in_place => RunStatus::PartlyRolledBack,
            (true, _) => RunStatus::RolledBack,
            (false, true) => RunStatus::Partial,
            // Nothing was reverted, so the run stays as it was.
            (false, false) => status_of(&records).unwrap_or(RunStatus::Partial),
        };
        append(writer, Event::RollbackFinished { status: report.status.to_string() }).await?;
        tracing::info!(run_id = %context.run_id, status = %report.status, "rollback finished");
        Ok(report)
    }
}

/// Lists the ids of the steps that journaled a change, in the order of their first change:
/// the steps a rollback can choose.
pub fn changed_steps(records: &[contain_journal::Record]) -> Vec<String> {
    let mut known: Vec<String> = Vec::new();
    for record in records {
        if let Event::StepIntent { step, .. } = &record.event
            && !known.contains(step)
        {
            known.push(step.clone());
        }
    }
    known
}

/// Rejects step ids that made no change in the run, naming the ones that did. The server calls it
/// before it answers a rollback request, the engine again when the rollback runs.
pub fn check_steps(run_id: &str, records: &[contain_journal::Record], steps: &[String]) -> Result<(), EngineError> {
    let known = changed_steps(records);
    if steps.is_empty() {
        return Err(EngineError::NoSuchStep { run_id: run_id.to_string(), message: "the list of steps to roll back is empty: leave it out to roll back every step".into() });
    }
    match steps.iter().find(|s| !known.contains(s)) {
        Some(unknown) => Err(EngineError::NoSuchStep {
            run_id: run_id.to_string(),
            message: format!("it has no changes of a step `{unknown}`; the steps that made changes are: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") }),
        }),
        None => Ok(()),
    }
}

fn key(op: &JournaledOperation) -> (String, String, String) {
    op.key()
}

/// Returns the value revert restores from: what apply returned when the journal has it, else what the
/// subject contains now (after a crash), else the planned value.
fn revert_value(op: &JournaledOperation, current: Option<&Value>) -> Value {
    match (&op.state, current) {
        (OperationState::Applied(value) | OperationState::Reverting(value), _) => value.clone(),
        (_, Some(current)) => current.clone(),
        (_, None) => op.operation.desired.clone(),
    }
}

fn op_report(op: &JournaledOperation, outcome: OperationOutcome, error: Option<String>) -> OperationReport {
    OperationReport { id: op.operation.id.clone(), description: op.operation.description.clone(), outcome, error }
}

fn step_reports(
    pending: &[JournaledOperation],
    outcomes: &BTreeMap<(String, String, String), OperationReport>,
    refused: &BTreeMap<String, String>,
) -> Vec<StepReport> {
    let mut steps: Vec<StepReport> = Vec::new();
    // Listed in the order rollback reverts them: newest first.
    let mut in_order = pending.to_vec();
    in_order.sort_by_key(|op| std::cmp::Reverse(op.seq));
    for op in &in_order {
        let step_index = match steps.iter().position(|s| s.id == op.step) {
            Some(index) => index,
            None => {
                steps.push(StepReport { id: op.step.clone(), action: op.action, targets: Vec::new() });
                steps.len() - 1
            }
        };
        let step = &mut steps[step_index];
        let target_index = match step.targets.iter().position(|t| t.target == op.target) {
            Some(index) => index,
            None => {
                let refusal = refused.get(&op.target.key()).cloned();
                let outcome = if refusal.is_some() { TargetOutcome::RollbackRefused } else { TargetOutcome::RolledBack };
                step.targets.push(TargetReport { target: op.target.clone(), outcome, operations: Vec::new(), error: refusal });
                step.targets.len() - 1
            }
        };
        if let Some(report) = outcomes.get(&key(op)) {
            step.targets[target_index].operations.push(report.clone());
        }
    }
    // Steps in the order they ran, as a run's report lists them.
    let first_seq = |step: &StepReport| pending.iter().filter(|op| op.step == step.id).map(|op| op.seq).min().unwrap_or(u64::MAX);
    steps.sort_by_key(first_seq);
    for target in steps.iter_mut().flat_map(|s| s.targets.iter_mut()) {
        let nothing_reverted = target.operations.iter().all(|o| matches!(o.outcome, OperationOutcome::AlreadyReverted | OperationOutcome::Irreversible));
        if target.outcome == TargetOutcome::RolledBack && nothing_reverted {
            target.outcome = TargetOutcome::NothingToRollBack;
        }
    }
    steps
}
