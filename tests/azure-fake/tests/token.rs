//! The Entra ID token endpoint of the fake.

mod common;

use common::{Client, request_token};
use contain_azure_fake::{FakeAzure, refuse_real_endpoint};

#[tokio::test]
async fn right_secret_gets_token() {
    let fake = FakeAzure::start().await;
    let answer = request_token(&reqwest::Client::new(), &fake, FakeAzure::CLIENT_SECRET).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 3599);
    assert_eq!(answer.body["ext_expires_in"], 3599);
    assert!(
        answer.body["access_token"]
            .as_str()
            .is_some_and(|token| token.len() >= 32)
    );
}

/// azure_identity joins `/{tenant}/oauth2/v2.0/token` onto the authority host
/// as an absolute path, so its request goes to the root of the fake.
#[tokio::test]
async fn token_path_without_login_prefix() {
    let fake = FakeAzure::start().await;
    let url = format!("{}/{}/oauth2/v2.0/token", fake.url(), FakeAzure::TENANT);
    let form = format!(
        "client_id={}&client_secret={}&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        FakeAzure::CLIENT_ID,
        FakeAzure::CLIENT_SECRET
    );
    let response = reqwest::Client::new()
        .post(url)
        .body(form)
        .send()
        .await
        .unwrap();
    let answer = common::into_response(response).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["token_type"], "Bearer");
}

#[tokio::test]
async fn wrong_secret_is_rejected() {
    let fake = FakeAzure::start().await;
    let answer = request_token(&reqwest::Client::new(), &fake, "wrong-secret").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["error"], "invalid_client");
    assert_eq!(answer.body["error_codes"], serde_json::json!([7000215]));
    assert!(
        answer.body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: Invalid client secret provided.")
    );
}

#[tokio::test]
async fn wrong_tenant_is_rejected() {
    let fake = FakeAzure::start().await;
    let url = format!(
        "{}/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token",
        fake.authority_host()
    );
    let form = format!(
        "client_id={}&client_secret={}&grant_type=client_credentials&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
        FakeAzure::CLIENT_ID,
        FakeAzure::CLIENT_SECRET
    );
    let response = reqwest::Client::new()
        .post(url)
        .body(form)
        .send()
        .await
        .unwrap();
    let answer = common::into_response(response).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error_codes"], serde_json::json!([90002]));
}

#[tokio::test]
async fn token_requests_recorded_without_secret() {
    let client = Client::start().await;
    let requests = client.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].path,
        format!("/login/{}/oauth2/v2.0/token", FakeAzure::TENANT)
    );
    assert_eq!(requests[0].body["grant_type"], "client_credentials");
    assert!(requests[0].body.get("client_secret").is_none());
}

#[test]
fn real_endpoints_are_refused() {
    for allowed in [
        "http://127.0.0.1:8080",
        "http://localhost:1/graph",
        "http://[::1]:9/login",
        "https://LOCALHOST",
    ] {
        assert_eq!(refuse_real_endpoint(allowed), Ok(()), "{allowed}");
    }
    for refused in [
        "https://management.azure.com",
        "https://graph.microsoft.com/v1.0",
        "https://login.microsoftonline.com",
        "http://169.254.169.254/metadata/identity",
        "http://127.0.0.1@management.azure.com/",
        "http://127.0.0.1.example.com/",
        "127.0.0.1:8080",
    ] {
        assert!(refuse_real_endpoint(refused).is_err(), "{refused}");
    }
}
