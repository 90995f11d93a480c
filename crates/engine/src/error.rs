use contain_journal::JournalError;

/// Why the engine could not plan, apply or roll back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("invalid input:\n  {}", .0.join("\n  "))]
    Inputs(Vec<String>),
    #[error("step `{step}`: {message}")]
    Target { step: String, message: String },
    #[error("the plan cannot be applied: {0}")]
    NotExecutable(String),
    #[error("the plan file was changed after it was written: its digest is {found}, the file says {expected}; make a new plan with `contain plan`")]
    DigestMismatch { expected: String, found: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{target} is being changed by {holder}: wait for it to finish, or roll it back")]
    TargetLocked { target: String, holder: String },
    #[error("run {run_id} already finished ({status}): there is nothing to resume; plan and run the playbook again to retry what it did not contain")]
    AlreadyFinished { run_id: String, status: String },
    #[error("run {run_id}: {message}")]
    Run { run_id: String, message: String },
    /// A rollback named a step that made no change in the run.
    #[error("run {run_id}: {message}")]
    NoSuchStep { run_id: String, message: String },
}
