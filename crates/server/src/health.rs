//! `GET /healthz` and `GET /readyz`, for load balancers and orchestrators: no token needed.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// Reports that the server process is up.
#[utoipa::path(get, path = "/healthz",
    operation_id = "healthz", tag = "health", responses((status = 200, description = "The server is up.", body = Value)))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the state directory, where journals go, can be written.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "health",
    responses(
        (status = 200, description = "Runs can start: the state directory is writable.", body = Value),
        (status = 503, description = "The state directory cannot be written.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let runs = state.engine.state_dir().join("runs");
    std::fs::create_dir_all(&runs).map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", format!("cannot write the state directory {}: {e}", runs.display())))?;
    Ok(Json(json!({ "status": "ready" })))
}
