//! Conformance of the Entra ID actions against the fake Graph: plan writes nothing, apply
//! contains, and rollback restores what can be restored and notes what cannot.

mod common;

use common::{start, start_with_secret};
use contain_azure::{APPLICATION, DOMAIN, SERVICE_PRINCIPAL, USER};
use contain_core::{ActionKind, ErrorKind, Provider};
use serde_json::json;

const ALICE: &str = "8d3f1a2b-0000-4000-8000-0000000a11ce";
const GUEST: &str = "8d3f1a2b-0000-4000-8000-00000000b0b0";
const APP_SP: &str = "5e1d0c9a-0000-4000-8000-0000000005a5";
const APP: &str = "5e1d0c9a-0000-4000-8000-0000000000a9";

fn seed(harness: &common::Harness) {
    let fake = &harness.fake;
    fake.insert_graph("users", json!({ "id": ALICE, "userPrincipalName": "alice@contoso.com", "displayName": "Alice", "accountEnabled": true,
        "userType": "Member", "signInSessionsValidFromDateTime": "2026-11-01T00:00:00Z",
        "memberOf": [{ "id": "r1", "displayName": "Global Administrator" }] }));
    fake.insert_graph("users", json!({ "id": GUEST, "userPrincipalName": "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com", "displayName": "Bob",
        "accountEnabled": true, "userType": "Guest", "signInSessionsValidFromDateTime": "2026-11-01T00:00:00Z" }));
    fake.insert_graph("servicePrincipals", json!({ "id": APP_SP, "appId": APP, "displayName": "Payroll SaaS", "accountEnabled": true,
        "appRoleAssignedTo": [{ "principalId": ALICE, "principalType": "User", "principalDisplayName": "Alice" }] }));
    fake.insert_graph("applications", json!({ "id": APP, "appId": APP, "displayName": "Payroll SaaS",
        "passwordCredentials": [
            { "keyId": "11111111-0000-4000-8000-000000000001", "displayName": "ci", "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z", "hint": "abc" },
            { "keyId": "11111111-0000-4000-8000-000000000002", "displayName": "backdoor", "startDateTime": "2026-12-03T10:00:00Z", "endDateTime": "2028-12-03T10:00:00Z", "hint": "xyz" } ],
        "keyCredentials": [] }));
    fake.insert_graph("domains", json!({ "id": "contoso.com", "authenticationType": "Federated", "isVerified": true,
        "federationConfiguration": [{ "id": "fed-1", "displayName": "Contoso ADFS", "issuerUri": "http://adfs.contoso.com/adfs/services/trust",
            "metadataExchangeUri": "https://adfs.contoso.com/adfs/services/trust/mex", "passiveSignInUri": "https://adfs.contoso.com/adfs/ls",
            "activeSignInUri": "https://adfs.contoso.com/adfs/services/trust/2005/usernamemixed", "signOutUri": "https://adfs.contoso.com/adfs/ls",
            "signingCertificate": "MIIC8DCCAdigAwIBAgIQ", "nextSigningCertificate": "MIIC8DCCAdigAwIBAgIR", "preferredAuthenticationProtocol": "wsFed",
            "federatedIdpMfaBehavior": "acceptIfMfaDoneByFederatedIdp", "promptLoginBehavior": "nativeSupport", "isSignedAuthenticationRequestRequired": true,
            "signingCertificateUpdateStatus": { "certificateUpdateResult": "success", "lastRunDateTime": "2026-11-30T00:00:00Z" } }] }));
    fake.insert_graph("users", json!({ "id": "8d3f1a2b-0000-4000-8000-000000000c01", "userPrincipalName": "carol@contoso.com", "accountEnabled": true, "userType": "Member" }));
}

#[tokio::test]
async fn user_is_disabled_and_revoked() {
    let harness = start().await;
    seed(&harness);
    harness.fake.clear_requests();

    let planned = harness.plan(ActionKind::Revoke, USER, "alice@contoso.com", json!({})).await;
    assert!(harness.writes().is_empty(), "plan wrote: {:?}", harness.writes());
    assert_eq!(planned.plan.operations.len(), 2);
    assert!(planned.plan.notes.iter().any(|note| note.contains("Global Administrator")), "{:?}", planned.plan.notes);

    let applied = harness.apply(&planned).await.expect("apply");
    let user = harness.fake.get_graph("users", ALICE).unwrap();
    assert_eq!(user["accountEnabled"], false);
    assert_ne!(user["signInSessionsValidFromDateTime"], "2026-11-01T00:00:00Z", "sessions revoked");

    let notes = harness.rollback(&planned, &applied).await;
    let user = harness.fake.get_graph("users", ALICE).unwrap();
    assert_eq!(user["accountEnabled"], true, "rollback enables the account again");
    assert!(notes.is_empty(), "{notes:?}");
    let kinds: Vec<&str> = applied.iter().map(|(op, _)| op.kind.as_str()).collect();
    assert_eq!(kinds, ["entra.user_sessions", "entra.user_enabled"], "an administrator's sessions are revoked before the disable Graph may refuse");
    assert!(!applied[0].0.reversible, "revocation is journaled as irreversible");
}

