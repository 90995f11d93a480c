//! Applying a reviewed plan.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use contain_core::{Action, Assessment, CallContext, Mode, Operation, Pending, Reconciliation, Target};
use contain_journal::{Event, JournalWriter, Operator};
use contain_playbook::OnFailure;
use serde_json::Value;
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::journal::{JournalPending, SharedJournal, append, blocking, log_stats};
use crate::locks::lock_targets;
use crate::plan::{PlannedTarget, StepPlan};
use crate::progress::{JournaledOperation, OperationState};
use crate::report::{OperationOutcome, OperationReport, RunReport, RunStatus, StepReport, TargetOutcome, TargetReport};
use crate::{Engine, EngineError, Plan, ids, local_user};

/// A run whose first record is journaled and whose targets are locked, ready for
/// [`Engine::finish`].
pub struct StartedRun {
    context: CallContext,
    journal: SharedJournal,
    plan: Plan,
    operator: Operator,
    _locks: crate::locks::TargetLocks,
}

impl StartedRun {
    pub fn run_id(&self) -> &str {
        &self.context.run_id
    }
}

/// The journaled state of an interrupted attempt of a run, by step, target key and operation
/// id. Empty for a new run.
pub(crate) type Progress = BTreeMap<(String, String, String), JournaledOperation>;

impl Engine {
    /// Applies a plan that has no errors. Returns the run's report, whose status tells whether
    /// every target was contained.
    pub async fn apply(&self, plan: &Plan) -> Result<RunReport, EngineError> {
        let started = self.begin(plan.clone(), ids::new_id("run"), None, None).await?;
        self.finish(started).await
    }

    /// Starts a run: checks the plan, locks its targets and journals its first record. The
    /// changes are made by [`Engine::finish`], which a server may run in the background once it
    /// has responded with the run id. `api_principal` names the API caller and `approved_by` the
    /// principal who approved the run, for the journal.
    /// `run_id` comes from [`new_run_id`](crate::new_run_id), so that a server can name a run
    /// that waits for approval before it starts.
    pub async fn begin(&self, plan: Plan, run_id: String, api_principal: Option<String>, approved_by: Option<String>) -> Result<StartedRun, EngineError> {
        let errors = plan.errors();
        if !errors.is_empty() {
            return Err(EngineError::NotExecutable(errors.join("; ")));
        }

        let context = CallContext::new(Mode::Apply, run_id.clone());
        let resource_types: Vec<String> =
            plan.steps.iter().flat_map(|s| s.targets.iter().map(|t| t.target.resource_type.clone())).collect();
        let operator = Operator { local_user: local_user(), cloud_identities: self.caller_identities(&context, &resource_types).await?, api_principal, approved_by };

        let locks = lock_targets(&self.state_dir, &run_id, plan.steps.iter().flat_map(|s| s.targets.iter().map(|t| &t.target)))?;
        let (state_dir, new_run_id) = (self.state_dir.clone(), run_id.clone());
        let journal: SharedJournal = Arc::new(blocking(move || JournalWriter::create(&state_dir, &new_run_id)).await?);
        append(&journal, Event::RunStarted {
            playbook: plan.playbook.clone(),
            plan_digest: plan.digest(),
            inputs: plan.inputs.clone(),
            on_failure: plan.on_failure.to_string(),
            operator: operator.clone(),
            contain_version: env!("CARGO_PKG_VERSION").to_string(),
            plan: Some(contain_journal::PlanJson::new(&plan).expect("plans serialize to JSON")),
        }).await?;
        tracing::info!(run_id = %run_id, playbook = %plan.playbook.name, "run started");
        Ok(StartedRun { context, journal, plan, operator, _locks: locks })
    }

    /// Applies a started run and returns its report. The run's target locks are released at
    /// the end.
    pub async fn finish(&self, run: StartedRun) -> Result<RunReport, EngineError> {
        let StartedRun { context, journal, plan, operator, _locks } = run;
        self.execute(&context, journal, &plan, &Progress::new(), operator).await
    }

