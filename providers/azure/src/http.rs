//! The one HTTP client of the provider, for ARM and Microsoft Graph alike, on azure_core's
//! pipeline with the pipeline's own retries turned off.
//!
//! The azure_core 0.21 pipeline retries PUT and POST on 408, 429 and 5xx by itself, which could
//! repeat a write blindly. Its retry policy is replaced by one that passes every response through,
//! and this client retries only responses which show that the request was not carried out (429, and 409
//! `AnotherOperationInProgress`), after the server's `Retry-After`. Every other failure goes to the
//! engine, which reads the subject before it tries a change again.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::auth::TokenCredential;
use azure_core::headers::{self, HeaderName};
use azure_core::{ClientOptions, Context, Method, Pipeline, Policy, PolicyResult, Request, TransportOptions, Url};
use contain_core::{ActionError, CallContext, ErrorKind, Mode};
use serde_json::Value;

use crate::cloud::Endpoints;
use crate::credential::CredentialChain;

/// The service a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Arm,
    Graph,
}

/// How long the client waits for the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// The maximum total wait on `Retry-After` for one call before the engine gets the error.
    pub(crate) retry_budget: Duration,
    /// The wait between polls of an operation when the server names none.
    pub(crate) poll_interval: Duration,
    /// The maximum wait for one long-running operation.
    pub(crate) operation_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { retry_budget: Duration::from_secs(60), poll_interval: Duration::from_secs(2), operation_timeout: Duration::from_secs(600) }
    }
}

/// A response with a success status.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Header names in lower case.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Returns the resource's ETag, from the header or the body.
    pub(crate) fn etag(&self) -> Option<String> {
        self.header("etag").map(str::to_string).or_else(|| self.body.get("etag").and_then(Value::as_str).map(str::to_string))
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after").and_then(|value| value.trim().parse::<u64>().ok()).map(Duration::from_secs)
    }
}

/// A policy that passes every response through, so that no status is retried or turned into an
/// error inside the pipeline.
#[derive(Debug)]
struct PassThrough;

#[async_trait]
impl Policy for PassThrough {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// The position of the retry policy in a pipeline built without policies of our own: after
/// the telemetry and custom-headers policies.
const RETRY_POLICY_POSITION: usize = 2;

/// The pipeline and the credentials, built on first use so that commands that make no call
/// (`contain validate`) build no HTTP client.
struct Connection {
    pipeline: Pipeline,
    credential: CredentialChain,
}

pub(crate) struct Http {
    connection: OnceLock<Connection>,
    managed_identity: bool,
    pub(crate) endpoints: Endpoints,
    pub(crate) timing: Timing,
}

impl Http {
    pub(crate) fn new(endpoints: Endpoints, managed_identity: bool, timing: Timing) -> Http {
        Http { connection: OnceLock::new(), managed_identity, endpoints, timing }
    }

    fn connection(&self) -> &Connection {
        self.connection.get_or_init(|| {
            let options = ClientOptions::new(TransportOptions::new(azure_core::new_http_client()));
            let mut pipeline = Pipeline::new(Some("contain"), Some(env!("CARGO_PKG_VERSION")), options, Vec::new(), Vec::new());
            pipeline.replace_policy(Arc::new(PassThrough), RETRY_POLICY_POSITION);
            let credential = CredentialChain::from_env(&self.endpoints.authority, self.managed_identity);
            tracing::debug!(credentials = ?credential.names(), "Azure credentials to try, in order");
            Connection { pipeline, credential }
        })
    }

    /// Returns the name of the credential in use, once one gave a token.
    pub(crate) fn credential_name(&self) -> Option<&'static str> {
        self.connection.get().and_then(|connection| connection.credential.chosen())
    }

    /// Gets a token for `api`, which also checks that a credential works.
    pub(crate) async fn token(&self, api: Api) -> Result<String, ActionError> {
        self.check_endpoints()?;
        let audience = match api {
            Api::Arm => &self.endpoints.arm_audience,
            Api::Graph => &self.endpoints.graph_audience,
        };
        let scope = format!("{audience}/.default");
        let token = self
            .connection()
            .credential
            .get_token(&[scope.as_str()])
            .await
            .map_err(|error| ActionError::new(ErrorKind::AccessDenied, format!("no Azure token for {audience}: {error}")))?;
        Ok(token.token.secret().to_string())
    }

