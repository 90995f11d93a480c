//! A stateful fake of Azure Resource Manager (network resources and virtual
//! machines), Microsoft Graph v1.0 and the Entra ID token endpoint, serving
//! HTTP on 127.0.0.1 so that contain's Azure provider can be tested offline.
//!
//! One [`FakeAzure`] serves all three under one base URL:
//! - ARM: `{url}/subscriptions/...`, every request with `api-version`;
//! - Graph: `{url}/graph/v1.0/...`;
//! - tokens: `{url}/login/{tenant}/oauth2/v2.0/token`.
//!
//! ARM and Graph requests need `Authorization: Bearer` with a token from the
//! token endpoint, which issues tokens for [`FakeAzure::CLIENT_ID`] and
//! [`FakeAzure::CLIENT_SECRET`] in [`FakeAzure::TENANT`] only.
//!
//! ARM writes are asynchronous as in Azure: PUT and DELETE return at once with
//! an `Azure-AsyncOperation` URL, and the change takes effect only when a poll
//! of that URL (or of the `Location` URL of a DELETE) reports `Succeeded`.
//! A resource stays locked while its operation runs: another write to it gets
//! 409 `AnotherOperationInProgress`. A PATCH of `tags` is synchronous.
//!
//! Seeded Graph objects may carry these fake-only properties, which the fake
//! removes from the stored object:
//! - users: a `memberOf` array, served by `/memberOf` and
//!   `/memberOf/microsoft.graph.directoryRole`. Entries without `@odata.type`
//!   are directory roles.
//! - users: `fakeInsufficientPrivileges: true`. Every PATCH of the user then
//!   gets 403 `Authorization_RequestDenied`, as for an admin whom the caller may not change.
//! - servicePrincipals: `appRoleAssignedTo` (array);
//! - domains: `federationConfiguration` (array of internalDomainFederation objects).

mod arm;
mod graph;
mod graph_limits;
mod http;
mod limits;
mod seed;
mod state;
mod token;

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use graph_limits::GraphLimits;
pub use limits::{ArmLimits, LimitCounts, OperationRecord};
pub use state::{Fault, RecordedRequest};

use http::{Reply, ReplyBody, Req, arm_error, graph_error};
use state::State;

