//! `contain report`: a run's incident record, in Markdown for people or as one JSON document.
//!
//! The record documents every containment step so that someone who was not involved can follow
//! it later. It lists the header, who ran the run, and each change with the value before and
//! after and what rollback did to it. Then come the evidence kept, the changes that cannot be
//! undone, a timeline and the journal check. A broken hash chain is stated at the top.

use std::fmt::Write;
use std::path::Path;

use anyhow::bail;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::ValueEnum;
use contain_engine::{
    ChangeOutcome, IncidentRecord, OperationRecord, OperatorEntry, OperatorRole, RevertOutcome, Stamp, StepRecord, TargetRecord, decision_text,
    incident_record,
};
use contain_journal::JournalError;
use serde_json::Value;

use crate::{InvalidInput, exit};

/// Values longer than this many characters of compact JSON are shown as an indented JSON block.
const INLINE_VALUE_MAX_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Json,
}

/// Prints the incident record of `run_id` and returns exit status 0, whatever the run's status.
/// A run without a journal is invalid input (2), and a journal that cannot be read is an error (1).
pub fn command(state_dir: &Path, run_id: &str, format: ReportFormat) -> anyhow::Result<u8> {
    let record = match incident_record(state_dir, run_id) {
        Ok(record) => record,
        Err(JournalError::NotFound { path, .. }) => {
            bail!(InvalidInput(format!("run {run_id} has no journal at {}: check the id with `contain runs list`", path.display())))
        }
        Err(error) => return Err(anyhow::Error::new(error).context(format!("cannot read the journal of run {run_id}"))),
    };
    match format {
        ReportFormat::Json => crate::json_out::print_pretty(&record)?,
        ReportFormat::Markdown => print!("{}", markdown(&record)),
    }
    Ok(exit::OK)
}

/// Renders the incident record as Markdown.
pub fn markdown(record: &IncidentRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Incident record: run {}", code(&record.run_id));
    if let Some(broken) = &record.verification.broken {
        let _ = writeln!(
            out,
            "\n> **Journal check: the hash chain is BROKEN at line {}.** {} Lines {} and after are not verified: the timeline lists them marked UNVERIFIED, and every other section leaves them out.",
            broken.line,
            text(&sentence(&broken.message)),
            broken.first_unverified_line
        );
    }

    summary(&mut out, record);
    operators(&mut out, record);
    rollbacks(&mut out, record);
    steps(&mut out, record);
    evidence(&mut out, record);
    irreversible(&mut out, record);
    timeline(&mut out, record);
    journal_check(&mut out, record);
    out
}

fn summary(out: &mut String, record: &IncidentRecord) {
    let _ = writeln!(out, "\n## Summary\n");
    let _ = writeln!(out, "- **Run:** {}", code(&record.run_id));
    match &record.playbook {
        Some(playbook) => {
            let _ = writeln!(out, "- **Playbook:** {}, file {}", text(&playbook.name), code(&playbook.path));
            let _ = writeln!(out, "- **Playbook digest (SHA-256):** {}", code(&playbook.digest));
        }
        None => {
            let _ = writeln!(out, "- **Playbook:** not recorded (no verified `run_started` record)");
        }
    }
    let _ = writeln!(out, "- **Plan digest (SHA-256):** {}", record.plan_digest.as_deref().map(code).unwrap_or_else(|| "not recorded".into()));
    let inputs: Vec<String> = record.inputs.iter().map(|(name, value)| format!("{} = {}", code(name), code(&compact(value)))).collect();
    let _ = writeln!(out, "- **Inputs:** {}", if inputs.is_empty() { "none".to_string() } else { inputs.join("; ") });
    let _ = writeln!(out, "- **On failure:** {}", record.on_failure.as_deref().map(text).unwrap_or_else(|| "not recorded".into()));
    let qualifier = if record.verification.broken.is_some() { " (from the verified records only: see the journal check)" } else { "" };
    let _ = writeln!(out, "- **Final status:** {}{qualifier}", record.status);
    let _ = writeln!(out, "- **Started (UTC):** {}", record.started_at.map(time).unwrap_or_else(|| "not recorded".into()));
    let finished = match record.finished_at {
        Some(at) => time(at),
        None => "not recorded: the verified records hold no `run_finished` or `rollback_finished`".into(),
    };
    let _ = writeln!(out, "- **Finished (UTC):** {finished}");
    let _ = writeln!(out, "- **Duration:** {}", record.duration_ms.map(duration).unwrap_or_else(|| "unknown".into()));
    if let Some(version) = &record.contain_version {
        let _ = writeln!(out, "- **contain version:** {}", text(version));
    }
    let _ = writeln!(out, "- **Journal:** {}", code(&record.journal));
}

