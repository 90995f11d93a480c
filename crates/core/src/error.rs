use std::fmt;

/// The kind of an action error, which decides how the engine reacts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The resource does not exist (any more).
    NotFound,
    /// The caller lacks a permission.
    AccessDenied,
    /// The cloud asked the caller to slow down. Safe to retry later.
    Throttled,
    /// A fault of the cloud or the network. Safe to retry only for calls that are safe to repeat.
    Transient,
    /// The request was refused because contain is planning, not applying.
    DryRunRefused,
    /// The target is not in a state this action can handle.
    Precondition,
    /// The request or options are invalid.
    Invalid,
    /// Any other failure.
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Transient => "transient",
            ErrorKind::DryRunRefused => "dry_run_refused",
            ErrorKind::Precondition => "precondition",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Other => "other",
        };
        f.write_str(name)
    }
}

/// An error of an action, carrying the resource it concerns and the cloud's own error code.
///
/// Providers convert their SDK errors into this type in one place. The message must never
/// contain a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    pub kind: ErrorKind,
    /// The resource the failed call concerned, when known.
    pub resource: Option<String>,
    /// The cloud's error code, such as `InvalidGroup.NotFound`.
    pub code: Option<String>,
    pub message: String,
    /// The part of its own change the action undid before returning the error, if any. The
    /// engine journals it as "failed, compensated".
    pub compensation: Option<String>,
}

impl ActionError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ActionError { kind, resource: None, code: None, message: message.into(), compensation: None }
    }

    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    pub fn with_compensation(mut self, compensation: impl Into<String>) -> Self {
        self.compensation = Some(compensation.into());
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}
