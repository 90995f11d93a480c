//! Text output for responders and reviewers.

use std::fmt::Write;

use contain_engine::{OperationOutcome, Plan, RunReport, RunSummary, TargetOutcome};
use contain_journal::{Event, Record};
use serde_json::Value;

pub fn plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan {} of playbook {} ({})", plan.plan_id, plan.playbook.name, plan.playbook.path);
    let inputs: Vec<String> = plan.inputs.iter().map(|(k, v)| format!("{k}={}", compact(v))).collect();
    let _ = writeln!(out, "Inputs: {}", if inputs.is_empty() { "none".into() } else { inputs.join(", ") });
    let _ = writeln!(out, "On failure: {}", plan.on_failure);
    if plan.allow_self_lockout {
        let _ = writeln!(out, "WARNING: made with --allow-self-lockout: steps may revoke contain's own identity or isolate its own instance");
    }

    let mut targets = 0;
    let mut contained = 0;
    for step in &plan.steps {
        let limit = step.max_targets.map(|m| format!(", at most {m}")).unwrap_or_default();
        let _ = writeln!(out, "\nStep {} ({}): {} target(s){limit}", step.id, step.action, step.targets.len());
        if step.targets.is_empty() {
            let _ = writeln!(out, "  no targets: the step's target resolved to nothing");
        }
        for planned in &step.targets {
            targets += 1;
            let _ = writeln!(out, "  {} [{}]", planned.target, planned.target.resource_type);
            if let Some(error) = &planned.error {
                let _ = writeln!(out, "    ERROR: {error}");
                continue;
            }
            if let Some(reason) = &planned.plan.uncontainable {
                let _ = writeln!(out, "    NOT CONTAINABLE HERE: {reason}");
            } else if planned.plan.operations.is_empty() {
                contained += 1;
            }
            for operation in &planned.plan.operations {
                let marker = if operation.reversible { "~" } else { "! IRREVERSIBLE" };
                let _ = writeln!(out, "    {marker} {}", operation.description);
                let _ = writeln!(out, "        before: {}", compact(&operation.prior));
                let _ = writeln!(out, "        after:  {}", compact(&operation.desired));
            }
            for note in &planned.plan.notes {
                let _ = writeln!(out, "    note: {note}");
            }
            for missing in &planned.plan.missing_permissions {
                let _ = writeln!(out, "    MISSING PERMISSION: {missing}");
            }
        }
    }

    let irreversible: Vec<String> = plan
        .steps
        .iter()
        .flat_map(|step| step.targets.iter().flat_map(move |t| t.plan.operations.iter().filter(|o| !o.reversible).map(move |o| format!("step {}, {}: {}", step.id, t.target, o.description))))
        .collect();
    if !irreversible.is_empty() {
        let _ = writeln!(out, "\nIrreversible changes (rollback cannot undo these; each step allows them with `irreversible: allow`):");
        for line in &irreversible {
            let _ = writeln!(out, "  ! {line}");
        }
    }

    let errors = plan.errors().len();
    let _ = writeln!(
        out,
        "\n{} change(s) on {} target(s); {} already contained; {} target(s) could not be planned.",
        plan.operation_count(),
        targets,
        contained,
        errors
    );
    out
}

pub fn run(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Run {} of playbook {}: {}", report.run_id, report.playbook, report.status);
    for step in &report.steps {
        let _ = writeln!(out, "\nStep {} ({})", step.id, step.action);
        if step.targets.is_empty() {
            let _ = writeln!(out, "  no targets: nothing to do");
        }
        for target in &step.targets {
            let _ = writeln!(out, "  {}: {}", target.target, target_outcome(target.outcome));
            for operation in &target.operations {
                let _ = writeln!(out, "    {:<16} {}", operation_outcome(operation.outcome), operation.description);
                // A refusal concerns the whole target; it is printed once, below.
                if let (Some(error), false) = (&operation.error, operation.outcome == OperationOutcome::RevertRefused) {
                    let _ = writeln!(out, "      error: {error}");
                }
            }
            let shown = target.operations.iter().any(|o| o.error.is_some() && o.outcome != OperationOutcome::RevertRefused);
            if let (Some(error), false) = (&target.error, shown) {
                let _ = writeln!(out, "    {error}");
            }
        }
    }
    if !report.evidence.is_empty() {
        let _ = writeln!(out, "\nEvidence kept: {}", report.evidence.join(", "));
    }
    for note in &report.notes {
        let _ = writeln!(out, "\nNote: {note}");
    }
    let _ = writeln!(out, "\nJournal: {}", report.journal);
    out
}

