//! The Entra ID token endpoint: `POST /login/{tenant}/oauth2/v2.0/token` with
//! the client credentials grant, as `ClientSecretCredential` calls it.

use serde_json::{Value, json};

use crate::FakeAzure;
use crate::http::{Reply, Req, parse_pairs};
use crate::state::State;

/// Returns the form fields of a token request for the request log, without `client_secret`.
pub(crate) fn recorded_form(req: &Req) -> Value {
    let form = parse_pairs(&String::from_utf8_lossy(&req.body));
    let fields: serde_json::Map<String, Value> = form
        .into_iter()
        .filter(|(name, _)| name != "client_secret")
        .map(|(name, value)| (name, json!(value)))
        .collect();
    Value::Object(fields)
}

fn oauth_error(status: u16, error: &str, code: u32, description: &str) -> Reply {
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let trace_id = uuid::Uuid::new_v4().to_string();
    Reply::json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: {trace_id} Timestamp: {now}"),
            "error_codes": [code],
            "timestamp": now,
            "trace_id": trace_id
        }),
    )
}

/// Issues a token for the fake's only client, or returns the error Entra ID returns for invalid input.
pub(crate) fn handle(state: &mut State, req: &Req, tenant: &str) -> Reply {
    if req.method != "POST" {
        return oauth_error(
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        );
    }
    if !tenant.eq_ignore_ascii_case(FakeAzure::TENANT) {
        return oauth_error(
            400,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }

    let form = parse_pairs(&String::from_utf8_lossy(&req.body));
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type; the fake supports client_credentials only.",
        );
    }

    let Some(scope) = field("scope") else {
        return oauth_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    if !scope.split(' ').all(|scope| scope.ends_with("/.default")) {
        return oauth_error(
            400,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier."
            ),
        );
    }

    if field("client_id") != Some(FakeAzure::CLIENT_ID) {
        let client_id = field("client_id").unwrap_or_default();
        return oauth_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    }
    if field("client_secret") != Some(FakeAzure::CLIENT_SECRET) {
        return oauth_error(
            401,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                FakeAzure::CLIENT_ID
            ),
        );
    }

    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    state.tokens.insert(token.clone());
    Reply::json(
        200,
        json!({ "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token }),
    )
}
