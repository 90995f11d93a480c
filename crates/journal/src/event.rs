use chrono::{DateTime, Utc};
use contain_core::{ActionKind, CallerIdentity, Operation, Target};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub prev: String,
    pub run_id: String,
    #[serde(flatten)]
    pub event: Event,
}

/// The playbook a run came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookInfo {
    pub name: String,
    pub path: String,
    /// SHA-256 of the playbook source.
    pub digest: String,
}

/// Who started a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operator {
    /// The local user name, from the environment.
    pub local_user: String,
    /// The identities the providers' credentials resolve to.
    pub cloud_identities: Vec<CallerIdentity>,
    /// The API principal that asked for it, when it came through `contain serve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_principal: Option<String>,
    /// The API principal that approved the run, when its playbook requires approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

/// What a record says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        playbook: PlaybookInfo,
        /// SHA-256 of the plan that the run executes.
        plan_digest: String,
        inputs: Map<String, Value>,
        on_failure: String,
        operator: Operator,
        contain_version: String,
        /// The plan the run executes, as the engine serializes it, so that `contain resume`
        /// can finish the run from the journal alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan: Option<crate::PlanJson>,
    },
    /// An interrupted run is being finished by `contain resume`.
    RunResumed {
        operator: Operator,
    },
    /// Written and synced before the cloud call that makes the change.
    StepIntent {
        step: String,
        action: ActionKind,
        target: Target,
        operation: Operation,
    },
    /// Written while a change is under way, when the action learns something a crash must not
    /// lose: the URL of the long-running operation that carries the change, for example.
    OperationPending {
        step: String,
        target: Target,
        operation_id: String,
        detail: String,
    },
    StepApplied {
        step: String,
        target: Target,
        operation_id: String,
        /// The value the change left, which revert compares with and restores from.
        applied: Value,
        /// True when the subject already had the desired value and nothing was written.
        #[serde(default)]
        already_in_place: bool,
    },
    StepFailed {
        step: String,
        target: Target,
        operation_id: String,
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
        /// False when the failed call left nothing changed.
        changed: bool,
        /// The part of its own change the action undid: the step failed, compensated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compensation: Option<String>,
    },
    /// The decision about an intent without an outcome (the process stopped during its cloud
    /// call), made by reading the subject again.
    Reconciled {
        step: String,
        target: Target,
        operation_id: String,
        /// `applied`, `not_applied`, `partly_applied` or `unknown`.
        decision: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// The subject's value that the decision rests on: the evidence.
        observed: Value,
    },
    /// A target that was not changed, for example because it drifted since the plan.
    StepSkipped {
        step: String,
        target: Target,
        reason: String,
    },
    RollbackStarted {
        reason: String,
        forced: bool,
        operator: Operator,
    },
    RevertIntent {
        step: String,
        target: Target,
        operation_id: String,
    },
    Reverted {
        step: String,
        target: Target,
        operation_id: String,
        /// True when the subject already had its prior value and nothing was written.
        #[serde(default)]
        already_in_place: bool,
    },
    RevertFailed {
        step: String,
        target: Target,
        operation_id: String,
        error: String,
    },
    RollbackFinished {
        status: String,
    },
    RunFinished {
        status: String,
    },
}
