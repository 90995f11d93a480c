//! What a run reports: its status and the outcome per step, target and operation.

use std::fmt;

use contain_core::{ActionKind, Target};
use serde::{Deserialize, Serialize};

/// The status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Planned,
    Running,
    Succeeded,
    /// Some changes were applied and some failed or were refused; what was applied stays.
    Partial,
    /// Nothing was changed, and something failed.
    Failed,
    RolledBack,
    /// The changes of some steps were rolled back; those of the others stay.
    PartlyRolledBack,
    /// Found unfinished: the process that ran it stopped before writing the end of the run.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Planned => "planned",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::RolledBack => "rolled_back",
            RunStatus::PartlyRolledBack => "partly_rolled_back",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(value: &str) -> Option<RunStatus> {
        [
            RunStatus::Planned,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Partial,
            RunStatus::Failed,
            RunStatus::RolledBack,
            RunStatus::PartlyRolledBack,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetOutcome {
    /// Every operation was applied.
    Contained,
    /// The plan found nothing to do.
    AlreadyContained,
    /// An operation failed; the operations before it stay applied unless rolled back.
    Failed,
    /// The target changed since the plan; nothing was changed on it.
    Drift,
    /// Not started, because the run halted or a step it needs failed.
    Skipped,
    /// Every change this run made on it was reverted.
    RolledBack,
    /// Rollback refused it because someone changed it since the run, or a revert failed.
    RollbackRefused,
    /// Nothing of this run was left to revert on it.
    NothingToRollBack,
    /// The action cannot contain this target (the plan said why); nothing was changed on it.
    NotContainable,
}

/// The outcome of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationOutcome {
    Applied,
    /// The subject already had the desired value; nothing was written.
    AlreadyInPlace,
    Failed,
    NotStarted,
    Reverted,
    /// The subject already had its prior value; nothing was written.
    AlreadyReverted,
    RevertFailed,
    RevertRefused,
    /// The change cannot be undone (the plan marked it irreversible); rollback left it.
    Irreversible,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationReport {
    pub id: String,
    pub description: String,
    pub outcome: OperationOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    pub target: Target,
    pub outcome: TargetOutcome,
    pub operations: Vec<OperationReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub id: String,
    pub action: ActionKind,
    pub targets: Vec<TargetReport>,
}

/// The result of `apply`, `run` or `rollback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub status: RunStatus,
    pub playbook: String,
    pub steps: Vec<StepReport>,
    pub journal: String,
    /// Facts for the responder, such as why the run was rolled back.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Evidence the run kept, such as snapshot ids. Rollback never deletes it.
    #[serde(default)]
    pub evidence: Vec<String>,
}
