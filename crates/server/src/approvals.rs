//! Runs of playbooks marked `approval: required`: they wait after planning until a principal
//! with the approver role, other than the one who asked (two-person rule), approves them.
//!
//! Waiting and rejected runs are kept on disk ([`crate::persist`]), so they outlive a restart of
//! the server. A run's journal starts when it is approved.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use contain_engine::Plan;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::tokens::Principal;

/// The directory of the waiting and rejected runs, under the state directory.
const KIND: &str = "pending";

/// A run waiting for approval, or rejected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub run_id: String,
    /// `awaiting_approval` or `rejected`.
    pub status: String,
    pub playbook: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_by: Option<String>,
    pub plan: Plan,
}

impl Pending {
    /// Returns the run as the API shows it: without the plan, which `POST /v1/plans` returned.
    pub(crate) fn public(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("pending runs serialize");
        if let Some(object) = value.as_object_mut() {
            object.remove("plan");
        }
        value
    }
}

/// Loads the waiting and rejected runs a previous server process left.
pub(crate) fn load(state_dir: &std::path::Path) -> std::collections::HashMap<String, Pending> {
    crate::persist::read_all::<Pending>(&crate::persist::dir(state_dir, KIND)).into_iter().map(|p| (p.run_id.clone(), p)).collect()
}

/// Writes a waiting or rejected run to disk, or removes it once it started.
fn store(state: &AppState, run_id: &str, pending: Option<&Pending>) -> Result<(), ApiError> {
    let dir = crate::persist::dir(state.engine.state_dir(), KIND);
    let name = format!("{run_id}.json");
    let written = match pending {
        Some(pending) => crate::persist::write(&dir, &name, pending),
        None => crate::persist::remove(&dir, &name),
    };
    written.map_err(|e| {
        tracing::error!(run_id, "cannot write the approval state to {}: {e}", dir.display());
        ApiError::internal(format!("cannot write the approval state of {run_id} to {}: {e}", dir.display()))
    })
}

/// Records a run that waits for approval and returns its id.
pub(crate) fn request(state: &AppState, plan: Plan, requested_by: &str) -> Result<String, ApiError> {
    let run_id = contain_engine::new_run_id();
    let pending = Pending {
        run_id: run_id.clone(),
        status: "awaiting_approval".to_string(),
        playbook: plan.playbook.name.clone(),
        requested_by: requested_by.to_string(),
        requested_at: Utc::now(),
        rejected_by: None,
        plan,
    };
    store(state, &run_id, Some(&pending))?;
    tracing::info!(run_id = %run_id, requested_by, "run awaits approval");
    state.webhooks.notify("run.awaiting_approval", &run_id, json!({ "playbook": pending.playbook, "requested_by": requested_by }));
    state.pending.lock().expect("pending lock").insert(run_id.clone(), pending);
    Ok(run_id)
}

/// Returns the waiting or rejected run with this id, if there is one.
pub(crate) fn find(state: &AppState, run_id: &str) -> Option<Pending> {
    state.pending.lock().expect("pending lock").get(run_id).cloned()
}

/// Takes the run out of the waiting list when `principal` may decide on it.
fn take(state: &AppState, run_id: &str, principal: &Principal) -> Result<Pending, ApiError> {
    if !contain_journal::is_valid_run_id(run_id) {
        return Err(ApiError::invalid(format!("invalid run id `{run_id}`: run ids hold letters, digits, `-`, `_` and `.`")));
    }
    let mut pending = state.pending.lock().expect("pending lock");
    let Some(found) = pending.get(run_id) else {
        if contain_journal::journal_path(state.engine.state_dir(), run_id).exists() {
            return Err(ApiError::new(StatusCode::CONFLICT, "not_awaiting_approval", format!("run {run_id} has already started: only runs awaiting approval are approved or rejected")));
        }
        return Err(ApiError::not_found(format!("no run `{run_id}` awaits approval")));
    };
    if found.status != "awaiting_approval" {
        return Err(ApiError::new(StatusCode::CONFLICT, "not_awaiting_approval", format!("run {run_id} is {}", found.status)));
    }
    if found.requested_by == principal.name {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "two_person_rule",
            format!("{} asked for run {run_id}, so another approver must decide on it (two-person rule)", principal.name),
        ));
    }
    Ok(pending.remove(run_id).expect("found above"))
}

/// Approves a run that awaits approval and starts it; its journal names requester and approver.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/approve",
    operation_id = "approveRun",
    tag = "runs",
    description = "Role: approver, other than the principal who asked for the run (two-person rule).",
    params(("id" = String, Path, description = "The run id from `POST /v1/runs`.", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "`run_id`, `status: running` and `approved_by`.", body = Value),
        (status = 400, description = "The run id is invalid.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the approver role, or asked for this run itself (`two_person_rule`).", body = crate::openapi::ErrorBody),
        (status = 404, description = "No run with this id awaits approval.", body = crate::openapi::ErrorBody),
        (status = 409, description = "The run was already decided on, or has started.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn approve(State(state): State<Arc<AppState>>, Extension(principal): Extension<Principal>, Path(id): Path<String>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let pending = take(&state, &id, &principal)?;
    let started = crate::start::start_detached(&state, pending.plan.clone(), id.clone(), pending.requested_by.clone(), Some(principal.name.clone())).await;
    if let Err(error) = started {
        // The run did not start: it waits again, for another try.
        tracing::warn!(run_id = %id, "the approved run did not start: {}", error.message);
        state.pending.lock().expect("pending lock").insert(id.clone(), pending);
        return Err(error);
    }
    // The journal has begun, and names the approver: the waiting entry is done with.
    if let Err(error) = store(&state, &id, None) {
        tracing::warn!(run_id = %id, "the started run stays in the approval state directory: {}", error.message);
    }
    tracing::info!(run_id = %id, approved_by = %principal.name, "run approved");
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": id, "status": "running", "approved_by": principal.name }))))
}

/// Rejects a run that awaits approval: it never starts.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/reject",
    operation_id = "rejectRun",
    tag = "runs",
    description = "Role: approver, other than the principal who asked for the run (two-person rule).",
    params(("id" = String, Path, description = "The run id from `POST /v1/runs`.", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run, now `rejected`, with `rejected_by`.", body = Value),
        (status = 400, description = "The run id is invalid.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the approver role, or asked for this run itself (`two_person_rule`).", body = crate::openapi::ErrorBody),
        (status = 404, description = "No run with this id awaits approval.", body = crate::openapi::ErrorBody),
        (status = 409, description = "The run was already decided on, or has started.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn reject(State(state): State<Arc<AppState>>, Extension(principal): Extension<Principal>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let waiting = take(&state, &id, &principal)?;
    let mut pending = waiting.clone();
    pending.status = "rejected".to_string();
    pending.rejected_by = Some(principal.name.clone());
    if let Err(error) = store(&state, &id, Some(&pending)) {
        state.pending.lock().expect("pending lock").insert(id.clone(), waiting);
        return Err(error);
    }
    tracing::info!(run_id = %id, rejected_by = %principal.name, "run rejected");
    state.pending.lock().expect("pending lock").insert(id, pending.clone());
    Ok(Json(pending.public()))
}
