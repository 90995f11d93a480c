//! Starting runs and rollbacks. Both respond 202 with the run id at once and work in the
//! background. `GET /v1/runs/{id}` shows their progress.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use contain_engine::{EngineError, Plan, RollbackOptions, StartedRun};
use serde::Deserialize;
use sha2::Digest;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::playbooks;
use crate::tokens::Principal;

/// The longest `Idempotency-Key` accepted.
const MAX_KEY_LENGTH: usize = 200;

/// A plan made with `POST /v1/plans`, or else a playbook and inputs to plan first. The API
/// documents it as [`RunBody`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunRequest {
    plan_id: Option<String>,
    playbook: Option<String>,
    #[serde(default)]
    inputs: Map<String, Value>,
}

/// The body of `POST /v1/runs`, as the API documents it: a plan id, or a playbook with inputs.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum RunBody {
    /// Runs a plan made with `POST /v1/plans`.
    #[schema(title = "plan")]
    Plan(PlanReference),
    /// Plans a playbook with inputs, then runs the plan.
    #[schema(title = "playbook")]
    Playbook(PlaybookRun),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct PlanReference {
    /// The `plan_id` of `POST /v1/plans`.
    #[schema(pattern = "^plan-[A-Za-z0-9-]+$")]
    plan_id: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct PlaybookRun {
    /// The playbook's path under the playbooks directory, without `.yaml`.
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")]
    playbook: String,
    /// The playbook's inputs by name: strings, or lists of strings for list inputs.
    #[schema(value_type = Object)]
    inputs: Option<Map<String, Value>>,
}

/// The optional body of a rollback.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackRequest {
    /// Roll back only these steps' changes, by step id; every step when left out.
    steps: Option<Vec<String>>,
    /// Revert targets that someone changed since the run too, restoring the state before it.
    #[serde(default)]
    force: bool,
}

/// Starts a run of a plan, or of a playbook with inputs (planned first). A playbook marked
/// `approval: required` waits in `awaiting_approval` instead.
#[utoipa::path(
    post,
    path = "/v1/runs",
    operation_id = "startRun",
    tag = "runs",
    description = "Role: responder. Answers at once with the run id; `GET /v1/runs/{id}` follows the run.",
    request_body = RunBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key, by the same principal, return the same run.", min_length = 1, max_length = 200, pattern = "^[!-~]([ -~]*[!-~])?$")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "`run_id` and `status` (`running` or `awaiting_approval`); `replayed` when an Idempotency-Key matched.", body = Value),
        (status = 400, description = "The request names a bad value.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the role.", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such plan or playbook.", body = crate::openapi::ErrorBody),
        (status = 409, description = "Another unfinished run is changing a target; the message names it.", body = crate::openapi::ErrorBody),
        (status = 413, description = "The body is over 256 KiB.", body = crate::openapi::ErrorBody),
        (status = 415, description = "The body is not sent as `application/json`.", body = crate::openapi::ErrorBody),
        (status = 422, description = "The inputs or the plan are invalid, or the Idempotency-Key came with another request.", body = crate::openapi::ErrorBody),
        (status = 502, description = "A cloud read failed while planning.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn run(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(request) = body.map_err(crate::error::body_error)?;
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
    // two retries racing each other start one run. The keys are kept on disk, so a retry after
    // a restart of the server is recognised too.
    let _serialized = state.idempotency.lock().await;
    let keys = crate::persist::dir(state.engine.state_dir(), "idempotency");
    let key = key.map(|(principal, key)| crate::persist::hashed_name(&[&principal, &key]));
    let request_digest = hex::encode(sha2::Sha256::digest(serde_json::to_vec(&(&request.plan_id, &request.playbook, &request.inputs)).unwrap_or_default()));
    if let Some(name) = &key {
        let known: Option<KeyEntry> = crate::persist::read(&keys, name).map_err(|e| ApiError::internal(format!("cannot read the Idempotency-Key store in {}: {e}", keys.display())))?;
        if let Some(known) = known {
            if known.request.as_ref().is_some_and(|digest| *digest != request_digest) {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    format!("this Idempotency-Key started run {} with another request body: use a new key for a new request", known.run_id),
                ));
            }
            let status = current_status(&state, &known.run_id).unwrap_or(known.status);
            return Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": known.run_id, "status": status, "replayed": true }))));
        }
    }

    let plan = plan_of(&state, &request).await?;
    if plan.approval_required || state.approval_required {
        let errors = plan.errors();
        if !errors.is_empty() {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "plan_has_errors", errors.join("; ")));
        }
        let run_id = crate::approvals::request(&state, plan, &principal.name)?;
        remember(&keys, key.as_deref(), &run_id, "awaiting_approval", &request_digest);
        return Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id, "status": "awaiting_approval" }))));
    }
    let run_id = start_detached(&state, plan, contain_engine::new_run_id(), principal.name.clone(), None).await?;
    remember(&keys, key.as_deref(), &run_id, "running", &request_digest);
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id, "status": "running" }))))
}

