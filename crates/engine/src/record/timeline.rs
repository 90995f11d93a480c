//! The timeline of an incident record: every journal line as one sentence for a reader who was
//! not involved.

use std::collections::BTreeMap;

use contain_core::Target;
use contain_journal::{Event, Operator, Record};
use serde_json::Value;

use super::{TimelineEntry, evidence_ids};

/// Builds one entry per line: the verified records, then the lines from the break on.
pub(super) fn build_timeline(verified: &[Record], unverified: &[(usize, Result<Record, String>)]) -> Vec<TimelineEntry> {
    let readable = verified.iter().chain(unverified.iter().filter_map(|(_, r)| r.as_ref().ok()));
    let known = KnownOperations::from_records(readable);
    let entry = |line: usize, record: &Record, verified: bool| TimelineEntry {
        line,
        seq: Some(record.seq),
        time: Some(record.time),
        kind: Some(event_kind(&record.event)),
        text: describe(&record.event, &known),
        verified,
    };

    let mut timeline: Vec<TimelineEntry> = verified.iter().enumerate().map(|(index, r)| entry(index + 1, r, true)).collect();
    for (line, parsed) in unverified {
        timeline.push(match parsed {
            Ok(record) => entry(*line, record, false),
            Err(error) => TimelineEntry { line: *line, seq: None, time: None, kind: None, text: format!("unreadable line: {error}"), verified: false },
        });
    }
    timeline
}

/// Returns the `kind` field of a record.
fn event_kind(event: &Event) -> String {
    serde_json::to_value(event).ok().and_then(|v| v["kind"].as_str().map(str::to_string)).unwrap_or_default()
}

/// Operation facts from the journal, by (step, target key, operation id), for the records
/// that name an operation by its id only.
#[derive(Default)]
struct KnownOperations {
    descriptions: BTreeMap<(String, String, String), String>,
    /// Evidence ids that the operation's `step_applied` records list.
    evidence: BTreeMap<(String, String, String), Vec<String>>,
}

impl KnownOperations {
    fn from_records<'r>(records: impl Iterator<Item = &'r Record>) -> KnownOperations {
        let mut known = KnownOperations::default();
        for record in records {
            match &record.event {
                Event::StepIntent { step, target, operation, .. } => {
                    known.descriptions.insert((step.clone(), target.key(), operation.id.clone()), operation.description.clone());
                }
                Event::StepApplied { step, target, operation_id, applied, .. } => {
                    known.evidence.entry((step.clone(), target.key(), operation_id.clone())).or_default().extend(evidence_ids(applied));
                }
                _ => {}
            }
        }
        known
    }

    fn description(&self, step: &str, target: &Target, id: &str) -> String {
        let key = (step.to_string(), target.key(), id.to_string());
        self.descriptions.get(&key).cloned().unwrap_or_else(|| format!("operation {id}"))
    }

    fn evidence(&self, step: &str, target: &Target, id: &str) -> &[String] {
        self.evidence.get(&(step.to_string(), target.key(), id.to_string())).map_or(&[], Vec::as_slice)
    }
}

/// Describes a record in one sentence for a reader who was not involved.
fn describe(event: &Event, known: &KnownOperations) -> String {
    let change = |step: &str, target: &Target, id: &str| known.description(step, target, id);
    match event {
        Event::RunStarted { playbook, operator, inputs, on_failure, .. } => {
            let inputs: Vec<String> = inputs.iter().map(|(name, value)| format!("{name}={}", compact(value))).collect();
            format!(
                "Run started by {} from playbook {}, inputs {}; on failure: {on_failure}.",
                who(operator),
                playbook.name,
                if inputs.is_empty() { "none".to_string() } else { inputs.join(", ") }
            )
        }
        Event::RunResumed { operator } => format!("Run resumed by {}.", who(operator)),
        Event::StepIntent { step, target, operation, .. } => {
            format!("Step {step}, {target}: about to {}; the value before is recorded.", operation.description)
        }
        Event::OperationPending { step, target, operation_id, detail } => {
            format!("Step {step}, {target}: under way: {}: {detail}.", change(step, target, operation_id))
        }
        Event::StepApplied { step, target, operation_id, already_in_place: false, .. } => {
            format!("Step {step}, {target}: applied: {}.", change(step, target, operation_id))
        }
        Event::StepApplied { step, target, operation_id, already_in_place: true, .. } => {
            format!("Step {step}, {target}: already in place, nothing written: {}.", change(step, target, operation_id))
        }
        Event::StepFailed { step, target, operation_id, error, error_code, changed, compensation } => {
            let code = error_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
            let left = if *changed { "the failed call left a change" } else { "the failed call changed nothing" };
            let compensated = compensation.as_deref().map(|c| format!(" (the action undid its partial change: {c})")).unwrap_or_default();
            format!("Step {step}, {target}: FAILED: {}: {error}{code}; {left}{compensated}.", change(step, target, operation_id))
        }
        Event::Reconciled { step, target, operation_id, decision, detail, .. } => {
            let detail = detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            format!("Step {step}, {target}: checked after an interruption: {}: {}{detail}.", change(step, target, operation_id), decision_text(decision))
        }
        Event::StepSkipped { step, target, reason } => format!("Step {step}, {target}: skipped, nothing changed: {reason}."),
        Event::RollbackStarted { reason, forced, operator } => {
            let forced = if *forced { " (forced: targets changed since the run are reverted too)" } else { "" };
            format!("Rollback started by {}: {reason}{forced}.", who(operator))
        }
        Event::RevertIntent { step, target, operation_id } => {
            format!("Step {step}, {target}: about to revert: {}.", change(step, target, operation_id))
        }
        Event::Reverted { step, target, operation_id, already_in_place: false } => {
            // The snapshot action's revert keeps the snapshot: rollback never deletes evidence.
            let evidence = known.evidence(step, target, operation_id);
            let evidence_note = if evidence.is_empty() { String::new() } else { format!(" (the evidence stays: {})", evidence.join(", ")) };
            format!("Step {step}, {target}: reverted{evidence_note}: {}.", change(step, target, operation_id))
        }
        Event::Reverted { step, target, operation_id, already_in_place: true } => {
            format!("Step {step}, {target}: already at its prior value, nothing written: {}.", change(step, target, operation_id))
        }
        Event::RevertFailed { step, target, operation_id, error } => match error.strip_prefix("refused: ") {
            Some(reason) => format!("Step {step}, {target}: revert REFUSED, left as it is: {}: {reason}.", change(step, target, operation_id)),
            None => format!("Step {step}, {target}: revert FAILED: {}: {error}.", change(step, target, operation_id)),
        },
        Event::RollbackFinished { status } => format!("Rollback finished: {status}."),
        Event::RunFinished { status } => format!("Run finished: {status}."),
    }
}

/// Formats the local user and cloud identities of an operator, such as
/// `alice (arn:aws:iam::…:user/alice)`.
fn who(operator: &Operator) -> String {
    let identities: Vec<&str> = operator.cloud_identities.iter().map(|i| i.principal.as_str()).collect();
    if identities.is_empty() {
        operator.local_user.clone()
    } else {
        format!("{} ({})", operator.local_user, identities.join(", "))
    }
}

/// Explains a reconciliation decision in words.
pub fn decision_text(decision: &str) -> &'static str {
    match decision {
        "applied" => "the change had taken effect",
        "not_applied" => "the change had not taken effect",
        "partly_applied" => "the change had partly taken effect",
        _ => "the subject holds a value that the change does not explain",
    }
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