#[tokio::test]
async fn guest_is_disabled_instead_of_revoked() {
    let harness = start().await;
    seed(&harness);
    let guest = "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com";

    let rejected = harness.plan(ActionKind::Revoke, USER, guest, json!({ "disable": false })).await;
    assert!(rejected.plan.uncontainable.as_deref().unwrap_or_default().contains("guest"), "{:?}", rejected.plan.uncontainable);

    let planned = harness.plan(ActionKind::Revoke, USER, guest, json!({ "disable": false, "disable_guests": true })).await;
    assert!(planned.plan.notes.iter().any(|note| note.contains("not contained by revocation")));
    let kinds: Vec<&str> = planned.plan.operations.iter().map(|op| op.kind.as_str()).collect();
    assert_eq!(kinds, ["entra.user_enabled"]);
    harness.fake.clear_requests();
    harness.apply(&planned).await.expect("apply");
    assert_eq!(harness.fake.get_graph("users", GUEST).unwrap()["accountEnabled"], false);
    assert!(harness.fake.requests().iter().all(|r| !r.path.ends_with("/revokeSignInSessions")), "no revocation is sent for a guest");
}

#[tokio::test]
async fn admin_that_cannot_be_disabled_is_explained() {
    let harness = start().await;
    harness.fake.insert_graph("users", json!({ "id": ALICE, "userPrincipalName": "alice@contoso.com", "accountEnabled": true, "userType": "Member",
        "fakeInsufficientPrivileges": true }));
    let planned = harness.plan(ActionKind::Revoke, USER, ALICE, json!({ "revoke_sessions": false })).await;

    let error = harness.apply(&planned).await.expect_err("403");
    assert_eq!(error.kind, ErrorKind::AccessDenied);
    assert!(error.message.contains("administrator role"), "{}", error.message);
    assert_eq!(harness.fake.get_graph("users", ALICE).unwrap()["accountEnabled"], true);
}

#[tokio::test]
async fn saas_application_sign_in_is_disabled() {
    let harness = start().await;
    seed(&harness);
    let before = harness.fake.state();
    harness.fake.clear_requests();

    let planned = harness.plan(ActionKind::DisableSso, SERVICE_PRINCIPAL, &format!("appId:{APP}"), json!({})).await;
    assert!(harness.writes().is_empty());
    assert!(planned.plan.notes.iter().any(|note| note.contains("outlive")), "{:?}", planned.plan.notes);

    let applied = harness.apply(&planned).await.expect("apply");
    assert_eq!(harness.fake.get_graph("servicePrincipals", APP_SP).unwrap()["accountEnabled"], false);
    harness.rollback(&planned, &applied).await;
    assert_eq!(harness.fake.state(), before);
}

#[tokio::test]
async fn attacker_secret_is_removed_and_journaled() {
    let harness = start().await;
    seed(&harness);
    harness.fake.clear_requests();

    let planned = harness.plan(ActionKind::Revoke, APPLICATION, APP, json!({ "added_after": "2026-12-01T00:00:00Z" })).await;
    assert!(harness.writes().is_empty());
    assert_eq!(planned.plan.operations.len(), 1);
    let facts = &planned.plan.operations[0].prior["credential"];
    assert_eq!(facts["displayName"], "backdoor");
    assert_eq!(facts["type"], "secret");
    assert_eq!(facts["endDateTime"], "2028-12-03T10:00:00Z");

    let applied = harness.apply(&planned).await.expect("apply");
    let application = harness.fake.get_graph("applications", APP).unwrap();
    let left: Vec<&str> = application["passwordCredentials"].as_array().unwrap().iter().filter_map(|c| c["displayName"].as_str()).collect();
    assert_eq!(left, ["ci"]);
    let notes = harness.rollback(&planned, &applied).await;
    assert!(notes.is_empty(), "an irreversible operation is not reverted");
}

