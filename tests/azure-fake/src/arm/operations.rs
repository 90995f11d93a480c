//! Asynchronous ARM operations: a write returns at once, and its change takes
//! effect only when a poll of its `Azure-AsyncOperation` or `Location` URL
//! reports the final status `Succeeded`.

use serde_json::{Value, json};

use std::time::Instant;

use crate::http::{Reply, arm_error};
use crate::limits::{OperationRecord, whole_seconds};
use crate::state::{Change, Operation, Outcome, State};

use super::resources::{NSG_TYPE, nsg_users, stamp};

/// Where an operation's status and result can be polled.
pub(crate) struct OperationUrls {
    pub async_operation: String,
    pub location: String,
}

/// Describes a write whose change waits for its operation to succeed.
pub(crate) struct PendingWrite {
    pub subscription: String,
    pub namespace: String,
    /// Azure region of the resource, such as `westus`.
    pub location: String,
    pub api_version: String,
    pub lock_key: String,
    pub result_key: String,
    pub change: Change,
    pub is_delete: bool,
    /// Path of the request, to match against `fail_operations`.
    pub request_path: String,
}

/// Normalizes a location as ARM writes it in operation URLs: `West US` becomes `westus`.
pub(crate) fn location_slug(location: &str) -> String {
    location
        .chars()
        .filter(|character| !character.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

pub(crate) fn new_etag() -> String {
    format!("W/\"{}\"", uuid::Uuid::new_v4())
}

/// Registers the operation of a write and locks its resource until the operation ends.
pub(crate) fn start(state: &mut State, write: PendingWrite) -> OperationUrls {
    let operation_id = uuid::Uuid::new_v4().to_string();
    let fails = state.take_failing_write(&write.request_path);
    let base = format!(
        "{}/subscriptions/{}/providers/{}/locations/{}",
        state.base_url,
        write.subscription,
        write.namespace,
        location_slug(&write.location)
    );
    let urls = OperationUrls {
        async_operation: format!(
            "{base}/operations/{operation_id}?api-version={}",
            write.api_version
        ),
        location: format!(
            "{base}/operationResults/{operation_id}?api-version={}",
            write.api_version
        ),
    };
    state
        .locks
        .insert(write.lock_key.clone(), operation_id.clone());
    let ends_at = state.limits.as_mut().map(|limits| {
        let duration = limits.operation_duration();
        limits.operations.push(OperationRecord {
            resource: write.lock_key.clone(),
            request_path: crate::http::percent_decode(&write.request_path, false),
            location: location_slug(&write.location),
            started: limits.since.elapsed(),
            duration,
        });
        Instant::now() + duration
    });
    state.operations.insert(
        operation_id,
        Operation {
            polls_left: state.settings.async_polls,
            ends_at,
            change: write.change,
            fails,
            is_delete: write.is_delete,
            lock_key: write.lock_key,
            result_key: write.result_key,
            outcome: None,
        },
    );
    urls
}

/// Returns the error reply for a write to a resource whose operation is still
/// running: 409 `AnotherOperationInProgress`, or in the cloud-limits mode 429
/// `RetryableError` with the detail `RetryableErrorDueToAnotherOperation` and
/// a `Retry-After` of the operation's remaining time.
pub(crate) fn check_lock(state: &State, lock_key: &str, id: &str) -> Result<(), Reply> {
    let Some(operation_id) = state.locks.get(lock_key).cloned() else {
        return Ok(());
    };
    let ends_at = state
        .operations
        .get(&operation_id)
        .and_then(|operation| operation.ends_at);
    let (Some(_), Some(ends_at)) = (&state.limits, ends_at) else {
        return Err(arm_error(
            409,
            "AnotherOperationInProgress",
            format!(
                "Another operation on this or dependent resource is in progress. Resource: {id}, operation: {operation_id}."
            ),
        ));
    };
    let seconds = whole_seconds(ends_at.saturating_duration_since(Instant::now()).as_secs_f64());
    // ARM nests this code under `RetryableError`, as a 2016 azure-sdk-for-python bug report recorded it.
    let body = json!({ "error": {
        "code": "RetryableError",
        "message": "A retryable error occurred.",
        "details": [{
            "code": "RetryableErrorDueToAnotherOperation",
            "message": format!("Operation {operation_id} is updating resource {id}. The call can be retried in {seconds} seconds.")
        }]
    } });
    Err(Reply::json(429, body).with_header("Retry-After", seconds.to_string()))
}

/// Ends every operation whose time is up, in the cloud-limits mode, so that
/// reads and locks see its change even when no client polled it.
pub(crate) fn settle_due(state: &mut State) {
    let now = Instant::now();
    let due: Vec<String> = state
        .operations
        .iter()
        .filter(|(_, operation)| operation.outcome.is_none() && operation.ends_at.is_some_and(|ends_at| ends_at <= now))
        .map(|(operation_id, _)| operation_id.clone())
        .collect();
    for operation_id in due {
        finish(state, &operation_id);
    }
}

enum Progress {
    InProgress,
    Done(Outcome),
}

/// Counts one poll, and ends the operation once its in-progress polls are used up.
fn poll(state: &mut State, operation_id: &str) -> Option<Progress> {
    let operation = state.operations.get_mut(operation_id)?;
    if let Some(outcome) = &operation.outcome {
        return Some(Progress::Done(outcome.clone()));
    }
    match operation.ends_at {
        Some(ends_at) if Instant::now() < ends_at => return Some(Progress::InProgress),
        Some(_) => {}
        None if operation.polls_left > 0 => {
            operation.polls_left -= 1;
            return Some(Progress::InProgress);
        }
        None => {}
    }
    Some(Progress::Done(finish(state, operation_id)))
}

/// Ends an operation: checks its change again, unlocks its resource and commits the change when it succeeded.
fn finish(state: &mut State, operation_id: &str) -> Outcome {
    let operation = state.operations.get(operation_id).expect("the caller found the operation");
    let change = operation.change.clone();
    let outcome = if operation.fails {
        Outcome::Failed {
            code: "InternalServerError".to_string(),
            message: format!(
                "The operation {operation_id} failed because fail_operations asked the fake to fail it."
            ),
        }
    } else {
        check_still_allowed(&state.arm, &change)
    };
    let operation = state.operations.get_mut(operation_id).expect("found above");
    operation.outcome = Some(outcome.clone());
    let lock_key = operation.lock_key.clone();
    state.locks.remove(&lock_key);
    if outcome == Outcome::Succeeded {
        commit(state, change);
    }
    outcome
}

/// Checks a change again when its operation ends, because other resources may
/// have changed while it ran: an NSG whose delete was accepted may since have
/// been attached to a NIC or subnet.
fn check_still_allowed(
    arm: &std::collections::BTreeMap<String, Value>,
    change: &Change,
) -> Outcome {
    let Change::Delete { key } = change else {
        return Outcome::Succeeded;
    };
    let Some(body) = arm.get(key) else {
        return Outcome::Succeeded;
    };
    let is_nsg = body
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.eq_ignore_ascii_case(NSG_TYPE));
    let id = body.get("id").and_then(Value::as_str).unwrap_or(key);
    let (nics, subnets) = nsg_users(arm, id);
    if !is_nsg || (nics.is_empty() && subnets.is_empty()) {
        return Outcome::Succeeded;
    }
    let users: Vec<String> = nics.into_iter().chain(subnets).collect();
    Outcome::Failed {
        code: "InUseNetworkSecurityGroupCannotBeDeleted".to_string(),
        message: format!(
            "Network security group {id} cannot be deleted because it is in use by the following resources: {}.",
            users.join(", ")
        ),
    }
}

/// Applies a change with a new etag, as ARM does when an operation succeeds.
pub(crate) fn commit(state: &mut State, change: Change) {
    match change {
        Change::Put { key, mut body } => {
            stamp(&mut body, &new_etag(), "Succeeded");
            state.arm.insert(key, body);
        }
        Change::Delete { key } => {
            state.arm.remove(&key);
        }
    }
}

fn not_found(operation_id: &str) -> Reply {
    arm_error(
        404,
        "OperationNotFound",
        format!("The operation {operation_id} was not found."),
    )
}

fn failed_error(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

/// Handles `GET .../operations/{id}` with `{"status": ...}`.
pub(crate) fn status(state: &mut State, operation_id: &str) -> Reply {
    let retry_after = state.operation_retry_after().to_string();
    match poll(state, operation_id) {
        None => not_found(operation_id),
        Some(Progress::InProgress) => Reply::json(200, json!({ "status": "InProgress" }))
            .with_header("Retry-After", retry_after),
        Some(Progress::Done(Outcome::Succeeded)) => {
            Reply::json(200, json!({ "status": "Succeeded" }))
        }
        Some(Progress::Done(Outcome::Failed { code, message })) => Reply::json(
            200,
            json!({ "status": "Failed", "error": failed_error(&code, &message) }),
        ),
    }
}

/// Handles `GET .../operationResults/{id}`: 202 while in progress, then the
/// result (200 with the resource, or 204 after a delete), or the error.
pub(crate) fn result(state: &mut State, operation_id: &str, own_url: String) -> Reply {
    let retry_after = state.operation_retry_after().to_string();
    match poll(state, operation_id) {
        None => not_found(operation_id),
        Some(Progress::InProgress) => Reply::empty(202)
            .with_header("Location", own_url)
            .with_header("Retry-After", retry_after),
        Some(Progress::Done(Outcome::Failed { code, message })) => {
            Reply::json(500, json!({ "error": failed_error(&code, &message) }))
        }
        Some(Progress::Done(Outcome::Succeeded)) => {
            let operation = &state.operations[operation_id];
            if operation.is_delete {
                return Reply::empty(204);
            }
            match state.arm.get(&operation.result_key) {
                Some(stored) => Reply::json(200, super::resources::view(&state.arm, stored)),
                None => Reply::empty(204),
            }
        }
    }
}