/// One running fake server on 127.0.0.1. The server stops when this value is dropped.
pub struct FakeAzure {
    base_url: String,
    shared: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAzure {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeAzure {
    /// The only tenant the token endpoint accepts.
    pub const TENANT: &str = "7a1c0e5d-0000-4000-8000-00000000fa4e";
    /// The only client id the token endpoint accepts.
    pub const CLIENT_ID: &str = "c11e0000-0000-4000-8000-00000000c11e";
    /// The only client secret the token endpoint accepts. It is a public test value.
    pub const CLIENT_SECRET: &str = "contain-azure-fake-client-secret";

    /// Starts a fake on 127.0.0.1 with a port the system picks, on the current tokio runtime.
    ///
    /// # Panics
    /// Panics when 127.0.0.1 cannot be bound.
    pub async fn start() -> FakeAzure {
        match FakeAzure::start_on_port(0).await {
            Ok(fake) => fake,
            Err(error) => panic!("failed to bind the Azure fake to 127.0.0.1:0: {error}"),
        }
    }

    /// Starts a fake on 127.0.0.1:`port`; port 0 lets the system pick one.
    pub async fn start_on_port(port: u16) -> std::io::Result<FakeAzure> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let base_url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let shared = Arc::new(Mutex::new(State {
            base_url: base_url.clone(),
            ..State::default()
        }));
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("contain-azure-fake: the server failed: {error}");
            }
        });
        Ok(FakeAzure {
            base_url,
            shared,
            server,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a handler must not hide the state from the test that reads it next.
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.base_url.clone()
    }

    /// Returns the ARM endpoint, the same as [`FakeAzure::url`]; ARM paths start with `/subscriptions`.
    pub fn arm_endpoint(&self) -> String {
        self.base_url.clone()
    }

    /// Returns the Graph endpoint, `{url}/graph`; Graph paths then start with `/v1.0/`.
    pub fn graph_endpoint(&self) -> String {
        format!("{}/graph", self.base_url)
    }

    /// Returns the authority host, `{url}/login`; the token endpoint is
    /// `{authority_host}/{tenant}/oauth2/v2.0/token`, and also
    /// `{url}/{tenant}/oauth2/v2.0/token` for clients that drop the host's path.
    pub fn authority_host(&self) -> String {
        format!("{}/login", self.base_url)
    }

    /// Stores an ARM resource under its full id, of any type. The fake fills
    /// `id`, `name`, `type`, `etag` and `properties.provisioningState`, and
    /// for the network types the fields that a PUT fills. A child id (a
    /// subnet or security rule) is stored inside its parent, which must exist.
    ///
    /// # Panics
    /// Panics when the id is not an ARM resource id or the body is invalid.
    pub fn insert(&self, id: &str, body: Value) {
        if let Err(message) = self.try_insert(id, body) {
            panic!("FakeAzure::insert({id}) failed: {message}");
        }
    }

    /// Stores an ARM resource like [`FakeAzure::insert`], returning the error instead of panicking.
    pub fn try_insert(&self, id: &str, body: Value) -> Result<(), String> {
        seed::insert_arm(&mut self.lock(), id, body)
    }

    /// Returns an ARM resource, top-level or child, as a GET would return it.
    pub fn get(&self, id: &str) -> Option<Value> {
        let mut state = self.lock();
        arm::operations::settle_due(&mut state);
        seed::get_arm(&state, id)
    }

    /// Stores a Graph object in `users`, `servicePrincipals`, `applications`
    /// or `domains` (where `id` is the domain name). The body must have `id`.
    ///
    /// # Panics
    /// Panics on another collection or a body without `id`.
    pub fn insert_graph(&self, collection: &str, body: Value) {
        if let Err(message) = seed::insert_graph(&mut self.lock(), collection, body) {
            panic!("FakeAzure::insert_graph({collection}) failed: {message}");
        }
    }

    /// Returns a stored Graph object by id (or `userPrincipalName` for users),
    /// without the fake-only relation properties.
    pub fn get_graph(&self, collection: &str, id: &str) -> Option<Value> {
        seed::get_graph(&self.lock(), collection, id)
    }

    /// Loads a seed of the form `{"arm": {id: body, ...}, "graph": {"users": [...], ...}}`.
    pub fn load_seed(&self, seed: &Value) -> Result<(), String> {
        seed::load(&mut self.lock(), seed)
    }

    /// Returns every ARM resource and Graph object, sorted, without the values
    /// the fake changes on every write, so that two states compare equal
    /// exactly when a write was undone.
    ///
    /// Left out: `etag`, `provisioningState` and `resourceGuid` at any depth
    /// of ARM bodies, a user's `signInSessionsValidFromDateTime`, and the `id`
    /// of federation configurations (Graph assigns a new one on re-creation).
    /// Security rules and subnets are sorted by name, credentials by `keyId`.
    pub fn state(&self) -> Value {
        let mut state = self.lock();
        arm::operations::settle_due(&mut state);
        seed::snapshot(&state)
    }

    /// Returns every request received so far, in order, including the token
    /// requests and the inner requests of Graph batches.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Makes the next `fault.times` requests that match get the fault as their response.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Makes the asynchronous operation of the next write (PUT or DELETE)
    /// whose path contains `path_contains` end `Failed`, leaving the resource unchanged.
    pub fn fail_operations(&self, path_contains: &str) {
        self.lock().failing_writes.push(path_contains.to_string());
    }

    /// Sets how many polls of an operation return `InProgress` before the final status (default 1).
    pub fn set_async_polls(&self, polls: u32) {
        self.lock().settings.async_polls = polls;
    }

    /// Sets the `Retry-After` value of writes and in-progress polls, in seconds (default 0).
    pub fn set_retry_after(&self, seconds: u32) {
        self.lock().settings.retry_after = seconds;
    }

    /// Turns on the cloud-limits mode for ARM requests (Graph and token
    /// requests are not limited), with fresh buckets and counts:
    /// - a token bucket per region for reads (GET) and for writes, and one
    ///   for Microsoft.Network writes. A request that finds a bucket empty gets
    ///   429 `SubscriptionRequestsThrottled` with `Retry-After`.
    /// - a lognormal latency before every ARM request is handled;
    /// - asynchronous operations that end `Succeeded` after a lognormal
    ///   duration instead of a number of polls. Until then another write to
    ///   the resource (or to a subnet's VNet) gets 429 `RetryableError` with
    ///   the detail `RetryableErrorDueToAnotherOperation` and `Retry-After`.
    ///
    /// A region is the location in an operation URL, else the location of the
    /// stored top-level resource, else of the request body, else `global`.
    pub fn set_limits(&self, limits: ArmLimits) {
        self.lock().limits = Some(limits::LimitState::new(limits));
    }

    /// Returns the counts of ARM requests under the limits by `METHOD kind`,
    /// such as `PUT subnets` or `GET operations`; empty without limits.
    pub fn limit_counts(&self) -> std::collections::BTreeMap<String, LimitCounts> {
        self.lock().limits.as_ref().map(|limits| limits.counts.clone()).unwrap_or_default()
    }

    /// Lists the environment variables that point contain's Azure provider at this fake, with
    /// the fake's credentials and the managed identity (which calls the instance metadata
    /// address) left out.
    pub fn contain_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CONTAIN_ARM_ENDPOINT", self.arm_endpoint()),
            ("CONTAIN_GRAPH_ENDPOINT", self.graph_endpoint()),
            ("AZURE_AUTHORITY_HOST", self.authority_host()),
            ("AZURE_TENANT_ID", Self::TENANT.to_string()),
            ("AZURE_CLIENT_ID", Self::CLIENT_ID.to_string()),
            ("AZURE_CLIENT_SECRET", Self::CLIENT_SECRET.to_string()),
            ("CONTAIN_AZURE_MANAGED_IDENTITY", "false".to_string()),
        ]
    }

    /// Returns the asynchronous operations started under the limits, in order, with their sampled durations.
    pub fn operation_records(&self) -> Vec<OperationRecord> {
        self.lock().limits.as_ref().map(|limits| limits.operations.clone()).unwrap_or_default()
    }

    /// Turns on the cloud-limits mode for Graph requests, with a fresh bucket
    /// and counts. ARM requests are limited only by [`FakeAzure::set_limits`].
    /// - one token bucket for Graph writes: PATCH, PUT, DELETE and every POST
    ///   but `$batch` itself. Each inner request of a `$batch` draws on it as
    ///   one request. A write that finds the bucket empty gets 429
    ///   `TooManyRequests` with `Retry-After`. Inside a `$batch`, that is the
    ///   inner response, with the header in its `headers`, so the batch
    ///   returns 200.
    /// - a lognormal latency before every Graph request (a `$batch` once) is
    ///   handled, when `latency_p50_ms` is above 0.
    pub fn set_graph_limits(&self, limits: GraphLimits) {
        self.lock().graph_limits = Some(graph_limits::GraphLimitState::new(limits));
    }

    /// Returns the counts of Graph requests under the Graph limits by `METHOD kind`,
    /// such as `PATCH users` or `POST revokeSignInSessions`, inner requests of
    /// a `$batch` included. The map is empty without Graph limits.
    pub fn graph_limit_counts(&self) -> std::collections::BTreeMap<String, LimitCounts> {
        self.lock().graph_limits.as_ref().map(|limits| limits.counts.clone()).unwrap_or_default()
    }

    /// Sets the maximum number of security rules in one NSG (default 1,000, as in Azure).
    pub fn set_rule_limit(&self, limit: usize) {
        self.lock().settings.rule_limit = limit;
    }
}

