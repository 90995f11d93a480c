//! Microsoft Graph behaviour of the fake, checked against the documented
//! responses (fixtures/graph/FACTS.md) and the generated mocks
//! (fixtures/graph/graph-mocks-subset.json).

mod common;

use common::{Client, assert_same_keys, fixture_json};
use contain_azure_fake::Fault;
use serde_json::{Value, json};

/// Returns the body of the first mock with this method and URL (after the host).
fn mock(method: &str, url: &str) -> Value {
    let mocks = fixture_json("graph/graph-mocks-subset.json");
    let full = format!("https://graph.microsoft.com{url}");
    mocks["mocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mock| mock["request"]["method"] == method && mock["request"]["url"] == full.as_str())
        .unwrap_or_else(|| panic!("no mock for {method} {url}"))["response"]
        .clone()
}

const ALICE: &str = "6e7b768e-07e2-4810-8459-485f84f8f204";

fn seed_users(client: &Client) {
    client.fake.insert_graph(
        "users",
        json!({
            "id": ALICE,
            "userPrincipalName": "alice@contoso.com",
            "displayName": "Alice",
            "givenName": "Alice",
            "postalCode": "98004",
            "identities": [{ "signInType": "userPrincipalName", "issuer": "contoso.com", "issuerAssignedId": "alice@contoso.com" }],
            "accountEnabled": true,
            "userType": "Member",
            "memberOf": [
                { "id": "role-1", "displayName": "Security Reader", "roleTemplateId": "5d6b6bb7-de71-4623-b4af-96380a352509" },
                { "@odata.type": "#microsoft.graph.group", "id": "group-1", "displayName": "All Users" }
            ]
        }),
    );
    client.fake.insert_graph(
        "users",
        json!({ "id": "guest-1", "userPrincipalName": "bob_fabrikam.com#EXT#@contoso.com", "accountEnabled": true, "userType": "Guest" }),
    );
    client.fake.insert_graph(
        "users",
        json!({ "id": "admin-1", "userPrincipalName": "admin@contoso.com", "accountEnabled": true, "userType": "Member",
                "fakeInsufficientPrivileges": true }),
    );
}

#[tokio::test]
async fn user_get_by_id_and_upn() {
    let client = Client::start().await;
    seed_users(&client);
    let by_id = client.graph("GET", &format!("/users/{ALICE}"), None).await;
    assert_eq!(by_id.status, 200);
    assert_eq!(
        by_id.body["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
    );
    assert!(
        by_id.body.get("memberOf").is_none(),
        "the seeded memberOf is not a user property"
    );
    let by_upn = client
        .graph("GET", "/users/alice%40contoso.com", None)
        .await;
    assert_eq!(by_upn.body["id"], ALICE);
}

#[tokio::test]
async fn user_select_matches_mock() {
    let client = Client::start().await;
    seed_users(&client);
    let expected = mock(
        "GET",
        "/v1.0/users/*?$select=displayName,givenName,postalCode,identities",
    );
    let answer = client
        .graph(
            "GET",
            &format!("/users/{ALICE}?$select=displayName,givenName,postalCode,identities"),
            None,
        )
        .await;
    assert_eq!(answer.status, expected["statusCode"]);
    // The fake adds id to every $select response.
    assert_same_keys(
        "user $select",
        &answer.body,
        &expected["body"],
        &["id"],
        &[],
    );
    assert_eq!(
        answer.body["@odata.context"],
        expected["body"]["@odata.context"]
    );
}

#[tokio::test]
async fn user_disable_and_protected_admin() {
    let client = Client::start().await;
    seed_users(&client);
    let answer = client
        .graph(
            "PATCH",
            "/users/alice@contoso.com",
            Some(&json!({ "accountEnabled": false })),
        )
        .await;
    assert_eq!(answer.status, 204);
    assert!(answer.text.is_empty());
    assert_eq!(
        client.fake.get_graph("users", ALICE).unwrap()["accountEnabled"],
        false
    );

    let denied = client
        .graph(
            "PATCH",
            "/users/admin-1",
            Some(&json!({ "accountEnabled": false })),
        )
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        denied.body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    assert_eq!(
        client.fake.get_graph("users", "admin-1").unwrap()["accountEnabled"],
        true
    );
}

#[tokio::test]
async fn revoke_matches_mock() {
    let client = Client::start().await;
    seed_users(&client);
    let expected = mock("POST", "/v1.0/me/revokeSignInSessions");
    let answer = client
        .graph(
            "POST",
            &format!("/users/{ALICE}/revokeSignInSessions"),
            None,
        )
        .await;
    assert_eq!(answer.status, expected["statusCode"]);
    assert_eq!(answer.body, expected["body"]);
    let user = client.fake.get_graph("users", ALICE).unwrap();
    assert!(
        user["signInSessionsValidFromDateTime"].is_string(),
        "revocation sets signInSessionsValidFromDateTime"
    );
}

#[tokio::test]
async fn guest_revoke_is_noop_success() {
    let client = Client::start().await;
    seed_users(&client);
    let before = client.fake.get_graph("users", "guest-1").unwrap();
    let answer = client
        .graph("POST", "/users/guest-1/revokeSignInSessions", None)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["value"], true);
    assert_eq!(
        client.fake.get_graph("users", "guest-1").unwrap(),
        before,
        "a guest's sessions are not revoked"
    );
}

#[tokio::test]
async fn directory_roles_of_user() {
    let client = Client::start().await;
    seed_users(&client);
    let roles = client
        .graph(
            "GET",
            &format!("/users/{ALICE}/memberOf/microsoft.graph.directoryRole"),
            None,
        )
        .await;
    assert_eq!(roles.status, 200);
    let value = roles.body["value"].as_array().unwrap();
    assert_eq!(value.len(), 1, "the group is not a directory role");
    assert_eq!(value[0]["displayName"], "Security Reader");
    assert_eq!(value[0]["@odata.type"], "#microsoft.graph.directoryRole");
    let all = client
        .graph("GET", &format!("/users/{ALICE}/memberOf"), None)
        .await;
    assert_eq!(all.body["value"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn user_count_needs_eventual() {
    let client = Client::start().await;
    seed_users(&client);
    let path = "/graph/v1.0/users/$count?$filter=endswith(userPrincipalName,'@contoso.com')";
    let counted = client
        .send("GET", path, None, &[("ConsistencyLevel", "eventual")])
        .await;
    assert_eq!(counted.status, 200);
    assert_eq!(
        counted.header("content-type").as_deref(),
        Some("text/plain")
    );
    assert_eq!(counted.text, "3");
    let plain = client.send("GET", path, None, &[]).await;
    assert_eq!(plain.status, 400);
    let fabrikam = client
        .send(
            "GET",
            "/graph/v1.0/users/$count?$filter=endswith(userPrincipalName,'@fabrikam.com')",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(fabrikam.text, "0");
}

fn seed_service_principal(client: &Client) -> Value {
    let mut principal = mock("GET", "/v1.0/servicePrincipals/*")["body"].clone();
    principal["appRoleAssignedTo"] =
        mock("GET", "/v1.0/servicePrincipals/*/appRoleAssignedTo")["body"]["value"].clone();
    client
        .fake
        .insert_graph("servicePrincipals", principal.clone());
    principal
}

#[tokio::test]
async fn service_principal_matches_mock() {
    let client = Client::start().await;
    let principal = seed_service_principal(&client);
    let expected = mock("GET", "/v1.0/servicePrincipals/*");
    let id = principal["id"].as_str().unwrap();
    let by_id = client
        .graph("GET", &format!("/servicePrincipals/{id}"), None)
        .await;
    assert_eq!(by_id.status, expected["statusCode"]);
    assert_same_keys(
        "servicePrincipal",
        &by_id.body,
        &expected["body"],
        &["@odata.context"],
        &[],
    );
    let by_app_id = client
        .graph("GET", "/servicePrincipals(appId='appId-value')", None)
        .await;
    assert_eq!(by_app_id.body["id"], id);

    let patch_mock = mock("PATCH", "/v1.0/servicePrincipals/*");
    let disabled = client
        .graph(
            "PATCH",
            "/servicePrincipals(appId='appId-value')",
            Some(&json!({ "accountEnabled": false })),
        )
        .await;
    assert_eq!(disabled.status, patch_mock["statusCode"]);
    assert_eq!(
        client.fake.get_graph("servicePrincipals", id).unwrap()["accountEnabled"],
        false
    );
}

#[tokio::test]
async fn app_role_assigned_to_matches_mock() {
    let client = Client::start().await;
    let principal = seed_service_principal(&client);
    let expected = mock("GET", "/v1.0/servicePrincipals/*/appRoleAssignedTo");
    let answer = client
        .graph(
            "GET",
            &format!(
                "/servicePrincipals/{}/appRoleAssignedTo",
                principal["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(answer.status, expected["statusCode"]);
    assert_same_keys(
        "appRoleAssignedTo",
        &answer.body,
        &expected["body"],
        &[],
        &[],
    );
    assert_eq!(answer.body["value"][0]["principalType"], "User");
}

fn seed_application(client: &Client) {
    client.fake.insert_graph(
        "applications",
        json!({
            "id": "app-object-1",
            "appId": "11112222-3333-4444-5555-666677778888",
            "displayName": "payroll",
            "passwordCredentials": [
                { "keyId": "pw-1", "displayName": "ci", "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z", "hint": "abc" },
                { "keyId": "pw-2", "displayName": "old", "startDateTime": "2025-01-01T00:00:00Z", "endDateTime": "2026-01-01T00:00:00Z", "hint": "xyz" }
            ],
            "keyCredentials": [
                { "keyId": "key-1", "displayName": "CN=payroll", "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z", "type": "AsymmetricX509Cert", "usage": "Verify" }
            ]
        }),
    );
}

#[tokio::test]
async fn application_credentials() {
    let client = Client::start().await;
    seed_application(&client);
    let got = client
        .graph("GET", "/applications/app-object-1", None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body["passwordCredentials"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(got.body["keyCredentials"][0]["usage"], "Verify");

    let removed = client
        .graph(
            "POST",
            "/applications/app-object-1/removePassword",
            Some(&json!({ "keyId": "pw-1" })),
        )
        .await;
    assert_eq!(removed.status, 204);
    let unknown = client
        .graph(
            "POST",
            "/applications/app-object-1/removePassword",
            Some(&json!({ "keyId": "pw-1" })),
        )
        .await;
    assert_eq!(unknown.status, 400);

    let patched = client
        .graph(
            "PATCH",
            "/applications/app-object-1",
            Some(&json!({ "keyCredentials": [] })),
        )
        .await;
    assert_eq!(patched.status, 204);
    let application = client
        .fake
        .get_graph("applications", "app-object-1")
        .unwrap();
    assert_eq!(application["keyCredentials"], json!([]));
    assert_eq!(application["passwordCredentials"][0]["keyId"], "pw-2");
}

fn federation_configuration() -> Value {
    json!({
        "displayName": "Contoso IdP",
        "issuerUri": "http://contoso.com/adfs/services/trust",
        "metadataExchangeUri": "https://sts.contoso.com/adfs/services/trust/mex",
        "signingCertificate": "MIIE3jCCAsagAwIBAgIQQcyDaZz3MI",
        "passiveSignInUri": "https://sts.contoso.com/adfs/ls",
        "preferredAuthenticationProtocol": "wsFed",
        "activeSignInUri": "https://sts.contoso.com/adfs/services/trust/2005/usernamemixed",
        "signOutUri": "https://sts.contoso.com/adfs/ls",
        "promptLoginBehavior": "nativeSupport",
        "isSignedAuthenticationRequestRequired": true,
        "nextSigningCertificate": "MIIE3jCCAsagAwIBAgIQQcyDaZz3MI",
        "signingCertificateUpdateStatus": { "certificateUpdateResult": "Success", "lastRunDateTime": "2026-01-01T00:00:00Z" },
        "federatedIdpMfaBehavior": "rejectMfaByFederatedIdp",
        "passwordResetUri": "https://sts.contoso.com/adfs/passwordReset"
    })
}

#[tokio::test]
async fn domain_federation_lifecycle() {
    let client = Client::start().await;
    client.fake.insert_graph(
        "domains",
        json!({ "id": "contoso.com", "isVerified": true, "federationConfiguration": [federation_configuration()] }),
    );
    let before = client.fake.state();
    let domain = client.graph("GET", "/domains/contoso.com", None).await;
    assert_eq!(domain.body["authenticationType"], "Federated");

    let listed = client
        .graph("GET", "/domains/contoso.com/federationConfiguration", None)
        .await;
    let configurations = listed.body["value"].as_array().unwrap();
    assert_eq!(configurations.len(), 1);
    assert_eq!(
        configurations[0]["@odata.type"],
        "#microsoft.graph.internalDomainFederation"
    );
    let id = configurations[0]["id"].as_str().unwrap().to_string();

    let deleted = client
        .graph(
            "DELETE",
            &format!("/domains/contoso.com/federationConfiguration/{id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        client.graph("GET", "/domains/contoso.com", None).await.body["authenticationType"],
        "Managed"
    );

    let created = client
        .graph(
            "POST",
            "/domains/contoso.com/federationConfiguration",
            Some(&federation_configuration()),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_ne!(
        created.body["id"],
        id.as_str(),
        "re-creation assigns a new id"
    );
    assert_eq!(
        client.graph("GET", "/domains/contoso.com", None).await.body["authenticationType"],
        "Federated"
    );
    assert_eq!(
        client.fake.state(),
        before,
        "re-creating the configuration restores the state"
    );

    let managed = client
        .graph(
            "PATCH",
            "/domains/contoso.com",
            Some(&json!({ "authenticationType": "Managed" })),
        )
        .await;
    assert_eq!(managed.status, 204);
    let listed = client
        .graph("GET", "/domains/contoso.com/federationConfiguration", None)
        .await;
    assert_eq!(
        listed.body["value"],
        json!([]),
        "PATCH to Managed removes the federation configuration"
    );
}

#[tokio::test]
async fn not_found_error_shape() {
    let client = Client::start().await;
    let answer = client.graph("GET", "/users/nobody@contoso.com", None).await;
    assert_eq!(answer.status, 404);
    let error = &answer.body["error"];
    assert_eq!(error["code"], "Request_ResourceNotFound");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("nobody@contoso.com")
    );
    assert!(error["innerError"]["request-id"].is_string());
    assert!(error["innerError"]["date"].is_string());
}

#[tokio::test]
async fn missing_token_is_401() {
    let client = Client::start().await;
    let url = format!("{}/v1.0/users/x", client.fake.graph_endpoint());
    let answer = common::into_response(client.http.get(url).send().await.unwrap()).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["error"]["code"], "InvalidAuthenticationToken");
}

#[tokio::test]
async fn batch_of_21_is_refused() {
    let client = Client::start().await;
    let requests: Vec<Value> = (0..21)
        .map(|index| json!({ "id": index.to_string(), "method": "GET", "url": "/users/x" }))
        .collect();
    let answer = client
        .graph("POST", "/$batch", Some(&json!({ "requests": requests })))
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["code"], "BadRequest");
}

#[tokio::test]
async fn batch_runs_inner_requests() {
    let client = Client::start().await;
    seed_users(&client);
    let batch = json!({ "requests": [
        { "id": "1", "method": "PATCH", "url": format!("/users/{ALICE}"), "headers": { "Content-Type": "application/json" },
          "body": { "accountEnabled": false } },
        { "id": "2", "method": "POST", "url": format!("/users/{ALICE}/revokeSignInSessions"), "dependsOn": ["1"] },
        { "id": "3", "method": "PATCH", "url": "/users/missing", "body": { "accountEnabled": false } },
        { "id": "4", "method": "POST", "url": "/users/missing/revokeSignInSessions", "dependsOn": ["3"] },
        { "id": "5", "method": "GET", "url": "/users/guest-1?$select=userType" }
    ] });
    let answer = client.graph("POST", "/$batch", Some(&batch)).await;
    assert_eq!(answer.status, 200);
    let responses = answer.body["responses"].as_array().unwrap();
    let by_id = |id: &str| {
        responses
            .iter()
            .find(|response| response["id"] == id)
            .unwrap_or_else(|| panic!("response {id}"))
    };
    assert_eq!(by_id("1")["status"], 204);
    assert_eq!(by_id("2")["status"], 200);
    assert_eq!(by_id("2")["body"]["value"], true);
    assert_eq!(by_id("3")["status"], 404);
    assert_eq!(
        by_id("4")["status"],
        424,
        "a request whose dependency failed"
    );
    assert_eq!(by_id("5")["body"]["userType"], "Guest");
    assert_eq!(
        client.fake.get_graph("users", ALICE).unwrap()["accountEnabled"],
        false
    );

    let inner: Vec<String> = client
        .fake
        .requests()
        .iter()
        .map(|request| format!("{} {}", request.method, request.path))
        .collect();
    assert!(
        inner.contains(&format!("PATCH /graph/v1.0/users/{ALICE}")),
        "inner requests are recorded: {inner:?}"
    );
}

#[tokio::test]
async fn batch_inner_fault_429() {
    let client = Client::start().await;
    seed_users(&client);
    client
        .fake
        .inject(Fault::new("PATCH", "/users/guest-1", 429, "TooManyRequests").retry_after(5));
    let batch = json!({ "requests": [
        { "id": "a", "method": "PATCH", "url": "/users/guest-1", "body": { "accountEnabled": false } },
        { "id": "b", "method": "PATCH", "url": format!("/users/{ALICE}"), "body": { "accountEnabled": false } }
    ] });
    let answer = client.graph("POST", "/$batch", Some(&batch)).await;
    assert_eq!(
        answer.status, 200,
        "a throttled inner request does not fail the batch"
    );
    let responses = answer.body["responses"].as_array().unwrap();
    assert_eq!(responses[0]["status"], 429);
    assert_eq!(responses[0]["headers"]["Retry-After"], "5");
    assert_eq!(responses[0]["body"]["error"]["code"], "TooManyRequests");
    assert_eq!(responses[1]["status"], 204);
    assert_eq!(
        client.fake.get_graph("users", "guest-1").unwrap()["accountEnabled"],
        true
    );

    let retried = client.graph("POST", "/$batch", Some(&batch)).await;
    assert_eq!(
        retried.body["responses"][0]["status"], 204,
        "the fault is used up"
    );
}

#[tokio::test]
async fn graph_state_restored_by_inverse() {
    let client = Client::start().await;
    seed_users(&client);
    let before = client.fake.state();
    client
        .graph(
            "PATCH",
            &format!("/users/{ALICE}"),
            Some(&json!({ "accountEnabled": false })),
        )
        .await;
    client
        .graph(
            "POST",
            &format!("/users/{ALICE}/revokeSignInSessions"),
            None,
        )
        .await;
    assert_ne!(client.fake.state(), before);
    client
        .graph(
            "PATCH",
            &format!("/users/{ALICE}"),
            Some(&json!({ "accountEnabled": true })),
        )
        .await;
    assert_eq!(
        client.fake.state(),
        before,
        "revocation time is left out of state()"
    );
}