fn operators(out: &mut String, record: &IncidentRecord) {
    let _ = writeln!(out, "\n## Who ran it\n");
    if record.operators.is_empty() {
        let _ = writeln!(out, "- **Operator:** none recorded");
    }
    for operator in &record.operators {
        let _ = writeln!(out, "- **{}:** {}", role(operator.role), operator_text(operator));
    }
    let _ = writeln!(out, "- **API principal:** {}", record.api_principal.as_deref().map(code).unwrap_or_else(|| "none recorded".into()));
    let _ = writeln!(out, "- **Approver:** {}", record.approver.as_deref().map(text).unwrap_or_else(|| "none recorded".into()));
}

fn role(role: OperatorRole) -> &'static str {
    match role {
        OperatorRole::StartedRun => "Started the run",
        OperatorRole::ResumedRun => "Resumed the run",
        OperatorRole::StartedRollback => "Started a rollback",
    }
}

fn operator_text(operator: &OperatorEntry) -> String {
    let identities: Vec<String> = operator
        .cloud_identities
        .iter()
        .map(|identity| format!("{} ({} account {})", code(&identity.principal), text(&identity.provider), code(&identity.account)))
        .collect();
    let identities = if identities.is_empty() { "none recorded".to_string() } else { identities.join(", ") };
    format!("local user {} at {} (record {}); cloud identity: {identities}", code(&operator.local_user), time(operator.at.time), operator.at.seq)
}

fn rollbacks(out: &mut String, record: &IncidentRecord) {
    let _ = writeln!(out, "\n## Rollbacks\n");
    if record.rollbacks.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for rollback in &record.rollbacks {
        let forced = if rollback.forced { ", forced (targets changed since the run were reverted too)" } else { "" };
        let finished = match (&rollback.finished, &rollback.status) {
            (Some(at), Some(status)) => format!("finished at {} (record {}): {}", time(at.time), at.seq, text(status)),
            _ => "no `rollback_finished` record: it did not finish".to_string(),
        };
        let _ = writeln!(
            out,
            "- Started at {} (record {}) by {}{forced}: {}. It {finished}.",
            time(rollback.started.time),
            rollback.started.seq,
            code(&rollback.local_user),
            text(&rollback.reason)
        );
    }
}

fn steps(out: &mut String, record: &IncidentRecord) {
    let _ = writeln!(out, "\n## Changes by step and target");
    if record.steps.is_empty() {
        let _ = writeln!(out, "\nThe verified records name no step.");
    }
    for step in &record.steps {
        step_section(out, step);
    }
}

fn step_section(out: &mut String, step: &StepRecord) {
    let action = step.action.map(|a| format!(" ({a})")).unwrap_or_default();
    let _ = writeln!(out, "\n### Step {}{action}", code(&step.id));
    if step.targets.is_empty() {
        let _ = writeln!(out, "\nNo targets: the step's target resolved to nothing.");
    }
    for target in &step.targets {
        target_section(out, target);
    }
}