    /// Applies what `progress` does not name as done, then finishes the run: its final record,
    /// and the rollback its failure policy requires.
    pub(crate) async fn execute(&self, context: &CallContext, journal: SharedJournal, plan: &Plan, progress: &Progress, operator: Operator) -> Result<RunReport, EngineError> {
        let run_id = context.run_id.clone();
        let journal_path = journal.path().display().to_string();

        let evidence: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let steps = self.apply_steps(context, &journal, plan, progress, &evidence).await?;
        let failed = steps.iter().flat_map(|s| &s.targets).any(|t| matches!(t.outcome, TargetOutcome::Failed | TargetOutcome::Drift));
        let applied_any = steps
            .iter()
            .flat_map(|s| &s.targets)
            .flat_map(|t| &t.operations)
            .any(|o| o.outcome == OperationOutcome::Applied);
        let uncontained = steps.iter().flat_map(|s| &s.targets).any(|t| t.outcome == TargetOutcome::NotContainable);
        let status = match (failed, applied_any) {
            (false, _) if uncontained => RunStatus::Partial,
            (false, _) => RunStatus::Succeeded,
            (true, true) => RunStatus::Partial,
            (true, false) => RunStatus::Failed,
        };
        append(&journal, Event::RunFinished { status: status.to_string() }).await?;
        tracing::info!(run_id = %run_id, status = %status, "run finished");

        let evidence = std::mem::take(&mut *evidence.lock().expect("evidence lock"));
        let mut report = RunReport { run_id: run_id.clone(), status, playbook: plan.playbook.name.clone(), steps, journal: journal_path, notes: Vec::new(), evidence };
        if failed && plan.on_failure == OnFailure::Rollback && applied_any {
            let rollback = self.rollback_with(&journal, context, false, "a target failed and the playbook's on_failure is rollback", operator, None).await?;
            report.notes.push(format!("a target failed, so the run was rolled back (on_failure: rollback): {}", rollback.status));
            report.status = rollback.status;
            merge_rollback(&mut report.steps, rollback.steps);
        }
        log_stats(&run_id, &journal);
        Ok(report)
    }

    /// Reads an operation's subject and decides whether its journaled intent took effect,
    /// journaling the decision with the value read.
    async fn reconcile(
        &self,
        context: &CallContext,
        journal: &SharedJournal,
        step: &StepPlan,
        target: &Target,
        action: &dyn Action,
        operation: &Operation,
    ) -> Result<Reconciled, EngineError> {
        let current = match self.read_with_retries(action, context, target, operation).await {
            Ok(current) => current,
            Err(error) => return Ok(Reconciled::Unknown(format!("cannot read {}: {error}", operation.subject))),
        };
        let decision = action.reconcile(operation, &current);
        append(journal, Event::Reconciled {
            step: step.id.clone(),
            target: target.clone(),
            operation_id: operation.id.clone(),
            decision: decision.as_str().to_string(),
            detail: decision.detail().map(str::to_string),
            observed: current.clone(),
        }).await?;
        tracing::info!(run_id = %context.run_id, target = %target, operation = %operation.id, decision = decision.as_str(), "reconciled an operation the journal left without an outcome");
        Ok(match decision {
            Reconciliation::Applied => Reconciled::Applied(current),
            Reconciliation::NotApplied | Reconciliation::Partly { .. } => Reconciled::Redo,
            Reconciliation::Unknown { detail } => Reconciled::Unknown(detail),
        })
    }

    async fn apply_steps(&self, context: &CallContext, journal: &SharedJournal, plan: &Plan, progress: &Progress, evidence: &Mutex<Vec<String>>) -> Result<Vec<StepReport>, EngineError> {
        let semaphore = Semaphore::new(self.concurrency);
        let mut reports: Vec<StepReport> = Vec::new();
        let mut failed_steps: BTreeSet<String> = BTreeSet::new();
        let mut halted = false;

        for level in levels(plan) {
            let mut runnable = Vec::new();
            for step in level {
                let blocked_by = step.needs.iter().find(|n| failed_steps.contains(*n));
                if halted || blocked_by.is_some() {
                    let reason = match blocked_by {
                        Some(need) => format!("not started: step `{need}`, which it needs, failed"),
                        None => "not started: the run halted after a failure (on_failure: halt)".to_string(),
                    };
                    reports.push(skipped_step(step, &reason));
                    failed_steps.insert(step.id.clone());
                } else {
                    runnable.push(step);
                }
            }

            let results = futures::future::join_all(runnable.iter().map(|step| self.apply_step(context, journal, step, &semaphore, progress, evidence))).await;
            for result in results {
                let report = result?;
                if report.targets.iter().any(|t| matches!(t.outcome, TargetOutcome::Failed | TargetOutcome::Drift)) {
                    failed_steps.insert(report.id.clone());
                    halted = plan.on_failure == OnFailure::Halt || plan.on_failure == OnFailure::Rollback;
                }
                reports.push(report);
            }
        }

        let order: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
        reports.sort_by_key(|r| order.iter().position(|id| *id == r.id));
        Ok(reports)
    }