/// The run an `Idempotency-Key` started, and its status when it started.
#[derive(Debug, serde::Serialize, Deserialize)]
struct KeyEntry {
    run_id: String,
    status: String,
    /// SHA-256 of the request the key came with, so that a key sent again with another request
    /// is rejected instead of returning an unrelated run.
    #[serde(default)]
    request: Option<String>,
}

/// Returns a run's status now: waiting for approval, rejected, or as its journal gives it.
fn current_status(state: &AppState, run_id: &str) -> Option<String> {
    if let Some(pending) = crate::approvals::find(state, run_id) {
        return Some(pending.status);
    }
    contain_engine::run_summary(state.engine.state_dir(), run_id).ok().map(|s| s.status.to_string())
}

/// Stores the run a key started. The run has started whatever happens here, so a failure is
/// logged, not returned: a retry would then start a second run.
fn remember(keys: &std::path::Path, name: Option<&str>, run_id: &str, status: &str, request: &str) {
    let Some(name) = name else { return };
    let entry = KeyEntry { run_id: run_id.to_string(), status: status.to_string(), request: Some(request.to_string()) };
    if let Err(error) = crate::persist::write(keys, name, &entry) {
        tracing::error!(run_id, "cannot store the Idempotency-Key of the run in {}: {error}", keys.display());
    }
}

/// Starts a run on a task of its own and waits until its journal has begun. A request that
/// times out or whose client goes away meanwhile does not stop the run half-way started.
pub(crate) async fn start_detached(state: &AppState, plan: Plan, run_id: String, requested_by: String, approved_by: Option<String>) -> Result<String, ApiError> {
    let engine = state.engine.clone();
    let webhooks = state.webhooks.clone();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let active = state.active.enter();
    tokio::spawn(async move {
        let _active = active;
        match engine.begin(plan, run_id, Some(requested_by), approved_by).await {
            Ok(started) => {
                let _ = started_tx.send(Ok(started.run_id().to_string()));
                finish(engine, webhooks, started).await;
            }
            Err(error) => {
                let _ = started_tx.send(Err(error));
            }
        }
    });
    match started_rx.await {
        Ok(Ok(run_id)) => Ok(run_id),
        Ok(Err(error)) => Err(start_error(error)),
        Err(_) => Err(ApiError::internal("the run's task stopped before the run started")),
    }
}

/// Rejects a step id that made no change in the run, before the rollback starts.
fn check_step_ids(state: &AppState, run_id: &str, steps: &[String]) -> Result<(), ApiError> {
    let journal = contain_journal::read_journal(&contain_journal::journal_path(state.engine.state_dir(), run_id)).map_err(|e| ApiError::internal(format!("cannot read the journal of {run_id}: {e}")))?;
    contain_engine::check_steps(run_id, &journal.records, steps).map_err(|error| ApiError::invalid(error.to_string()))
}

/// Converts the error of a run that could not start into an API error.
pub(crate) fn start_error(error: EngineError) -> ApiError {
    match error {
        EngineError::TargetLocked { .. } => ApiError::new(StatusCode::CONFLICT, "target_locked", error.to_string()),
        EngineError::NotExecutable(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "plan_has_errors", error.to_string()),
        other => ApiError::new(StatusCode::BAD_GATEWAY, "cloud_error", other.to_string()),
    }
}

/// Applies a started run, and notifies the webhooks of how it ended.
async fn finish(engine: Arc<contain_engine::Engine>, webhooks: crate::webhooks::Webhooks, started: StartedRun) {
    let id = started.run_id().to_string();
    match engine.finish(started).await {
        Ok(report) => {
            tracing::info!(run_id = %id, status = %report.status, "run finished");
            let event = if report.status == contain_engine::RunStatus::RolledBack { "run.rolled_back" } else { "run.finished" };
            webhooks.notify(event, &id, json!({ "status": report.status }));
        }
        Err(error) => tracing::error!(run_id = %id, "run failed: {error}"),
    }
}

