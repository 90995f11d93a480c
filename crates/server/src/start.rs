//! Starting runs and rollbacks. Both respond 202 with the run id at once and work in the
//! background. `GET /v1/runs/{id}` shows their progress.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use contain_engine::{EngineError, Plan, StartedRun};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::playbooks;
use crate::tokens::Principal;

/// The longest `Idempotency-Key` accepted.
const MAX_KEY_LENGTH: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunRequest {
    /// A plan made with `POST /v1/plans`, or else a playbook and inputs to plan first.
    plan_id: Option<String>,
    playbook: Option<String>,
    #[serde(default)]
    inputs: Map<String, Value>,
}

/// `POST /v1/runs`.
pub(crate) async fn run(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(request) = body.map_err(|rejection| ApiError::invalid(format!("invalid request body: {}", rejection.body_text())))?;
    let key = match headers.get("idempotency-key") {
        Some(value) => {
            let key = value.to_str().ok().filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LENGTH).ok_or_else(|| {
                ApiError::invalid(format!("invalid Idempotency-Key: it must be 1 to {MAX_KEY_LENGTH} visible ASCII characters"))
            })?;
            Some((principal.name.clone(), key.to_string()))
        }
        None => None,
    };

    // A retry of the same request gets the same run. The lock is held while the run starts, so
    // two retries racing each other start one run.
    let mut keys = state.idempotency.lock().await;
    if let Some(run_id) = key.as_ref().and_then(|k| keys.get(k)) {
        return Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id, "status": "running", "replayed": true }))));
    }

    let plan = plan_of(&state, &request).await?;
    if plan.approval_required {
        let errors = plan.errors();
        if !errors.is_empty() {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "plan_has_errors", errors.join("; ")));
        }
        let run_id = crate::approvals::request(&state, plan, &principal.name);
        if let Some(key) = key {
            keys.insert(key, run_id.clone());
        }
        return Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id, "status": "awaiting_approval" }))));
    }
    let started = state.engine.begin(plan, contain_engine::new_run_id(), Some(principal.name.clone()), None).await.map_err(start_error)?;
    let run_id = started.run_id().to_string();
    if let Some(key) = key {
        keys.insert(key, run_id.clone());
    }
    drop(keys);

    finish_in_background(&state, started);
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id, "status": "running" }))))
}

/// Converts the error of a run that could not start into an API error.
pub(crate) fn start_error(error: EngineError) -> ApiError {
    match error {
        EngineError::TargetLocked { .. } => ApiError::new(StatusCode::CONFLICT, "target_locked", error.to_string()),
        EngineError::NotExecutable(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "plan_has_errors", error.to_string()),
        other => ApiError::new(StatusCode::BAD_GATEWAY, "cloud_error", other.to_string()),
    }
}

/// Applies a started run on a task of its own.
pub(crate) fn finish_in_background(state: &AppState, started: StartedRun) {
    let engine = state.engine.clone();
    let webhooks = state.webhooks.clone();
    let id = started.run_id().to_string();
    tokio::spawn(async move {
        match engine.finish(started).await {
            Ok(report) => {
                tracing::info!(run_id = %id, status = %report.status, "run finished");
                let event = if report.status == contain_engine::RunStatus::RolledBack { "run.rolled_back" } else { "run.finished" };
                webhooks.notify(event, &id, json!({ "status": report.status }));
            }
            Err(error) => tracing::error!(run_id = %id, "run failed: {error}"),
        }
    });
}

async fn plan_of(state: &AppState, request: &RunRequest) -> Result<Plan, ApiError> {
    match (&request.plan_id, &request.playbook) {
        (Some(plan_id), None) => {
            let plans = state.plans.lock().expect("plans lock");
            let file = plans.get(plan_id).ok_or_else(|| ApiError::not_found(format!("no plan `{plan_id}`: make one with POST /v1/plans")))?;
            Ok(file.plan.clone())
        }
        (None, Some(name)) => {
            let (playbook, path) = playbooks::load(state, name)?;
            let inputs = playbooks::input_pairs(&request.inputs)?;
            state.engine.plan(&playbook, &path, &inputs).await.map_err(|error| match error {
                EngineError::Inputs(_) | EngineError::Target { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", error.to_string()),
                other => ApiError::new(StatusCode::BAD_GATEWAY, "cloud_error", other.to_string()),
            })
        }
        _ => Err(ApiError::invalid("give either `plan_id` or `playbook` (with `inputs`), not both")),
    }
}

/// `POST /v1/runs/{id}/rollback`.
pub(crate) async fn rollback(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::runs::checked(&state, &id)?;
    if contain_journal::is_locked(state.engine.state_dir(), &id) {
        return Err(ApiError::new(StatusCode::CONFLICT, "run_busy", format!("run {id} is still running, or being rolled back: wait for it to finish")));
    }
    let engine = state.engine.clone();
    let webhooks = state.webhooks.clone();
    let run_id = id.clone();
    tokio::spawn(async move {
        match engine.rollback(&run_id, false).await {
            Ok(report) => {
                tracing::info!(run_id = %run_id, status = %report.status, "rollback finished");
                webhooks.notify("run.rolled_back", &run_id, json!({ "status": report.status }));
            }
            Err(error) => tracing::error!(run_id = %run_id, "rollback failed: {error}"),
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": id, "status": "rolling_back" }))))
}
