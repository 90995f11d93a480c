//! The HTTP API of contain, for SOAR systems: the same engine and journal as the command line,
//! behind bearer tokens with roles.
//!
//! The routes (JSON, under `/v1`):
//!
//! | route | role |
//! |---|---|
//! | `GET /healthz`, `GET /readyz`, `GET /v1/openapi.json` | none |
//! | `GET /v1/playbooks`, `GET /v1/actions`, `GET /metrics` | viewer |
//! | `GET /v1/runs`, `GET /v1/runs/{id}`, `GET /v1/runs/{id}/journal` | viewer |
//! | `POST /v1/plans`, `POST /v1/runs`, `POST /v1/runs/{id}/rollback`, `POST /v1/runs/{id}/resume` | responder |
//! | `POST /v1/runs/{id}/approve`, `POST /v1/runs/{id}/reject` | approver |
//!
//! Every route is declared with its OpenAPI description ([`openapi`]), so the document cannot
//! miss one. Run state changes are sent to the configured webhooks ([`webhooks`]). [`serve`]
//! serves plain HTTP or TLS ([`tls`]).

mod actions;
mod approvals;
mod auth;
mod error;
mod health;
mod metrics;
mod openapi;
mod persist;
mod playbooks;
mod plans;
mod request_id;
mod runs;
mod serve;
mod start;
mod timeout;
pub mod tls;
pub mod tokens;
pub mod webhooks;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::{Router, middleware};
use contain_engine::Engine;
use serde_json::Value;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use serve::serve;
pub use tokens::{Principal, Role, TokenStore};

/// The largest request body: plans requests are small JSON documents.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// The default time limit of one request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The state every handler shares.
pub struct AppState {
    pub engine: Arc<Engine>,
    /// The tokens, replaced whole when the file is loaded again ([`AppState::reload_tokens`]).
    tokens: std::sync::RwLock<TokenStore>,
    /// The directory of the playbooks the API offers.
    pub playbooks: PathBuf,
    /// Serializes runs started with an `Idempotency-Key`, whose keys are kept on disk.
    idempotency: tokio::sync::Mutex<()>,
    /// Runs waiting for approval, or rejected, by run id.
    pending: Mutex<HashMap<String, approvals::Pending>>,
    /// HTTP requests so far, for `/metrics`.
    requests: metrics::RequestCounts,
    /// The webhooks that receive run state changes.
    pub webhooks: webhooks::Webhooks,
    /// The time limit of one request.
    pub request_timeout: Duration,
    /// Every run started over the API waits for a second person's approval, whatever its
    /// playbook sets.
    pub approval_required: bool,
    /// The runs and rollbacks going on in the background, which a shutdown waits for.
    pub active: Arc<ActiveRuns>,
    /// The OpenAPI document, made when the router is built.
    openapi: OnceLock<Value>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, tokens: TokenStore, playbooks: PathBuf) -> Self {
        let pending = approvals::load(engine.state_dir());
        AppState {
            engine,
            tokens: std::sync::RwLock::new(tokens),
            playbooks,
            idempotency: tokio::sync::Mutex::new(()),
            pending: Mutex::new(pending),
            requests: Default::default(),
            webhooks: webhooks::Webhooks::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            approval_required: false,
            active: Arc::new(ActiveRuns::default()),
            openapi: OnceLock::new(),
        }
    }
}

/// Counts the runs and rollbacks going on in the background.
#[derive(Debug, Default)]
pub struct ActiveRuns {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One background run; dropping it ends the run's count.
pub(crate) struct ActiveRun(Arc<ActiveRuns>);

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl ActiveRuns {
    pub(crate) fn enter(self: &Arc<Self>) -> ActiveRun {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ActiveRun(self.clone())
    }

    /// Returns the number of runs and rollbacks going on.
    pub fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until no run or rollback is going on, or `limit` has passed, and returns how many
    /// are still going on.
    pub async fn wait_idle(&self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.idle.notified();
            if self.count() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.count();
            }
        }
    }
}

impl AppState {
    /// Replaces the tokens with those of the file, for a token added or revoked while the server
    /// runs. On error the tokens stay as they were.
    pub fn reload_tokens(&self, path: &std::path::Path) -> Result<usize, tokens::TokensError> {
        let loaded = TokenStore::load(path)?;
        let count = loaded.len();
        *self.tokens.write().expect("tokens lock") = loaded;
        Ok(count)
    }

    /// Finds the principal whose token this is.
    pub(crate) fn authenticate(&self, token: &str) -> Option<Principal> {
        self.tokens.read().expect("tokens lock").authenticate(token).cloned()
    }
}

/// Builds the router, and the OpenAPI document from the same declarations.
pub fn router(state: Arc<AppState>) -> Router {
    let (router, document) = routes(&state).split_for_parts();
    let document = serde_json::to_value(&document).expect("the OpenAPI document serializes");
    let _ = state.openapi.set(document);
    router
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), timeout::layer))
        .layer(middleware::from_fn_with_state(state.clone(), request_id::layer))
        .with_state(state)
}

/// Returns the error for a path no route serves, distinct from a run or plan not found.
async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "no_route", format!("no route {method} {}: GET /v1/openapi.json lists the routes", uri.path()))
}

/// Declares every route, with the role it needs.
fn routes(state: &Arc<AppState>) -> OpenApiRouter<Arc<AppState>> {
    let with_role = |role: Role| middleware::from_fn_with_state((state.clone(), role), auth::require);
    let open = OpenApiRouter::new().routes(routes!(health::healthz)).routes(routes!(health::readyz)).routes(routes!(openapi::document));
    let viewer = OpenApiRouter::new()
        .routes(routes!(playbooks::list))
        .routes(routes!(actions::list))
        .routes(routes!(runs::list))
        .routes(routes!(runs::show))
        .routes(routes!(runs::journal))
        .routes(routes!(metrics::metrics))
        .route_layer(with_role(Role::Viewer));
    let responder = OpenApiRouter::new()
        .routes(routes!(plans::create))
        .routes(routes!(start::run))
        .routes(routes!(start::rollback))
        .routes(routes!(start::resume))
        .route_layer(with_role(Role::Responder));
    let approver = OpenApiRouter::new()
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::reject))
        .route_layer(with_role(Role::Approver));

    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).merge(open).merge(viewer).merge(responder).merge(approver)
}