    /// Rejects an endpoint that would carry the secret and tokens in clear text to another
    /// machine: plain `http://` is accepted for a loopback address only.
    fn check_endpoints(&self) -> Result<(), ActionError> {
        for (name, url) in [("ARM", &self.endpoints.arm), ("Graph", &self.endpoints.graph), ("authority", &self.endpoints.authority)] {
            if let Some(rest) = url.strip_prefix("http://") {
                let authority = rest.split('/').next().unwrap_or_default();
                let host = match authority.rsplit_once(':') {
                    Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
                    _ => authority,
                };
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if !loopback || authority.contains('@') {
                    return Err(ActionError::new(
                        ErrorKind::Invalid,
                        format!("the {name} endpoint {url} is plain HTTP to another machine, which would send the credentials in clear text: use https://, or a loopback address for tests"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Returns the full URL of an ARM path (which must carry its `api-version`) or Graph path, or the
    /// URL itself when it is one already (an operation URL the server sent).
    fn url(&self, api: Api, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        match api {
            Api::Arm => format!("{}{path}", self.endpoints.arm),
            Api::Graph => format!("{}/v1.0{path}", self.endpoints.graph),
        }
    }

    pub(crate) async fn get(&self, context: &CallContext, api: Api, path: &str) -> Result<Reply, ActionError> {
        self.send(context, api, Method::Get, path, None, None).await
    }

    /// Sends a request and returns the response when its status is a success. In plan mode,
    /// rejects every request that is not a read before sending it.
    pub(crate) async fn send(&self, context: &CallContext, api: Api, method: Method, path: &str, body: Option<&Value>, if_match: Option<&str>) -> Result<Reply, ActionError> {
        let url = self.url(api, path);
        if context.mode == Mode::Plan && !is_read_only(&method, &url, body) {
            return Err(ActionError::new(ErrorKind::DryRunRefused, format!("contain is planning: {method} {} rejected before sending", display_path(&url))).with_resource(display_path(&url)));
        }
        let mut waited = Duration::ZERO;
        loop {
            let token = self.token(api).await?;
            let parsed = Url::parse(&url).map_err(|error| ActionError::new(ErrorKind::Invalid, format!("invalid URL {url}: {error}")))?;
            let mut request = Request::new(parsed, method);
            request.insert_header(headers::AUTHORIZATION, format!("Bearer {token}"));
            if let Some(etag) = if_match {
                request.insert_header(headers::IF_MATCH, etag.to_string());
            }
            if let Some(body) = body {
                request.insert_header(headers::CONTENT_TYPE, "application/json");
                request.set_body(serde_json::to_vec(body).unwrap_or_default());
            }
            if api == Api::Graph && url.contains("/$count") {
                request.insert_header(HeaderName::from_static("consistencylevel"), "eventual");
            }

            let reply = self.exchange(&mut request, &url).await?;
            if (200..300).contains(&reply.status) {
                return Ok(reply);
            }

            let error = map_error(&method, &url, &reply);
            let retry_after = reply.retry_after().unwrap_or(Duration::from_secs(1));
            if not_carried_out(&reply) && waited + retry_after <= self.timing.retry_budget {
                tracing::warn!("{method} {}: {}; retrying after {} s as the server asks (at most {} s in all)", display_path(&url), error.message, retry_after.as_secs(), self.timing.retry_budget.as_secs());
                tokio::time::sleep(retry_after).await;
                waited += retry_after;
                continue;
            }
            return Err(error);
        }
    }

    async fn exchange(&self, request: &mut Request, url: &str) -> Result<Reply, ActionError> {
        let response = self
            .connection()
            .pipeline
            .send(&Context::new(), request)
            .await
            .map_err(|error| ActionError::new(ErrorKind::Transient, format!("{} {}: {error}", request.method(), display_path(url))))?;
        let (status, headers, body) = response.deconstruct();
        let bytes = body
            .collect()
            .await
            .map_err(|error| ActionError::new(ErrorKind::Transient, format!("{} {}: the response was cut off: {error}", request.method(), display_path(url))))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        let headers = headers.iter().map(|(name, value)| (name.as_str().to_ascii_lowercase(), value.as_str().to_string())).collect();
        Ok(Reply { status: u16::from(status), headers, body })
    }
}

/// Returns the path and query of a URL, for messages: the host is the configured one.
pub(crate) fn display_path(url: &str) -> String {
    match url.find("://").and_then(|start| url[start + 3..].find('/').map(|slash| start + 3 + slash)) {
        Some(position) => url[position..].to_string(),
        None => url.to_string(),
    }
}

/// True for a request that changes nothing: a GET, or one of the named read-only POSTs.
fn is_read_only(method: &Method, url: &str, body: Option<&Value>) -> bool {
    match method {
        Method::Get | Method::Head => true,
        Method::Post => {
            let path = display_path(url);
            let path = path.split('?').next().unwrap_or_default();
            if path.ends_with("/effectiveNetworkSecurityGroups") {
                return true;
            }
            if path.ends_with("/$batch") {
                let requests = body.and_then(|b| b.get("requests")).and_then(Value::as_array);
                return requests.is_some_and(|requests| requests.iter().all(|r| r.get("method").and_then(Value::as_str).is_some_and(|m| m.eq_ignore_ascii_case("GET"))));
            }
            false
        }
        _ => false,
    }
}

/// Returns the error code and message of an ARM or Graph error body.
pub(crate) fn error_detail(body: &Value) -> (Option<String>, String) {
    let error = body.get("error").unwrap_or(body);
    let code = error.get("code").and_then(Value::as_str).map(str::to_string);
    let message = error.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| match body {
        Value::Null => "no details in the response".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    });
    (code, message)
}

/// Codes of a 409 which show that another operation is using the resource, so the request was
/// not carried out and may be sent again.
const BUSY_CODES: &[&str] = &["AnotherOperationInProgress", "RetryableErrorDueToAnotherOperation", "OperationNotAllowedWhileUpdating"];

/// Returns true when the response shows that the request was rejected before it was carried out.
fn not_carried_out(reply: &Reply) -> bool {
    let (code, _) = error_detail(&reply.body);
    reply.status == 429 || (reply.status == 409 && code.as_deref().is_some_and(|code| BUSY_CODES.contains(&code)))
}

fn map_error(method: &Method, url: &str, reply: &Reply) -> ActionError {
    let (code, message) = error_detail(&reply.body);
    let kind = match reply.status {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::AccessDenied,
        429 => ErrorKind::Throttled,
        409 if not_carried_out(reply) => ErrorKind::Throttled,
        409 | 412 => ErrorKind::Precondition,
        400 | 405 | 413 | 415 | 422 => ErrorKind::Invalid,
        408 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Other,
    };
    let path = display_path(url);
    let resource = path.split('?').next().unwrap_or_default().to_string();
    let code_text = code.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
    let mut error = ActionError::new(kind, format!("{method} {resource}: {}{code_text}: {message}", reply.status)).with_resource(resource);
    if let Some(code) = code {
        error = error.with_code(code);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn read_only_requests_are_named() {
        assert!(is_read_only(&Method::Get, "http://h/subscriptions/s", None));
        assert!(is_read_only(&Method::Post, "http://h/subscriptions/s/networkInterfaces/n/effectiveNetworkSecurityGroups?api-version=1", None));
        let reads = json!({"requests": [{"id": "1", "method": "GET", "url": "/users/a"}]});
        let writes = json!({"requests": [{"id": "1", "method": "GET", "url": "/users/a"}, {"id": "2", "method": "PATCH", "url": "/users/a"}]});
        assert!(is_read_only(&Method::Post, "http://h/v1.0/$batch", Some(&reads)));
        assert!(!is_read_only(&Method::Post, "http://h/v1.0/$batch", Some(&writes)));
        assert!(!is_read_only(&Method::Post, "http://h/v1.0/users/a/revokeSignInSessions", None));
        assert!(!is_read_only(&Method::Put, "http://h/subscriptions/s", None));
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        let http = |url: &str| Http::new(Endpoints::with_overrides(crate::Cloud::Public, |_| Some(url.to_string())), false, Timing::default());
        assert!(http("http://127.0.0.1:8080").check_endpoints().is_ok());
        assert!(http("http://[::1]:8080/graph").check_endpoints().is_ok());
        assert!(http("https://management.example").check_endpoints().is_ok());
        let error = http("http://0.0.0.0:8080").check_endpoints().unwrap_err();
        assert!(error.message.contains("clear text"), "{}", error.message);
        assert!(http("http://127.0.0.1@203.0.113.9").check_endpoints().is_err());
    }

    #[test]
    fn busy_conflicts_are_retried_and_others_are_not() {
        let reply = |status, code: &str| Reply { status, headers: BTreeMap::new(), body: json!({"error": {"code": code, "message": "m"}}) };
        assert!(not_carried_out(&reply(409, "AnotherOperationInProgress")));
        assert!(not_carried_out(&reply(429, "TooManyRequests")));
        assert!(!not_carried_out(&reply(409, "InUseNetworkSecurityGroupCannotBeDeleted")));
        let error = map_error(&Method::Put, "http://h/subscriptions/s/x?api-version=1", &reply(412, "PreconditionFailed"));
        assert_eq!(error.kind, ErrorKind::Precondition);
        assert_eq!(error.code.as_deref(), Some("PreconditionFailed"));
        assert_eq!(error.resource.as_deref(), Some("/subscriptions/s/x"));
    }
}