async fn plan_of(state: &AppState, request: &RunRequest) -> Result<Plan, ApiError> {
    match (&request.plan_id, &request.playbook) {
        (Some(plan_id), None) => {
            let file = crate::plans::find(state, plan_id)?;
            if file.digest != file.plan.digest() {
                return Err(ApiError::new(StatusCode::CONFLICT, "plan_changed", format!("plan {plan_id} was changed on disk since it was made: make a new one with POST /v1/plans")));
            }
            Ok(file.plan)
        }
        (None, Some(name)) => {
            let (playbook, path) = playbooks::load(state, name)?;
            let inputs = playbooks::input_pairs(&request.inputs)?;
            state.engine.plan(&playbook, &path, &inputs).await.map_err(|error| match error {
                EngineError::Inputs(_) | EngineError::Target { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", error.to_string()),
                other => ApiError::new(StatusCode::BAD_GATEWAY, "cloud_error", other.to_string()),
            })
        }
        (Some(_), Some(_)) => Err(ApiError::invalid("give `plan_id` or `playbook`, not both")),
        (None, None) => Err(ApiError::invalid("missing `plan_id` or `playbook`: give a plan id from POST /v1/plans, or a playbook with `inputs`")),
    }
}

/// Rolls back a run, or the changes of some of its steps, from its journal.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/rollback",
    operation_id = "rollbackRun",
    tag = "runs",
    description = "Role: responder. The body is optional. Answers at once; the run's status becomes `rolled_back`, or `partly_rolled_back` when steps were chosen and others keep changes.",
    params(("id" = String, Path, description = "The run id.", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")),
    request_body(content = Option<RollbackRequest>, description = "Which steps, and whether to force.", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "`run_id` and `status: rolling_back`.", body = Value),
        (status = 400, description = "The request names a bad value, or a step the run does not have.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the role.", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such run.", body = crate::openapi::ErrorBody),
        (status = 409, description = "The run is still running or being rolled back.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn rollback(State(state): State<Arc<AppState>>, Extension(principal): Extension<Principal>, Path(id): Path<String>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::runs::checked(&state, &id)?;
    let request: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("invalid request body: {e}; expected {{\"steps\": [\"STEP_ID\", ...], \"force\": false}}, both optional")))?
    };
    if let Some(steps) = &request.steps {
        check_step_ids(&state, &id, steps)?;
    }
    if contain_journal::is_locked(state.engine.state_dir(), &id) {
        return Err(ApiError::new(StatusCode::CONFLICT, "run_busy", format!("run {id} is still running, or being rolled back: wait for it to finish")));
    }
    let engine = state.engine.clone();
    let webhooks = state.webhooks.clone();
    let run_id = id.clone();
    let active = state.active.enter();
    tokio::spawn(async move {
        let _active = active;
        let options = RollbackOptions { force: request.force, steps: request.steps, api_principal: Some(principal.name) };
        match engine.rollback_with_options(&run_id, options).await {
            Ok(report) => {
                tracing::info!(run_id = %run_id, status = %report.status, "rollback finished");
                webhooks.notify("run.rolled_back", &run_id, json!({ "status": report.status }));
            }
            Err(error) => tracing::error!(run_id = %run_id, "rollback failed: {error}"),
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": id, "status": "rolling_back" }))))
}

/// Resumes an interrupted run: what its journal names as applied stays, and the rest of its
/// plan is applied.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/resume",
    operation_id = "resumeRun",
    tag = "runs",
    description = "Role: responder. For a run that reads `interrupted`, after a restart of the server for example. Answers at once; the run's status becomes `running`, then its end status.",
    params(("id" = String, Path, description = "The run id.", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "`run_id` and `status: resuming`.", body = Value),
        (status = 400, description = "The run id is invalid.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the role.", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such run.", body = crate::openapi::ErrorBody),
        (status = 409, description = "The run is not interrupted: it is running, finished, or being rolled back.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn resume(State(state): State<Arc<AppState>>, Extension(principal): Extension<Principal>, Path(id): Path<String>) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::runs::checked(&state, &id)?;
    let summary = contain_engine::run_summary(state.engine.state_dir(), &id).map_err(|e| ApiError::internal(format!("cannot read the journal of {id}: {e}")))?;
    if summary.status != contain_engine::RunStatus::Interrupted {
        return Err(ApiError::new(StatusCode::CONFLICT, "not_interrupted", format!("run {id} is {}, so there is nothing to resume", summary.status)));
    }
    let engine = state.engine.clone();
    let webhooks = state.webhooks.clone();
    let run_id = id.clone();
    let active = state.active.enter();
    tokio::spawn(async move {
        let _active = active;
        match engine.resume_as(&run_id, Some(principal.name)).await {
            Ok(report) => {
                tracing::info!(run_id = %run_id, status = %report.status, "resumed run finished");
                webhooks.notify("run.finished", &run_id, json!({ "status": report.status }));
            }
            Err(error) => tracing::error!(run_id = %run_id, "resume failed: {error}"),
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": id, "status": "resuming" }))))
}