    async fn apply_step(
        &self,
        context: &CallContext,
        journal: &SharedJournal,
        step: &StepPlan,
        semaphore: &Semaphore,
        progress: &Progress,
        evidence: &Mutex<Vec<String>>,
    ) -> Result<StepReport, EngineError> {
        let started = std::time::Instant::now();
        let action = self.action(step.action, step.targets.first().map(|t| t.target.resource_type.as_str()).unwrap_or_default());
        // At most `concurrency` targets of the step are in progress, started in order. A future
        // made up front for each target would hold several kilobytes for each of many thousands.
        // This is no stream combinator because rustc cannot prove such a future Send for every
        // lifetime (rust-lang/rust#64552), and the HTTP server spawns runs on other threads.
        let action = action.as_deref();
        let limit = self.concurrency.max(1);
        let mut waiting = step.targets.iter().enumerate();
        let mut in_progress = futures::stream::FuturesUnordered::new();
        let mut reports: Vec<Option<Result<TargetReport, EngineError>>> = std::iter::repeat_with(|| None).take(step.targets.len()).collect();
        loop {
            while in_progress.len() < limit {
                let Some((index, planned)) = waiting.next() else { break };
                let report = self.apply_permitted(context, journal, step, planned, action, semaphore, progress, evidence);
                in_progress.push(async move { (index, report.await) });
            }
            match in_progress.next().await {
                Some((index, report)) => reports[index] = Some(report),
                None => break,
            }
        }
        let targets = reports.into_iter().map(|report| report.expect("every target of the step was applied"));
        crate::metrics::observe_step(step.action, started.elapsed());
        Ok(StepReport { id: step.id.clone(), action: step.action, targets: targets.collect::<Result<_, _>>()? })
    }

    /// Applies one target once the semaphore lets it, then reports it to the observer.
    #[allow(clippy::too_many_arguments)]
    async fn apply_permitted(
        &self,
        context: &CallContext,
        journal: &SharedJournal,
        step: &StepPlan,
        planned: &PlannedTarget,
        action: Option<&dyn Action>,
        semaphore: &Semaphore,
        progress: &Progress,
        evidence: &Mutex<Vec<String>>,
    ) -> Result<TargetReport, EngineError> {
        let _permit = semaphore.acquire().await.expect("semaphore is never closed");
        let report = match action {
            Some(action) => self.apply_target(context, journal, step, planned, action, progress, evidence).await,
            None => Ok(target_report(planned, TargetOutcome::Failed, Some("no provider offers this action any more".into()))),
        };
        if let (Some(observer), Ok(report)) = (&self.observer, &report) {
            observer.target_done(&step.id, &report.target, report.outcome);
        }
        report
    }

