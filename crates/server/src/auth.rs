//! Authentication and roles, decided before a request's body is read.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::tokens::{Principal, Role};
use crate::AppState;

/// Lets the request through when its bearer token names a principal with `role`: 401 without
/// a known token, 403 without the role. The principal goes into the request's extensions.
pub(crate) async fn require(State((state, role)): State<(Arc<AppState>, Role)>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing bearer token: send `Authorization: Bearer <token>`"));
    };
    let Some(principal) = state.tokens.authenticate(token) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown bearer token"));
    };
    if !principal.may(role) {
        let roles: Vec<&str> = principal.roles.iter().map(|r| r.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("principal {} has the role(s) {}; this route needs {role}", principal.name, roles.join(", ")),
        ));
    }
    let principal: Principal = principal.clone();
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}
