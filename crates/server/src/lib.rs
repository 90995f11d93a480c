//! The HTTP API of contain, for SOAR systems: the same engine and journal as the command line,
//! behind bearer tokens with roles.
//!
//! Routes so far (JSON, under `/v1`):
//!
//! | route | role |
//! |---|---|
//! | `GET /healthz`, `GET /readyz` | none |
//! | `GET /v1/playbooks`, `GET /v1/actions`, `GET /metrics` | viewer |
//! | `GET /v1/runs`, `GET /v1/runs/{id}`, `GET /v1/runs/{id}/journal` | viewer |
//! | `POST /v1/plans`, `POST /v1/runs`, `POST /v1/runs/{id}/rollback` | responder |
//! | `POST /v1/runs/{id}/approve`, `POST /v1/runs/{id}/reject` | approver |
//!
//! Run state changes are sent to the configured webhooks ([`webhooks`]).
//!
//! NOTE: the OpenAPI document and TLS
//! are not built yet. Because there is no TLS, the server listens on loopback only, unless
//! `--allow-plain-http` is given for a TLS proxy in front.

mod approvals;
mod auth;
mod error;
mod metrics;
mod playbooks;
mod plans;
mod request_id;
mod runs;
mod start;
pub mod webhooks;
pub mod tokens;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use contain_engine::{Engine, PlanFile};
use serde_json::{Value, json};

pub use error::ApiError;
pub use tokens::{Principal, Role, TokenStore};

/// The largest request body: plans requests are small JSON documents.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The state every handler shares.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub tokens: TokenStore,
    /// The directory of the playbooks the API offers.
    pub playbooks: PathBuf,
    /// Plans made through the API, by plan id.
    plans: Mutex<HashMap<String, PlanFile>>,
    /// Runs started with an `Idempotency-Key`, by principal and key.
    // NOTE: kept in memory, so the keys are lost on restart. The runs stay in the journals.
    idempotency: tokio::sync::Mutex<HashMap<(String, String), String>>,
    /// Runs waiting for approval, or rejected, by run id.
    pending: Mutex<HashMap<String, approvals::Pending>>,
    /// HTTP requests so far, for `/metrics`.
    requests: metrics::RequestCounts,
    /// The webhooks that receive run state changes.
    pub webhooks: webhooks::Webhooks,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, tokens: TokenStore, playbooks: PathBuf) -> Self {
        AppState { engine, tokens, playbooks, plans: Mutex::new(HashMap::new()), idempotency: tokio::sync::Mutex::new(HashMap::new()), pending: Mutex::new(HashMap::new()), requests: Default::default(), webhooks: webhooks::Webhooks::default() }
    }
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    let with_role = |role: Role| middleware::from_fn_with_state((state.clone(), role), auth::require);
    let viewer = Router::new()
        .route("/v1/playbooks", get(list_playbooks))
        .route("/v1/actions", get(list_actions))
        .route("/v1/runs", get(runs::list))
        .route("/v1/runs/{id}", get(runs::show))
        .route("/v1/runs/{id}/journal", get(runs::journal))
        .route("/metrics", get(metrics::metrics))
        .route_layer(with_role(Role::Viewer));
    let responder = Router::new()
        .route("/v1/plans", post(plans::create))
        .route("/v1/runs", post(start::run))
        .route("/v1/runs/{id}/rollback", post(start::rollback))
        .route_layer(with_role(Role::Responder));
    let approver = Router::new()
        .route("/v1/runs/{id}/approve", post(approvals::approve))
        .route("/v1/runs/{id}/reject", post(approvals::reject))
        .route_layer(with_role(Role::Approver));

    Router::new()
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(ready))
        .merge(viewer)
        .merge(responder)
        .merge(approver)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), request_id::layer))
        .with_state(state)
}

/// Ready when the state directory, where journals go, can be written.
async fn ready(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let runs = state.engine.state_dir().join("runs");
    std::fs::create_dir_all(&runs).map_err(|e| ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "not_ready", format!("cannot write the state directory {}: {e}", runs.display())))?;
    Ok(Json(json!({ "status": "ready" })))
}

async fn list_playbooks(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let mut listed = Vec::new();
    let mut invalid = Vec::new();
    for name in playbooks::names(&state.playbooks) {
        match playbooks::load(&state, &name) {
            Ok((playbook, _)) => listed.push(playbooks::summary(&name, &playbook)),
            Err(error) => invalid.push(json!({ "name": name, "problems": error.message })),
        }
    }
    Ok(Json(json!({ "playbooks": listed, "invalid": invalid })))
}

async fn list_actions(State(state): State<Arc<AppState>>) -> Json<Value> {
    let providers: Vec<Value> = state
        .engine
        .providers()
        .iter()
        .map(|provider| {
            let types: Vec<Value> = provider
                .resource_types()
                .iter()
                .map(|t| json!({ "resource_type": t.name, "expected": t.expected, "actions": t.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>() }))
                .collect();
            json!({ "provider": provider.name(), "resource_types": types })
        })
        .collect();
    Json(json!({ "providers": providers }))
}