fn target_section(out: &mut String, target: &TargetRecord) {
    let _ = writeln!(out, "\n#### Target {} ({})\n", code(&target.target.to_string()), text(&target.target.resource_type));
    if let Some(reason) = &target.uncontainable {
        let _ = writeln!(out, "- **Not containable here**, nothing changed: {}", text(reason));
    }
    for skip in &target.skipped {
        let _ = writeln!(out, "- **Skipped** at {} (record {}), nothing changed: {}", time(skip.at.time), skip.at.seq, text(&skip.reason));
    }
    for note in &target.notes {
        let _ = writeln!(out, "- Plan note: {}", text(note));
    }
    if target.operations.is_empty() && target.uncontainable.is_none() {
        let _ = writeln!(out, "- No change was planned for this target.");
    }
    for operation in &target.operations {
        operation_item(out, operation);
    }
}

fn operation_item(out: &mut String, op: &OperationRecord) {
    let irreversible = if op.reversible { "" } else { " (IRREVERSIBLE)" };
    let _ = writeln!(out, "- **{}**{irreversible}: operation {} on {}", text(&op.description), code(&op.id), code(&op.subject));
    value_line(out, "  ", "Before", &op.prior);
    value_line(out, "  ", "Change to", &op.desired);

    if op.outcomes.is_empty() {
        let _ = writeln!(out, "  - Outcome: not started");
    }
    for outcome in &op.outcomes {
        outcome_line(out, outcome);
    }

    let evidence = op.evidence();
    for revert in &op.rollback {
        let _ = writeln!(out, "  - Rollback: {}", revert_text(revert, &evidence));
    }
    if op.rollback.is_empty() {
        if !op.reversible {
            let _ = writeln!(out, "  - Rollback: cannot undo this change, so rollback leaves it");
        } else if left_change(op.outcomes.last()) {
            let _ = writeln!(out, "  - Rollback: not rolled back");
        }
    }
}

fn outcome_line(out: &mut String, outcome: &ChangeOutcome) {
    let at = stamp(outcome.at());
    match outcome {
        ChangeOutcome::NoOutcome { .. } => {
            let _ = writeln!(out, "  - Outcome: no outcome recorded after the intent at {at}: the process stopped during the cloud call, or is still in it");
        }
        ChangeOutcome::Applied { value, .. } => value_line(out, "  ", &format!("Outcome: applied at {at}, leaving"), value),
        ChangeOutcome::AlreadyInPlace { value, .. } => value_line(out, "  ", &format!("Outcome: already in place at {at}, nothing written; value"), value),
        ChangeOutcome::Failed { error, error_code, left_change, compensation, .. } => {
            let code_text = error_code.as_deref().map(|c| format!(" (code {})", code(c))).unwrap_or_default();
            let left = if *left_change { "the failed call left a change" } else { "the failed call changed nothing" };
            let compensated = compensation.as_deref().map(|c| format!(" (the action undid its partial change: {})", text(c))).unwrap_or_default();
            let _ = writeln!(out, "  - Outcome: **FAILED** at {at}: {}{code_text}; {left}{compensated}", code(error));
        }
        ChangeOutcome::Reconciled { decision, detail, observed, .. } => {
            let detail = detail.as_deref().map(|d| format!(" ({})", text(d))).unwrap_or_default();
            let label = format!("Outcome: checked after an interruption at {at}: {} ({}){detail}; observed value", decision_text(decision), code(decision));
            value_line(out, "  ", &label, observed);
        }
    }
}

fn revert_text(revert: &RevertOutcome, evidence: &[String]) -> String {
    let at = stamp(revert.at());
    match revert {
        RevertOutcome::NoOutcome { .. } => format!("revert started at {at}, no outcome recorded: the process stopped during the revert"),
        // The snapshot action's revert keeps what it made: rollback never deletes evidence.
        RevertOutcome::Reverted { .. } if !evidence.is_empty() => {
            let ids: Vec<String> = evidence.iter().map(|id| code(id)).collect();
            format!("reverted at {at}; the evidence stays ({}): rollback never deletes evidence", ids.join(", "))
        }
        RevertOutcome::Reverted { .. } => format!("reverted at {at}"),
        RevertOutcome::AlreadyReverted { .. } => format!("already at its prior value at {at}, nothing written"),
        RevertOutcome::Failed { error, .. } => format!("revert **FAILED** at {at}: {}", code(error)),
        RevertOutcome::Refused { reason, .. } => format!("revert **REFUSED** at {at}, left as it is: {}", text(reason)),
    }
}

