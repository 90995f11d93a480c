//! Applying a reviewed plan.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use contain_core::{Action, Assessment, CallContext, Mode, Operation};
use contain_journal::{Event, JournalWriter, Operator};
use contain_playbook::OnFailure;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::plan::{PlannedTarget, StepPlan};
use crate::report::{OperationOutcome, OperationReport, RunReport, RunStatus, StepReport, TargetOutcome, TargetReport};
use crate::{Engine, EngineError, Plan, ids, local_user};

/// The journal of the run being applied, shared by the concurrent targets.
pub(crate) type SharedJournal = Arc<Mutex<JournalWriter>>;

pub(crate) fn append(journal: &SharedJournal, event: Event) -> Result<(), EngineError> {
    // NOTE: each record is synced on its own while the lock is held; concurrent targets wait
    // for each other's fsync.
    journal.lock().expect("journal lock").append(event)?;
    Ok(())
}

impl Engine {
    /// Applies a plan that has no errors. Returns the run's report, whose status tells whether
    /// every target was contained.
    pub async fn apply(&self, plan: &Plan) -> Result<RunReport, EngineError> {
        let errors = plan.errors();
        if !errors.is_empty() {
            return Err(EngineError::NotExecutable(errors.join("; ")));
        }

        let run_id = ids::new_id("run");
        let context = CallContext { mode: Mode::Apply, run_id: run_id.clone() };
        let resource_types: Vec<String> =
            plan.steps.iter().flat_map(|s| s.targets.iter().map(|t| t.target.resource_type.clone())).collect();
        let operator = Operator { local_user: local_user(), cloud_identities: self.caller_identities(&context, &resource_types).await? };

        let mut writer = JournalWriter::create(&self.state_dir, &run_id)?;
        writer.append(Event::RunStarted {
            playbook: plan.playbook.clone(),
            plan_digest: plan.digest(),
            inputs: plan.inputs.clone(),
            on_failure: plan.on_failure.to_string(),
            operator: operator.clone(),
            contain_version: env!("CARGO_PKG_VERSION").to_string(),
        })?;
        let journal_path = writer.path().display().to_string();
        let journal: SharedJournal = Arc::new(Mutex::new(writer));
        tracing::info!(run_id = %run_id, playbook = %plan.playbook.name, "run started");

        let evidence: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let steps = self.apply_steps(&context, &journal, plan, &evidence).await?;
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
        append(&journal, Event::RunFinished { status: status.to_string() })?;
        tracing::info!(run_id = %run_id, status = %status, "run finished");

        let evidence = std::mem::take(&mut *evidence.lock().expect("evidence lock"));
        let mut report = RunReport { run_id: run_id.clone(), status, playbook: plan.playbook.name.clone(), steps, journal: journal_path, notes: Vec::new(), evidence };
        if failed && plan.on_failure == OnFailure::Rollback && applied_any {
            let mut writer = Arc::try_unwrap(journal).ok().expect("all targets finished").into_inner().expect("journal lock");
            let rollback = self.rollback_with(&mut writer, &context, false, "a target failed and the playbook's on_failure is rollback", operator).await?;
            report.notes.push(format!("a target failed, so the run was rolled back (on_failure: rollback): {}", rollback.status));
            report.status = rollback.status;
            merge_rollback(&mut report.steps, rollback.steps);
        }
        Ok(report)
    }

    async fn apply_steps(&self, context: &CallContext, journal: &SharedJournal, plan: &Plan, evidence: &Mutex<Vec<String>>) -> Result<Vec<StepReport>, EngineError> {
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

            let results = futures::future::join_all(runnable.iter().map(|step| self.apply_step(context, journal, step, &semaphore, evidence))).await;
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

    async fn apply_step(&self, context: &CallContext, journal: &SharedJournal, step: &StepPlan, semaphore: &Semaphore, evidence: &Mutex<Vec<String>>) -> Result<StepReport, EngineError> {
        let action = self.action(step.action, step.targets.first().map(|t| t.target.resource_type.as_str()).unwrap_or_default());
        let targets = futures::future::join_all(step.targets.iter().map(|planned| async {
            let _permit = semaphore.acquire().await.expect("semaphore is never closed");
            match &action {
                Some(action) => self.apply_target(context, journal, step, planned, action.as_ref(), evidence).await,
                None => Ok(target_report(planned, TargetOutcome::Failed, Some("no provider offers this action any more".into()))),
            }
        }))
        .await;
        Ok(StepReport { id: step.id.clone(), action: step.action, targets: targets.into_iter().collect::<Result<_, _>>()? })
    }

    async fn apply_target(
        &self,
        context: &CallContext,
        journal: &SharedJournal,
        step: &StepPlan,
        planned: &PlannedTarget,
        action: &dyn Action,
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

        // Drift check: every subject must still hold what the plan saw, before anything changes.
        let mut in_place = Vec::new();
        for operation in operations {
            let assessment = match action.read(context, target, operation).await {
                Ok(current) => action.assess(operation, &current, None),
                Err(error) => Assessment::Diverged { detail: format!("cannot read {}: {error}", operation.subject) },
            };
            match assessment {
                Assessment::Prior => in_place.push(false),
                Assessment::Applied => in_place.push(true),
                Assessment::Diverged { detail } => {
                    let reason = format!("drift: {detail}; nothing was changed on {target}: run `contain plan` again");
                    tracing::warn!(run_id = %context.run_id, step = %step.id, target = %target, "{reason}");
                    append(journal, Event::StepSkipped { step: step.id.clone(), target: target.clone(), reason: reason.clone() })?;
                    return Ok(target_report(planned, TargetOutcome::Drift, Some(reason)));
                }
            }
        }

        let mut reports: Vec<OperationReport> = operations.iter().map(|op| not_started(op)).collect();
        let mut earlier: Vec<(Operation, Value)> = Vec::new();
        for (index, operation) in operations.iter().enumerate() {
            let bound = action.bind(context, operation, &earlier);
            append(journal, Event::StepIntent { step: step.id.clone(), action: step.action, target: target.clone(), operation: bound.clone() })?;

            if in_place[index] {
                let current = action.read(context, target, &bound).await.unwrap_or(Value::Null);
                append(journal, Event::StepApplied { step: step.id.clone(), target: target.clone(), operation_id: bound.id.clone(), applied: current.clone(), already_in_place: true })?;
                reports[index].outcome = OperationOutcome::AlreadyInPlace;
                earlier.push((bound, current));
                continue;
            }

            match action.apply(context, target, &bound).await {
                Ok(applied) => {
                    let kept = applied["evidence"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_string));
                    evidence.lock().expect("evidence lock").extend(kept);
                    append(journal, Event::StepApplied { step: step.id.clone(), target: target.clone(), operation_id: bound.id.clone(), applied: applied.clone(), already_in_place: false })?;
                    reports[index].outcome = OperationOutcome::Applied;
                    earlier.push((bound, applied));
                }
                Err(error) => {
                    // Whether the failed call left a change decides whether rollback must revert it.
                    let changed = match action.read(context, target, &bound).await {
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
                    })?;
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