/// Returns an error unless the URL's host is 127.0.0.1, localhost or ::1, so
/// that a test can check each endpoint before it sends anything.
pub fn refuse_real_endpoint(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("endpoint {url} is not an http or https URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "endpoint {url} has user information before the host; use a plain loopback URL"
        ));
    }
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    let loopback = host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost") || host == "::1";
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "endpoint {url} is not on 127.0.0.1, localhost or ::1; tests must not reach a real Azure or Graph host"
        ))
    }
}

/// Which service a fault imitates, for the shape of its error body.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side {
    Arm,
    Graph,
    Token,
}

pub(crate) fn fault_reply(fault: &Fault, side: Side) -> Reply {
    let message = format!(
        "The fake injected this fault: {} {}.",
        fault.status, fault.code
    );
    let reply = match side {
        Side::Arm => arm_error(fault.status, &fault.code, message),
        Side::Graph => graph_error(fault.status, &fault.code, message),
        Side::Token => Reply::json(
            fault.status,
            json!({ "error": fault.code, "error_description": message }),
        ),
    };
    match fault.retry_after {
        Some(seconds) => reply.with_header("Retry-After", seconds.to_string()),
        None => reply,
    }
}

/// Returns the tenant of a token endpoint path: `/login/{tenant}/oauth2/v2.0/token`,
/// or `/{tenant}/oauth2/v2.0/token`. The second form is what azure_identity
/// requests, because it joins the absolute path `/{tenant}/oauth2/v2.0/token`
/// onto the authority host, which drops the host's `/login` path.
fn token_tenant(path: &str) -> Option<String> {
    let segments = http::split_path(path.strip_prefix("/login").unwrap_or(path));
    match segments.as_slice() {
        [tenant, oauth2, version, token]
            if oauth2 == "oauth2" && version == "v2.0" && token == "token" =>
        {
            Some(tenant.clone())
        }
        _ => None,
    }
}