/// True when the outcome may have left a change on the subject.
fn left_change(outcome: Option<&ChangeOutcome>) -> bool {
    match outcome {
        Some(ChangeOutcome::Applied { .. } | ChangeOutcome::NoOutcome { .. }) => true,
        Some(ChangeOutcome::Failed { left_change, .. }) => *left_change,
        Some(ChangeOutcome::Reconciled { decision, .. }) => decision != "not_applied",
        Some(ChangeOutcome::AlreadyInPlace { .. }) | None => false,
    }
}

fn evidence(out: &mut String, record: &IncidentRecord) {
    let _ = writeln!(out, "\n## Evidence kept\n");
    if record.evidence.is_empty() {
        let _ = writeln!(out, "None recorded.");
        return;
    }
    for item in &record.evidence {
        let _ = writeln!(
            out,
            "- {}: step {}, target {}, operation {}, recorded at {}",
            code(&item.id),
            code(&item.step),
            code(&item.target.to_string()),
            code(&item.operation_id),
            stamp(item.at)
        );
    }
    let _ = writeln!(out, "\nRollback never deletes evidence: these stay after a rollback.");
}

fn irreversible(out: &mut String, record: &IncidentRecord) {
    let _ = writeln!(out, "\n## Irreversible changes\n");
    if record.irreversible.is_empty() {
        let _ = writeln!(out, "None: the run planned no change that rollback cannot undo.");
        return;
    }
    for change in &record.irreversible {
        let state = match &change.outcome {
            None => "not started".to_string(),
            Some(ChangeOutcome::NoOutcome { at }) => format!("no outcome recorded after the intent at {}", stamp(*at)),
            Some(ChangeOutcome::Applied { at, .. }) => format!("applied at {}", stamp(*at)),
            Some(ChangeOutcome::AlreadyInPlace { at, .. }) => format!("already in place at {}", stamp(*at)),
            Some(ChangeOutcome::Failed { at, left_change, .. }) => {
                format!("failed at {}, {}", stamp(*at), if *left_change { "leaving a change" } else { "changing nothing" })
            }
            Some(ChangeOutcome::Reconciled { at, decision, .. }) => format!("checked after an interruption at {}: {}", stamp(*at), decision_text(decision)),
        };
        let _ = writeln!(
            out,
            "- Step {}, target {}: {} (operation {}): {state}",
            code(&change.step),
            code(&change.target.to_string()),
            text(&change.description),
            code(&change.operation_id)
        );
    }
}

fn timeline(out: &mut String, record: &IncidentRecord) {
    let _ = writeln!(out, "\n## Timeline (UTC)\n");
    for entry in &record.timeline {
        let when = match (entry.time, entry.seq) {
            (Some(at), Some(seq)) => format!("{} #{seq}", code(&time(at))),
            _ => format!("line {}", entry.line),
        };
        let unverified = if entry.verified { "" } else { " **UNVERIFIED:**" };
        let _ = writeln!(out, "- {when}{unverified} {}", text(&entry.text));
    }
    if record.timeline.is_empty() {
        let _ = writeln!(out, "The journal holds no readable record.");
    }
}