    async fn apply_target(
        &self,
        context: &CallContext,
        journal: &SharedJournal,
        step: &StepPlan,
        planned: &PlannedTarget,
        action: &dyn Action,
        progress: &Progress,
        evidence: &Mutex<Vec<String>>,
    ) -> Result<TargetReport, EngineError> {
        let target = &planned.target;
        let operations = &planned.plan.operations;
        if let Some(reason) = &planned.plan.uncontainable {
            tracing::warn!(run_id = %context.run_id, step = %step.id, target = %target, "not containable: {reason}");
            return Ok(target_report(planned, TargetOutcome::NotContainable, Some(reason.clone())));
        }
        if operations.is_empty() {
            return Ok(target_report(planned, TargetOutcome::AlreadyContained, None));
        }

        // What an interrupted attempt of this run did (resume only): operations that took
        // effect are kept, and an intent without an outcome is reconciled first.
        let mut done: Vec<Option<(Operation, Value, bool)>> = vec![None; operations.len()];
        let mut reconciled = vec![false; operations.len()];
        // Operations whose prior value the plan left to apply, completed with the value read.
        let mut completed: Vec<Option<Operation>> = vec![None; operations.len()];
        for (index, operation) in operations.iter().enumerate() {
            let Some(journaled) = progress.get(&(step.id.clone(), target.key(), operation.id.clone())) else {
                continue;
            };
            // The interrupted attempt journaled the prior value it read before it changed
            // anything. Keep that one, so that rollback restores the state before the run.
            if operation.prior_read_at_apply() {
                completed[index] = Some(journaled.operation.clone());
            }
            match &journaled.state {
                OperationState::Applied(value) => done[index] = Some((journaled.operation.clone(), value.clone(), false)),
                OperationState::AlreadyInPlace(value) => done[index] = Some((journaled.operation.clone(), value.clone(), true)),
                OperationState::Uncertain | OperationState::Partly(_) | OperationState::Unknown(_) => {
                    match self.reconcile(context, journal, step, target, action, &journaled.operation).await? {
                        Reconciled::Applied(current) => done[index] = Some((journaled.operation.clone(), current, false)),
                        Reconciled::Redo => reconciled[index] = true,
                        Reconciled::Unknown(detail) => {
                            let reason = format!("drift: {detail}; resume left {target} as it is: check it, then roll the run back or plan again");
                            tracing::warn!(run_id = %context.run_id, step = %step.id, target = %target, "{reason}");
                            append(journal, Event::StepSkipped { step: step.id.clone(), target: target.clone(), reason: reason.clone() }).await?;
                            return Ok(target_report(planned, TargetOutcome::Drift, Some(reason)));
                        }
                    }
                }
                OperationState::NotApplied | OperationState::FailedUnchanged | OperationState::FailedChanged | OperationState::Reverting(_) | OperationState::Reverted => {}
            }
        }

        // Drift check: every subject still to change must hold what the plan saw, before
        // anything changes. A prior value the plan left to apply is read here, and what the
        // operation changes is narrowed to the fields that differ from the desired value.
        let mut in_place = vec![false; operations.len()];
        for (index, operation) in operations.iter().enumerate() {
            if done[index].is_some() || reconciled[index] {
                continue;
            }
            let checked = completed[index].as_ref().unwrap_or(operation);
            let (assessment, read) = match self.read_with_retries(action, context, target, checked).await {
                Ok(current) if checked.prior_read_at_apply() => {
                    let read = checked.with_prior_read(&current);
                    let assessment = if read.changes_nothing() { Assessment::Applied } else { Assessment::Prior };
                    (assessment, Some(read))
                }
                Ok(current) => (action.assess(checked, &current, None), None),
                Err(error) => (Assessment::Diverged { detail: format!("cannot read {}: {error}", operation.subject) }, None),
            };
            if read.is_some() {
                completed[index] = read;
            }
            match assessment {
                Assessment::Prior => {}
                Assessment::Applied => in_place[index] = true,
                Assessment::Diverged { detail } => {
                    let reason = format!("drift: {detail}; nothing was changed on {target}: run `contain plan` again");
                    tracing::warn!(run_id = %context.run_id, step = %step.id, target = %target, "{reason}");
                    append(journal, Event::StepSkipped { step: step.id.clone(), target: target.clone(), reason: reason.clone() }).await?;
                    return Ok(target_report(planned, TargetOutcome::Drift, Some(reason)));
                }
            }
        }

        let mut reports: Vec<OperationReport> = operations.iter().map(|op| not_started(op)).collect();
        let mut earlier: Vec<(Operation, Value)> = Vec::new();
        for (index, operation) in operations.iter().enumerate() {
            if let Some((bound, value, already_in_place)) = done[index].take() {
                let kept = value["evidence"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_string));
                evidence.lock().expect("evidence lock").extend(kept);
                reports[index].outcome = if already_in_place { OperationOutcome::AlreadyInPlace } else { OperationOutcome::Applied };
                earlier.push((bound, value));
                continue;
            }

            let bound = action.bind(context, completed[index].as_ref().unwrap_or(operation), &earlier);
            append(journal, Event::StepIntent { step: step.id.clone(), action: step.action, target: target.clone(), operation: bound.clone() }).await?;

            if in_place[index] {
                let current = self.read_with_retries(action, context, target, &bound).await.unwrap_or(Value::Null);
                append(journal, Event::StepApplied { step: step.id.clone(), target: target.clone(), operation_id: bound.id.clone(), applied: current.clone(), already_in_place: true }).await?;
                reports[index].outcome = OperationOutcome::AlreadyInPlace;
                earlier.push((bound, current));
                continue;
            }

            let journaled = JournalPending { journal: journal.clone(), step: step.id.clone(), target: target.clone(), operation_id: bound.id.clone() };
            let operation_context = CallContext { pending: Pending::new(Arc::new(journaled)), ..context.clone() };
            match self.apply_with_retries(action, &operation_context, target, &bound).await {
                Ok(applied) => {
                    let kept = applied["evidence"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_string));
                    evidence.lock().expect("evidence lock").extend(kept);
                    append(journal, Event::StepApplied { step: step.id.clone(), target: target.clone(), operation_id: bound.id.clone(), applied: applied.clone(), already_in_place: false }).await?;
                    reports[index].outcome = OperationOutcome::Applied;
                    earlier.push((bound, applied));
                }
                Err(error) => {
                    // Whether the failed call left a change decides whether rollback must revert it.
                    let changed = match self.read_with_retries(action, context, target, &bound).await {
                        Ok(current) => action.assess(&bound, &current, None) != Assessment::Prior,
                        Err(_) => true,
                    };
                    append(journal, Event::StepFailed {
                        step: step.id.clone(),
                        target: target.clone(),
                        operation_id: bound.id.clone(),
                        error: error.message.clone(),
                        error_code: error.code.clone(),
                        changed,
                        compensation: error.compensation.clone(),
                    }).await?;
                    if let Some(compensation) = &error.compensation {
                        tracing::warn!(run_id = %context.run_id, step = %step.id, target = %target, operation = %bound.id, "failed, compensated: {compensation}");
                    }
                    tracing::error!(run_id = %context.run_id, step = %step.id, target = %target, operation = %bound.id, "{}", error.message);
                    reports[index].outcome = OperationOutcome::Failed;
                    reports[index].error = Some(error.message.clone());
                    return Ok(TargetReport { target: target.clone(), outcome: TargetOutcome::Failed, operations: reports, error: Some(error.message) });
                }
            }
        }

        tracing::info!(run_id = %context.run_id, step = %step.id, target = %target, "target contained");
        Ok(TargetReport { target: target.clone(), outcome: TargetOutcome::Contained, operations: reports, error: None })
    }
}

