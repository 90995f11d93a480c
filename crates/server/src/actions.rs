//! `GET /v1/actions`: what each provider supports, by resource type, with each action's
//! options.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;

/// Lists the providers, their resource types, the form of a target of each, and its actions
/// with the options each takes.
#[utoipa::path(
    get,
    path = "/v1/actions",
    operation_id = "listActions",
    tag = "playbooks",
    description = "Role: viewer.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Providers, resource types and actions.", body = Value),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the viewer role.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Json<Value> {
    let providers: Vec<Value> = state
        .engine
        .providers()
        .iter()
        .map(|provider| {
            let types: Vec<Value> = provider
                .resource_types()
                .iter()
                .map(|t| {
                    let actions: Vec<Value> = t
                        .actions
                        .iter()
                        .map(|kind| {
                            let options = provider.action(*kind, t.name).map(|action| action.option_names()).unwrap_or_default();
                            json!({ "action": kind.as_str(), "options": options })
                        })
                        .collect();
                    json!({ "resource_type": t.name, "expected": t.expected, "actions": actions })
                })
                .collect();
            json!({ "provider": provider.name(), "resource_types": types })
        })
        .collect();
    Json(json!({ "providers": providers }))
}
