//! A request id for every request: sent back in `x-request-id`, logged, and added to the body of
//! every error response, so that a SOAR ticket can name the request.

use axum::body::{Body, to_bytes};
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// The largest error body the layer rewrites; error bodies are small JSON documents.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub(crate) async fn layer(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let id = format!("req-{}", uuid::Uuid::new_v4().simple());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // The route's pattern, not the path, so that ids do not make a label value each.
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let status = response.status();
    tracing::info!(request_id = %id, %method, %path, status = status.as_u16(), "request");
    *state.requests.lock().expect("requests lock").entry((method.to_string(), route, status.as_u16())).or_default() += 1;

    let (mut parts, body) = response.into_parts();
    parts.headers.insert("x-request-id", HeaderValue::from_str(&id).expect("request ids are ASCII"));
    if !status.is_client_error() && !status.is_server_error() {
        return Response::from_parts(parts, body);
    }
    let bytes = to_bytes(body, MAX_ERROR_BODY).await.unwrap_or_default();
    let mut document: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        // Errors of axum itself (an unknown route, a body over the limit) are plain text.
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        let code = match status.as_u16() {
            404 => "not_found",
            405 => "method_not_allowed",
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            _ => "invalid_request",
        };
        let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
        serde_json::json!({ "code": code, "message": message })
    });
    document["request_id"] = serde_json::Value::String(id);
    let body = serde_json::to_vec(&document).expect("JSON values serialize");
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}
