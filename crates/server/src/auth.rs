//! Authentication and roles, decided before a request's body is read.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::tokens::Role;
use crate::AppState;

/// Lets the request through when its bearer token names a principal with `role`: 401 without
/// a known token, 403 without the role. The principal goes into the request's extensions.
pub(crate) async fn require(State((state, role)): State<(Arc<AppState>, Role)>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    // The scheme name is case-insensitive (RFC 9110, section 11.1).
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing bearer token: send `Authorization: Bearer <token>`"));
    };
    let Some(principal) = state.authenticate(token) else {
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
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}