#[tokio::test]
async fn federated_domain_is_converted_and_recreated() {
    let harness = start().await;
    seed(&harness);
    let before = harness.fake.state();
    harness.fake.clear_requests();

    let planned = harness.plan(ActionKind::DisableSso, DOMAIN, "contoso.com", json!({})).await;
    assert!(harness.writes().is_empty());
    assert!(planned.plan.notes[0].contains("(2 users)"), "{}", planned.plan.notes[0]);
    let snapshot = &planned.plan.operations[0].prior["federation"][0];
    assert_eq!(snapshot["nextSigningCertificate"], "MIIC8DCCAdigAwIBAgIR");

    let applied = harness.apply(&planned).await.expect("apply");
    assert_eq!(harness.fake.get_graph("domains", "contoso.com").unwrap()["authenticationType"], "Managed");

    let notes = harness.rollback(&planned, &applied).await;
    assert!(notes.iter().any(|note| note.contains("recreated")), "{notes:?}");
    assert_eq!(harness.fake.state(), before, "every federation field is restored");
    harness.fake.clear_requests();
    harness.rollback(&planned, &applied).await;
    assert!(harness.writes().is_empty(), "a second rollback wrote: {:?}", harness.writes());
}

#[tokio::test]
async fn wrong_secret_is_reported_without_the_secret() {
    let harness = start_with_secret("not-the-secret").await;
    let error = harness.provider.caller_identity(&common::plan_context()).await.expect_err("rejected");
    assert_eq!(error.kind, ErrorKind::AccessDenied);
    assert!(error.message.contains("client secret"), "{}", error.message);
    assert!(error.message.contains("AADSTS7000215"), "the token endpoint's reason is kept: {}", error.message);
    assert!(!error.message.contains("Azure CLI"), "a configured credential that fails ends the chain: {}", error.message);
    assert!(!error.message.contains("not-the-secret"), "the secret never appears in an error");
}

#[tokio::test]
async fn caller_identity_names_the_credential() {
    let harness = start().await;
    let identity = harness.provider.caller_identity(&common::plan_context()).await.expect("identity");
    assert_eq!(identity.provider, "azure");
    assert!(identity.principal.starts_with("client secret"), "{}", identity.principal);
    assert!(harness.fake.requests().iter().any(|r| r.path.ends_with("/oauth2/v2.0/token")), "the real credential asked the fake's token endpoint");
}

#[tokio::test]
async fn assigned_users_are_revoked_in_batches() {
    let harness = start().await;
    let users: Vec<String> = (0..45).map(|i| format!("8d3f1a2b-0000-4000-8000-{i:012}")).collect();
    for user in &users {
        harness.fake.insert_graph("users", json!({ "id": user, "userPrincipalName": format!("{user}@contoso.com"), "accountEnabled": true,
            "userType": "Member", "signInSessionsValidFromDateTime": "2026-11-01T00:00:00Z" }));
    }
    let assigned: Vec<serde_json::Value> = users.iter().map(|user| json!({ "principalId": user, "principalType": "User", "principalDisplayName": user })).collect();
    harness.fake.insert_graph("servicePrincipals", json!({ "id": APP_SP, "appId": APP, "displayName": "Payroll SaaS", "accountEnabled": true, "appRoleAssignedTo": assigned }));
    // One revocation is throttled inside a 200 batch response.
    harness.fake.inject(contain_azure_fake::Fault::new("POST", &format!("/users/{}/revokeSignInSessions", users[7]), 429, "TooManyRequests").retry_after(0).times(1));
    harness.fake.clear_requests();

    let planned = harness.plan(ActionKind::DisableSso, SERVICE_PRINCIPAL, APP_SP, json!({ "revoke_assigned_users": true })).await;
    assert!(harness.writes().is_empty());
    assert_eq!(planned.plan.operations.len(), 2);
    assert!(!planned.plan.operations[1].reversible);

    harness.apply(&planned).await.expect("apply");
    let batches: Vec<usize> = harness
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/$batch"))
        .map(|r| r.body["requests"].as_array().map(Vec::len).unwrap_or(0))
        .collect();
    assert_eq!(batches, [20, 20, 5, 1], "three batches of at most 20, then the throttled request again");
    for user in &users {
        assert_ne!(harness.fake.get_graph("users", user).unwrap()["signInSessionsValidFromDateTime"], "2026-11-01T00:00:00Z", "{user} revoked");
    }
}