/// The decision of resume about an operation the journal left without an outcome.
enum Reconciled {
    /// It took effect: keep it, with the value read.
    Applied(Value),
    /// It did not take effect, or only partly: apply it again.
    Redo,
    /// The subject has a value the operation does not explain.
    Unknown(String),
}

/// Groups the steps so that each group needs only steps of earlier groups.
fn levels(plan: &Plan) -> Vec<Vec<&StepPlan>> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut levels = Vec::new();
    while placed.len() < plan.steps.len() {
        let level: Vec<&StepPlan> = plan
            .steps
            .iter()
            .filter(|s| !placed.contains(s.id.as_str()) && s.needs.iter().all(|n| placed.contains(n.as_str())))
            .collect();
        assert!(!level.is_empty(), "validated plans have no dependency cycle");
        placed.extend(level.iter().map(|s| s.id.as_str()));
        levels.push(level);
    }
    levels
}

fn not_started(operation: &Operation) -> OperationReport {
    OperationReport { id: operation.id.clone(), description: operation.description.clone(), outcome: OperationOutcome::NotStarted, error: None }
}

fn target_report(planned: &PlannedTarget, outcome: TargetOutcome, error: Option<String>) -> TargetReport {
    TargetReport { target: planned.target.clone(), outcome, operations: planned.plan.operations.iter().map(not_started).collect(), error }
}

fn skipped_step(step: &StepPlan, reason: &str) -> StepReport {
    StepReport {
        id: step.id.clone(),
        action: step.action,
        targets: step.targets.iter().map(|t| target_report(t, TargetOutcome::Skipped, Some(reason.to_string()))).collect(),
    }
}

/// Puts the rollback's outcome of each target into the run's report.
fn merge_rollback(steps: &mut [StepReport], rollback: Vec<StepReport>) {
    for rolled in rollback {
        let Some(step) = steps.iter_mut().find(|s| s.id == rolled.id) else {
            continue;
        };
        for rolled_target in rolled.targets {
            if let Some(target) = step.targets.iter_mut().find(|t| t.target == rolled_target.target) {
                target.outcome = rolled_target.outcome;
                for rolled_op in rolled_target.operations {
                    if let Some(op) = target.operations.iter_mut().find(|o| o.id == rolled_op.id) {
                        op.outcome = rolled_op.outcome;
                        if rolled_op.error.is_some() {
                            op.error = rolled_op.error;
                        }
                    }
                }
                if rolled_target.error.is_some() {
                    target.error = rolled_target.error;
                }
            }
        }
    }
}