pub fn runs(summaries: &[RunSummary]) -> String {
    if summaries.is_empty() {
        return "No runs yet.\n".to_string();
    }
    let mut out = format!("{:<36} {:<12} {:<24} {:<30} {}\n", "RUN ID", "STATUS", "STARTED (UTC)", "PLAYBOOK", "USER");
    for run in summaries {
        let started = run.started_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<36} {:<12} {:<24} {:<30} {}",
            run.run_id,
            run.status.to_string(),
            started,
            run.playbook,
            run.local_user.as_deref().unwrap_or("")
        );
        for problem in &run.journal_problems {
            let _ = writeln!(out, "    journal: {problem}");
        }
    }
    out
}

pub fn timeline(summary: &RunSummary, records: &[Record]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Run {} of playbook {}: {}", summary.run_id, summary.playbook, summary.status);
    for record in records {
        let time = record.time.format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let _ = writeln!(out, "{time}  #{:<4} {}", record.seq, describe(&record.event));
    }
    for problem in &summary.journal_problems {
        let _ = writeln!(out, "journal problem: {problem}");
    }
    out
}

fn describe(event: &Event) -> String {
    match event {
        Event::RunStarted { playbook, operator, inputs, .. } => {
            let identities: Vec<&str> = operator.cloud_identities.iter().map(|i| i.principal.as_str()).collect();
            format!(
                "run started: playbook {} by {} ({}), inputs {}",
                playbook.name,
                operator.local_user,
                identities.join(", "),
                compact(&Value::Object(inputs.clone()))
            )
        }
        Event::StepIntent { step, target, operation, .. } => {
            format!("intent   [{step}] {target}: {} (before {})", operation.description, compact(&operation.prior))
        }
        Event::OperationPending { step, target, operation_id, detail } => format!("pending  [{step}] {target}: {operation_id}: {detail}"),
        Event::StepApplied { step, target, operation_id, applied, already_in_place } => {
            let what = if *already_in_place { "already in place" } else { "applied" };
            format!("{what:<8} [{step}] {target}: {operation_id} -> {}", compact(applied))
        }
        Event::StepFailed { step, target, operation_id, error, changed, compensation, .. } => {
            let left = match (changed, compensation) {
                (_, Some(compensation)) => format!("compensated: {compensation}; {}", if *changed { "a change is left" } else { "nothing is left changed" }),
                (true, None) => "left a change".to_string(),
                (false, None) => "nothing changed".to_string(),
            };
            format!("failed   [{step}] {target}: {operation_id}: {error} ({left})")
        }
        Event::Reconciled { step, target, operation_id, decision, detail, observed } => {
            let detail = detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            format!("reconciled [{step}] {target}: {operation_id}: {}{detail} (observed {})", decision.replace('_', " "), compact(observed))
        }
        Event::RunResumed { operator } => format!("run resumed by {}", operator.local_user),
        Event::StepSkipped { step, target, reason } => format!("skipped  [{step}] {target}: {reason}"),
        Event::RollbackStarted { reason, forced, operator } => {
            format!("rollback started by {}: {reason}{}", operator.local_user, if *forced { " (forced)" } else { "" })
        }
        Event::RevertIntent { step, target, operation_id } => format!("revert   [{step}] {target}: {operation_id}"),
        Event::Reverted { step, target, operation_id, already_in_place } => {
            let what = if *already_in_place { "already reverted" } else { "reverted" };
            format!("{what:<8} [{step}] {target}: {operation_id}")
        }
        Event::RevertFailed { step, target, operation_id, error } => format!("revert failed [{step}] {target}: {operation_id}: {error}"),
        Event::RollbackFinished { status } => format!("rollback finished: {status}"),
        Event::RunFinished { status } => format!("run finished: {status}"),
    }
}

fn target_outcome(outcome: TargetOutcome) -> &'static str {
    match outcome {
        TargetOutcome::Contained => "contained",
        TargetOutcome::AlreadyContained => "already contained, nothing changed",
        TargetOutcome::Failed => "FAILED",
        TargetOutcome::Drift => "DRIFT, nothing changed",
        TargetOutcome::Skipped => "skipped",
        TargetOutcome::RolledBack => "rolled back",
        TargetOutcome::RollbackRefused => "ROLLBACK REFUSED",
        TargetOutcome::NothingToRollBack => "nothing to roll back",
        TargetOutcome::NotContainable => "NOT CONTAINABLE, nothing changed",
    }
}

fn operation_outcome(outcome: OperationOutcome) -> &'static str {
    match outcome {
        OperationOutcome::Applied => "applied",
        OperationOutcome::AlreadyInPlace => "already in place",
        OperationOutcome::Failed => "FAILED",
        OperationOutcome::NotStarted => "not started",
        OperationOutcome::Reverted => "reverted",
        OperationOutcome::AlreadyReverted => "already reverted",
        OperationOutcome::RevertFailed => "REVERT FAILED",
        OperationOutcome::RevertRefused => "REFUSED",
        OperationOutcome::Irreversible => "not reversible",
    }
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
