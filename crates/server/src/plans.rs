//! `POST /v1/plans`: a plan of a playbook with inputs. Sends no changing request to the cloud.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use contain_engine::{EngineError, PlanFile};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::AppState;
use crate::error::ApiError;
use crate::playbooks;

/// The directory of the plans made over the API, under the state directory.
const KIND: &str = "plans";

/// Reads a plan made over the API, before or after a restart of the server.
pub(crate) fn find(state: &AppState, plan_id: &str) -> Result<PlanFile, ApiError> {
    let valid = !plan_id.is_empty() && plan_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        return Err(ApiError::invalid(format!("invalid plan id `{plan_id}`: plan ids hold letters, digits and `-`, such as plan-20261205T101500Z-3f9a1c")));
    }
    let dir = crate::persist::dir(state.engine.state_dir(), KIND);
    let found: Option<PlanFile> = crate::persist::read(&dir, &format!("{plan_id}.json")).map_err(|e| ApiError::internal(format!("cannot read plan {plan_id}: {e}")))?;
    found.ok_or_else(|| ApiError::not_found(format!("no plan `{plan_id}`: make one with POST /v1/plans")))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanRequest {
    /// The playbook's path under the playbooks directory, without `.yaml`, such as
    /// `aws/ec2-instance-compromise`.
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")]
    playbook: String,
    /// The playbook's inputs by name: strings, or lists of strings for list inputs.
    #[serde(default)]
    #[schema(value_type = Object)]
    inputs: Map<String, Value>,
}

/// Plans a playbook with inputs. Sends no changing request to the cloud.
#[utoipa::path(
    post,
    path = "/v1/plans",
    operation_id = "createPlan",
    tag = "runs",
    description = "Role: responder. The plan is kept under its `plan_id` for `POST /v1/runs`.",
    request_body = PlanRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The plan, as `contain plan -o json` writes it.", body = Value),
        (status = 400, description = "The request names a bad value.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the role.", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such run, plan or playbook.", body = crate::openapi::ErrorBody),
        (status = 413, description = "The body is over 256 KiB.", body = crate::openapi::ErrorBody),
        (status = 415, description = "The body is not sent as `application/json`.", body = crate::openapi::ErrorBody),
        (status = 422, description = "The inputs or the plan are invalid.", body = crate::openapi::ErrorBody),
        (status = 502, description = "A cloud read failed.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn create(State(state): State<Arc<AppState>>, body: Result<Json<PlanRequest>, JsonRejection>) -> Result<(StatusCode, Json<PlanFile>), ApiError> {
    let Json(request) = body.map_err(crate::error::body_error)?;
    let (playbook, path) = playbooks::load(&state, &request.playbook)?;
    let inputs = playbooks::input_pairs(&request.inputs)?;
    let plan = state.engine.plan(&playbook, &path, &inputs).await.map_err(|error| match error {
        EngineError::Inputs(_) | EngineError::Target { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", error.to_string()),
        other => ApiError::new(StatusCode::BAD_GATEWAY, "cloud_error", other.to_string()),
    })?;
    let file = PlanFile::new(plan);
    let dir = crate::persist::dir(state.engine.state_dir(), KIND);
    crate::persist::write(&dir, &format!("{}.json", file.plan.plan_id), &file).map_err(|e| {
        tracing::error!(plan_id = %file.plan.plan_id, "cannot store the plan in {}: {e}", dir.display());
        ApiError::internal(format!("cannot store the plan in {}: {e}", dir.display()))
    })?;
    Ok((StatusCode::CREATED, Json(file)))
}
