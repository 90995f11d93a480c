//! The state of each operation of a run, as its journal records it: where rollback and resume
//! start from.

use contain_core::{ActionKind, Operation, Target};
use contain_journal::{Event, Record};
use serde_json::Value;

/// One operation as the journal records it.
#[derive(Debug, Clone)]
pub(crate) struct JournaledOperation {
    /// The sequence number of its latest intent.
    pub(crate) seq: u64,
    pub(crate) step: String,
    pub(crate) action: ActionKind,
    pub(crate) target: Target,
    /// The operation as it was bound and journaled.
    pub(crate) operation: Operation,
    pub(crate) state: OperationState,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OperationState {
    /// The intent was journaled but no outcome: the process stopped during the call.
    Uncertain,
    Applied(Value),
    /// The subject already had the desired value; nothing was written.
    AlreadyInPlace(Value),
    FailedUnchanged,
    /// The call failed but left a change.
    FailedChanged,
    /// Reconciled after a crash: the call never took effect.
    NotApplied,
    /// Reconciled after a crash: part of the change took effect, with the value observed.
    Partly(Value),
    /// Reconciled after a crash: the subject has a value the operation does not explain.
    Unknown(Value),
    /// A revert was journaled but no outcome, after the operation had left this value: the
    /// process stopped during the revert.
    Reverting(Value),
    Reverted,
}

impl OperationState {
    /// Returns whether the subject may contain a change of the run's: what a rollback would revert.
    pub(crate) fn may_have_changed(&self) -> bool {
        matches!(
            self,
            OperationState::Uncertain | OperationState::Applied(_) | OperationState::FailedChanged | OperationState::Partly(_) | OperationState::Unknown(_) | OperationState::Reverting(_)
        )
    }
}

impl JournaledOperation {
    pub(crate) fn key(&self) -> (String, String, String) {
        (self.step.clone(), self.target.key(), self.operation.id.clone())
    }
}

/// Lists every operation the journal names, with its latest state, in journal order. An intent
/// written again for the same operation (by resume) replaces the earlier one.
pub(crate) fn journaled_operations(records: &[Record]) -> Vec<JournaledOperation> {
    let mut operations: Vec<JournaledOperation> = Vec::new();
    let find = |operations: &[JournaledOperation], step: &str, target: &Target, id: &str| -> Option<usize> {
        operations.iter().position(|op| op.step == step && &op.target == target && op.operation.id == id)
    };

    for record in records {
        let (step, target, id, state) = match &record.event {
            Event::StepIntent { step, action, target, operation } => {
                let journaled = JournaledOperation {
                    seq: record.seq,
                    step: step.clone(),
                    action: *action,
                    target: target.clone(),
                    operation: operation.clone(),
                    state: OperationState::Uncertain,
                };
                match find(&operations, step, target, &operation.id) {
                    Some(index) => operations[index] = journaled,
                    None => operations.push(journaled),
                }
                continue;
            }
            Event::StepApplied { step, target, operation_id, applied, already_in_place } => {
                let state = if *already_in_place { OperationState::AlreadyInPlace(applied.clone()) } else { OperationState::Applied(applied.clone()) };
                (step, target, operation_id, state)
            }
            Event::StepFailed { step, target, operation_id, changed, .. } => {
                let state = if *changed { OperationState::FailedChanged } else { OperationState::FailedUnchanged };
                (step, target, operation_id, state)
            }
            Event::Reconciled { step, target, operation_id, decision, observed, .. } => {
                let state = match decision.as_str() {
                    "applied" => OperationState::Applied(observed.clone()),
                    "not_applied" => OperationState::NotApplied,
                    "partly_applied" => OperationState::Partly(observed.clone()),
                    _ => OperationState::Unknown(observed.clone()),
                };
                (step, target, operation_id, state)
            }
            Event::RevertIntent { step, target, operation_id } => {
                let Some(index) = find(&operations, step, target, operation_id) else {
                    continue;
                };
                let left = match &operations[index].state {
                    OperationState::Applied(value) | OperationState::Partly(value) | OperationState::Unknown(value) | OperationState::Reverting(value) => value.clone(),
                    _ => operations[index].operation.desired.clone(),
                };
                (step, target, operation_id, OperationState::Reverting(left))
            }
            Event::Reverted { step, target, operation_id, .. } => (step, target, operation_id, OperationState::Reverted),
            _ => continue,
        };
        if let Some(index) = find(&operations, step, target, id) {
            operations[index].state = state;
        }
    }
    operations
}
