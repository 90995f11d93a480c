//! Maps AWS SDK errors to `contain_core` error kinds. Every SDK call of the provider goes through
//! [`map_sdk_error`].

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use contain_core::{ActionError, ErrorKind};

use crate::guard::PlanModeRefusal;

/// Converts an SDK error of `operation` on `resource` into an [`ActionError`].
pub(crate) fn map_sdk_error<E>(operation: &str, resource: &str, error: SdkError<E, HttpResponse>) -> ActionError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    if let Some(refusal) = find_source::<PlanModeRefusal>(&error) {
        return ActionError::new(ErrorKind::DryRunRefused, refusal.to_string()).with_resource(resource);
    }

    let code = error.code().map(str::to_string);
    let detail = error.message().map(str::to_string);
    let status = error.raw_response().map(|r| r.status().as_u16());
    let kind = match (&error, code.as_deref()) {
        // A response whose code is unknown, such as a proxy's 503, is classified by its status.
        (_, Some(code)) if kind_of_code(code) == ErrorKind::Other && status == Some(429) => ErrorKind::Throttled,
        (_, Some(code)) if kind_of_code(code) == ErrorKind::Other && status.is_some_and(|s| s >= 500) => ErrorKind::Transient,
        (_, Some(code)) => kind_of_code(code),
        (_, None) if status == Some(429) => ErrorKind::Throttled,
        // A 503 whose body the client cannot read (a proxy's, or another service's format) is
        // taken as throttling, so it is retried within the throttle budget.
        (_, None) if status == Some(503) => ErrorKind::Throttled,
        (_, None) if status.is_some_and(|s| s >= 500) => ErrorKind::Transient,
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), None) => ErrorKind::Transient,
        (SdkError::ResponseError(_), None) => ErrorKind::Transient,
        _ => ErrorKind::Other,
    };

    let message = match (&code, &detail) {
        (Some(code), Some(detail)) => format!("{operation} on {resource} failed: {code}: {detail}"),
        (Some(code), None) => format!("{operation} on {resource} failed: {code}"),
        _ => format!("{operation} on {resource} failed: {}", error_chain(&error)),
    };
    let mapped = ActionError::new(kind, message).with_resource(resource);
    match code {
        Some(code) => mapped.with_code(code),
        None => mapped,
    }
}

fn kind_of_code(code: &str) -> ErrorKind {
    match code {
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" | "TooManyRequestsException" | "TooManyRequests" | "SlowDown" => ErrorKind::Throttled,
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" | "AuthFailure" => ErrorKind::AccessDenied,
        "InternalError" | "InternalFailure" | "ServiceUnavailable" | "ServiceUnavailableException" | "Unavailable" | "RequestTimeout" => ErrorKind::Transient,
        "IncorrectState" | "IncorrectInstanceState" | "OperationNotPermitted" => ErrorKind::Precondition,
        // IAM says NoSuchEntity, sso-admin ResourceNotFoundException, EC2 *.NotFound.
        "NoSuchEntity" | "NoSuchEntityException" | "ResourceNotFoundException" => ErrorKind::NotFound,
        code if code.ends_with(".NotFound") || code.ends_with("NotFound") => ErrorKind::NotFound,
        code if code.ends_with(".Malformed") || code.starts_with("InvalidParameter") => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    }
}

fn find_source<'e, T: StdError + 'static>(error: &'e (dyn StdError + 'static)) -> Option<&'e T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(err) = current {
        parts.push(err.to_string());
        current = err.source();
    }
    parts.join(": ")
}