/// Records a request and dispatches it to the token endpoint, Graph or ARM.
pub(crate) fn handle(state: &mut State, req: &Req) -> Reply {
    let decoded_path = http::percent_decode(&req.path, false);
    if let Some(tenant) = token_tenant(&req.path) {
        state.record(req, token::recorded_form(req));
        if let Some(fault) = state.take_fault(&req.method, &decoded_path) {
            return fault_reply(&fault, Side::Token);
        }
        return token::handle(state, req, &tenant);
    }
    let body = req.json_body().unwrap_or(Value::Null);
    state.record(req, body);
    if req.path == "/graph" || req.path.starts_with("/graph/") {
        if !state.token_is_valid(req) {
            let message = if req.header("authorization").is_none() {
                "Access token is empty."
            } else {
                "Access token validation failure: the fake did not issue this token."
            };
            return graph_error(401, "InvalidAuthenticationToken", message);
        }
        if let Some(fault) = state.take_fault(&req.method, &decoded_path) {
            return fault_reply(&fault, Side::Graph);
        }
        if let Some(throttled) = graph::admit_limited(state, req) {
            return throttled;
        }
        return graph::handle(state, req);
    }
    if req.path.starts_with("/subscriptions/") {
        if !state.token_is_valid(req) {
            let message = if req.header("authorization").is_none() {
                "Authentication failed. The 'Authorization' header is missing."
            } else {
                "Authentication failed. The access token is not one the fake issued."
            };
            return arm_error(401, "AuthenticationFailed", message);
        }
        if let Some(fault) = state.take_fault(&req.method, &decoded_path) {
            return fault_reply(&fault, Side::Arm);
        }
        if state.limits.is_some() {
            return handle_limited(state, req);
        }
        return arm::handle(state, req);
    }
    arm_error(
        404,
        "NotFound",
        format!(
            "The fake serves /subscriptions/..., /graph/v1.0/... and /login/...; {} is none of them.",
            req.path
        ),
    )
}

/// Handles an ARM request in the cloud-limits mode: ends the operations that
/// are due, takes a token from the region's buckets, and counts the request.
fn handle_limited(state: &mut State, req: &Req) -> Reply {
    arm::operations::settle_due(state);
    let segments = req.segments();
    let key = format!("{} {}", req.method, limits::request_kind(&segments));
    let (region, namespace) = request_region(state, req, &segments);
    let limits = state.limits.as_mut().expect("the caller checked the mode");
    limits.count(&key).calls += 1;
    if let Err(seconds) = limits.admit(&region, &req.method, &namespace) {
        limits.count(&key).throttled += 1;
        let kind = if req.method == "GET" { "read" } else { "write" };
        let message = format!(
            "Number of '{kind}' requests for subscription exceeded in region {region}. Please try again after '{seconds}' seconds."
        );
        return arm_error(429, "SubscriptionRequestsThrottled", message)
            .with_header("Retry-After", seconds.to_string());
    }
    let reply = arm::handle(state, req);
    if reply.status == 429
        && let Some(limits) = state.limits.as_mut()
    {
        limits.count(&key).busy += 1;
    }
    reply
}

/// Returns the region whose buckets a request draws on, and the request's resource provider namespace.
fn request_region(state: &State, req: &Req, segments: &[String]) -> (String, String) {
    let Some(path) = arm::ArmPath::parse(segments) else {
        return ("global".to_string(), String::new());
    };
    if path.resource_group.is_none() && path.rest.len() >= 2 && path.rest[0].eq_ignore_ascii_case("locations") {
        return (path.rest[1].to_ascii_lowercase(), path.namespace);
    }
    let stored = (path.resource_group.is_some() && path.rest.len() >= 2)
        .then(|| state.arm.get(&path.top_id().to_ascii_lowercase()))
        .flatten();
    let body = req.json_body().unwrap_or(Value::Null);
    let location = stored
        .and_then(|resource| resource.get("location"))
        .or_else(|| body.get("location"))
        .and_then(Value::as_str)
        .map(arm::operations::location_slug)
        .unwrap_or_else(|| "global".to_string());
    (location, path.namespace)
}

async fn serve(
    AxumState(shared): AxumState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = Req {
        method: method.as_str().to_ascii_uppercase(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let latency = {
        let state = shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if req.path.starts_with("/subscriptions/") {
            state.limits.as_ref().map(limits::LimitState::latency)
        } else if req.path.starts_with("/graph/") {
            state.graph_limits.as_ref().and_then(graph_limits::GraphLimitState::latency)
        } else {
            None
        }
    };
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let reply = {
        let mut state = shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        handle(&mut state, &req)
    };
    into_response(reply)
}

fn into_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, bytes) = match reply.body {
        ReplyBody::Json(value) => (
            Some("application/json; charset=utf-8"),
            serde_json::to_vec(&value).expect("a JSON value serializes"),
        ),
        ReplyBody::Text(text) => (Some("text/plain"), text.into_bytes()),
        ReplyBody::Empty => (None, Vec::new()),
    };
    let mut response = (status, bytes).into_response();
    let response_headers = response.headers_mut();
    if let Some(content_type) = content_type {
        response_headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
    }
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response_headers.insert(name, value);
        }
    }
    response
}
