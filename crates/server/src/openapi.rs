//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of the API, generated from the route
//! declarations, so that SOAR integrations can be generated from it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "contain",
        description = "Cloud incident containment: plan, run, approve and roll back playbooks. \
            Every route but /healthz, /readyz and /v1/openapi.json takes a bearer token; \
            each operation's description names the role it needs.",
    ),
    modifiers(&BearerToken),
    components(schemas(ErrorBody)),
    tags(
        (name = "health", description = "Liveness and readiness, no token needed."),
        (name = "playbooks", description = "The playbooks and actions on offer."),
        (name = "runs", description = "Plans, runs, approvals and rollbacks."),
        (name = "operations", description = "Metrics and this document."),
    )
)]
pub(crate) struct ApiDoc;

/// Declares the bearer token scheme every protected operation names.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("A token from `contain token new`.")).build()),
        );
    }
}

/// The statuses `GET /v1/runs` filters on.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum StatusFilter {
    Running,
    Succeeded,
    Partial,
    Failed,
    RolledBack,
    PartlyRolledBack,
    Interrupted,
    AwaitingApproval,
    Rejected,
}

/// Every error response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// Stable, for programs: `unauthorized`, `forbidden`, `not_found`, `invalid_request`,
    /// `invalid_input`, `target_locked`, `two_person_rule`, `timeout`, ...
    code: String,
    /// For people: names the bad value and what is valid.
    message: String,
    /// The `x-request-id` of the request, to quote in a ticket.
    request_id: String,
}

/// The OpenAPI document.
#[utoipa::path(get, path = "/v1/openapi.json",
    operation_id = "openapi", tag = "operations", responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Value)))]
pub(crate) async fn document(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.openapi.get().cloned().unwrap_or(Value::Null))
}