fn journal_check(out: &mut String, record: &IncidentRecord) {
    let verification = &record.verification;
    let _ = writeln!(out, "\n## Journal check\n");
    match &verification.broken {
        None => {
            let _ = writeln!(
                out,
                "- **Hash chain:** intact: each of the {} records carries the SHA-256 of the record before it. The chain alone cannot show an edit of the last record.",
                verification.verified_records
            );
        }
        Some(broken) => {
            let _ = writeln!(
                out,
                "- **Hash chain:** BROKEN at line {}: {} The {} records before line {} are verified; the rest are not.",
                broken.line,
                text(&sentence(&broken.message)),
                verification.verified_records,
                broken.first_unverified_line
            );
        }
    }
    let torn = if verification.torn_tail {
        "the last line was written only partly, at a crash, and was ignored"
    } else {
        "none"
    };
    let _ = writeln!(out, "- **Torn last line:** {torn}");
    for problem in &verification.problems {
        let _ = writeln!(out, "- Problem: {}", text(problem));
    }
}

/// Writes `label: value` as a list item, with a long value as an indented JSON block.
fn value_line(out: &mut String, indent: &str, label: &str, value: &Value) {
    let compact = value.to_string();
    if compact.chars().count() <= INLINE_VALUE_MAX_CHARS {
        let _ = writeln!(out, "{indent}- {label}: {}", code(&compact));
        return;
    }
    let pretty = serde_json::to_string_pretty(value).unwrap_or(compact);
    let fence = "`".repeat(longest_backtick_run(&pretty).max(2) + 1);
    let block_indent = format!("{indent}  ");
    let _ = writeln!(out, "{indent}- {label}:\n\n{block_indent}{fence}json");
    for line in pretty.lines() {
        let _ = writeln!(out, "{block_indent}{line}");
    }
    let _ = writeln!(out, "{block_indent}{fence}\n");
}

/// Formats a record's time and number, as `2026-01-01T12:00:00.123Z (record 7)`.
fn stamp(at: Stamp) -> String {
    format!("{} (record {})", time(at.time), at.seq)
}

/// Formats a UTC time in RFC 3339 with milliseconds.
fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Formats a duration, such as `4.250 s`, `2 min 4.250 s` or `1 h 2 min 4.250 s`.
fn duration(ms: i64) -> String {
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = format!("{}.{:03} s", rest / 1000, rest % 1000);
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, _) => format!("{minutes} min {seconds}"),
        _ => format!("{hours} h {minutes} min {seconds}"),
    }
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Capitalizes a message and ends it with a period.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut sentence: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}

/// Wraps `value` in a Markdown code span that shows it literally, whatever backticks it contains.
fn code(value: &str) -> String {
    let value = value.replace('\n', " ");
    let fence = "`".repeat(longest_backtick_run(&value) + 1);
    // CommonMark strips one space from each end of a code span that starts or ends with a backtick.
    if value.starts_with('`') || value.ends_with('`') {
        format!("{fence} {value} {fence}")
    } else {
        format!("{fence}{value}{fence}")
    }
}

fn longest_backtick_run(value: &str) -> usize {
    value.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Escapes text from the journal so that Markdown shows it as written. An underscore between
/// two letters or digits (`on_failure`) cannot start emphasis and is left as it is.
fn text(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut escaped = String::with_capacity(value.len());
    for (index, &c) in chars.iter().enumerate() {
        let inside_word = index > 0
            && chars[index - 1].is_alphanumeric()
            && chars.get(index + 1).is_some_and(|next| next.is_alphanumeric());
        match c {
            '\n' | '\r' => escaped.push(' '),
            '_' if inside_word => escaped.push('_'),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' => {
                escaped.push('\\');
                escaped.push(c);
            }
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
    }

    #[test]
    fn text_escapes_markdown() {
        assert_eq!(text("on_failure"), "on_failure");
        assert_eq!(text("_x_ *y* <z> [l]"), "\\_x\\_ \\*y\\* \\<z\\> \\[l\\]");
        assert_eq!(text("a\nb"), "a b");
    }

    #[test]
    fn durations_read_in_units() {
        assert_eq!(duration(4_250), "4.250 s");
        assert_eq!(duration(124_250), "2 min 4.250 s");
        assert_eq!(duration(3_724_250), "1 h 2 min 4.250 s");
    }
}
