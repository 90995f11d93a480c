//! Helpers shared by the tests: an HTTP client with a token, fixture loading
//! and comparison of JSON key sets.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use contain_azure_fake::{FakeAzure, refuse_real_endpoint};
use serde_json::Value;

pub const SUBSCRIPTION: &str = "subid";

/// A fake plus a client that has a token from the fake's token endpoint.
pub struct Client {
    pub fake: FakeAzure,
    pub http: reqwest::Client,
    pub token: String,
}

/// One response, with the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("header is text").to_string())
    }
}

impl Client {
    /// Starts a fake, checks that every endpoint is on the loopback interface,
    /// and fetches a token with the fake's credentials.
    pub async fn start() -> Client {
        let fake = FakeAzure::start().await;
        for endpoint in [
            fake.url(),
            fake.arm_endpoint(),
            fake.graph_endpoint(),
            fake.authority_host(),
        ] {
            refuse_real_endpoint(&endpoint).expect("the fake's endpoints are on 127.0.0.1");
        }
        let http = reqwest::Client::new();
        let response = request_token(&http, &fake, FakeAzure::CLIENT_SECRET).await;
        assert_eq!(
            response.status, 200,
            "token request failed: {}",
            response.text
        );
        let token = response.body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        Client { fake, http, token }
    }

    /// Sends a request to `{url}{path}` with the token, a JSON body and extra headers.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.fake.url())
        };
        refuse_real_endpoint(&url).expect("tests only call the fake");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        into_response(request.send().await.expect("the fake answers")).await
    }

    /// Sends an ARM request, adding `api-version` when the path has none.
    pub async fn arm(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        self.arm_with(method, path, body, &[]).await
    }

    pub async fn arm_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let path = if path.contains("api-version=") {
            path.to_string()
        } else {
            let separator = if path.contains('?') { '&' } else { '?' };
            format!("{path}{separator}api-version=2024-05-01")
        };
        self.send(method, &path, body, headers).await
    }

    pub async fn graph(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        self.send(method, &format!("/graph/v1.0{path}"), body, &[])
            .await
    }

    /// Polls an `Azure-AsyncOperation` URL until the status is no longer `InProgress`.
    pub async fn wait(&self, operation_url: &str) -> Response {
        for _ in 0..20 {
            let response = self.send("GET", operation_url, None, &[]).await;
            assert_eq!(
                response.status, 200,
                "poll of {operation_url} failed: {}",
                response.text
            );
            if response.body["status"] != "InProgress" {
                return response;
            }
        }
        panic!("operation {operation_url} still in progress after 20 polls");
    }

    /// Sends an ARM write and polls its operation to the end; returns the write's response.
    pub async fn arm_write(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let response = self.arm(method, path, body).await;
        assert!(
            [200, 201, 202].contains(&response.status),
            "{method} {path} answered {}: {}",
            response.status,
            response.text
        );
        let operation = response
            .header("azure-asyncoperation")
            .expect("writes return Azure-AsyncOperation");
        let status = self.wait(&operation).await;
        assert_eq!(
            status.body["status"], "Succeeded",
            "operation of {method} {path} ended {}",
            status.text
        );
        response
    }
}

pub async fn request_token(http: &reqwest::Client, fake: &FakeAzure, secret: &str) -> Response {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        fake.authority_host(),
        FakeAzure::TENANT
    );
    refuse_real_endpoint(&url).expect("tests only call the fake");
    let scope = format!("{}/.default", fake.url());
    let form = format!(
        "client_id={}&client_secret={}&grant_type=client_credentials&scope={}",
        FakeAzure::CLIENT_ID,
        secret,
        scope.replace(':', "%3A").replace('/', "%2F")
    );
    let response = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("the fake answers");
    into_response(response).await
}

pub async fn into_response(response: reqwest::Response) -> Response {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Response {
        status,
        headers,
        text,
        body,
    }
}

pub fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

pub fn fixture_json(relative: &str) -> Value {
    let path = fixture_path(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("parse {}: {error}", path.display()))
}

pub fn nsg_path(group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/networkSecurityGroups/{name}"
    )
}

pub fn vnet_path(group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/{name}"
    )
}

pub fn nic_path(group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/networkInterfaces/{name}"
    )
}

/// Returns every key path of a JSON value, such as `/properties/securityRules[]/name`.
/// Array items share one `[]` segment, so the set is the union over the items.
pub fn key_paths(value: &Value) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    collect_paths(value, String::new(), &mut paths);
    paths
}

fn collect_paths(value: &Value, prefix: String, paths: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let path = format!("{prefix}/{key}");
                paths.insert(path.clone());
                collect_paths(child, path, paths);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_paths(item, format!("{prefix}[]"), paths);
            }
        }
        _ => {}
    }
}

/// Returns whether a key path is, or lies under, a key whose name is in `names`.
fn under_any(path: &str, names: &[&str]) -> bool {
    path.split('/')
        .any(|segment| names.contains(&segment.trim_end_matches("[]")))
}

/// Asserts that `actual` has the same key paths as `expected`, except the
/// keys named in `extra_allowed` (which `actual` may add) and in
/// `missing_allowed` (which `actual` may lack).
pub fn assert_same_keys(
    context: &str,
    actual: &Value,
    expected: &Value,
    extra_allowed: &[&str],
    missing_allowed: &[&str],
) {
    let actual_paths = key_paths(actual);
    let expected_paths = key_paths(expected);
    let missing: Vec<&String> = expected_paths
        .difference(&actual_paths)
        .filter(|path| !under_any(path, missing_allowed))
        .collect();
    let extra: Vec<&String> = actual_paths
        .difference(&expected_paths)
        .filter(|path| !under_any(path, extra_allowed))
        .collect();
    assert!(
        missing.is_empty(),
        "{context}: keys missing from the fake's answer: {missing:?}\nanswer: {actual:#}"
    );
    assert!(
        extra.is_empty(),
        "{context}: keys the example does not have: {extra:?}\nanswer: {actual:#}"
    );
}

/// Keys that the fake adds to ARM bodies although the spec examples leave them
/// out: live ARM returns them, as the recordings show (`etag`, `type` of child
/// resources, `resourceGuid`), and `flushConnection` defaults to false on every NSG.
pub const ARM_EXTRA_KEYS: &[&str] = &["etag", "type", "resourceGuid", "flushConnection"];
