//! The contain-azure-fake binary: seeding from a file and serving until stopped.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use contain_azure_fake::{FakeAzure, refuse_real_endpoint};
use serde_json::json;

#[tokio::test]
async fn binary_serves_seed() {
    let seed = json!({
        "arm": {
            "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/seeded": { "location": "westus" }
        },
        "graph": { "users": [{ "id": "u1", "userPrincipalName": "u1@contoso.com", "accountEnabled": true }] }
    });
    let seed_path = std::env::temp_dir().join(format!(
        "contain-azure-fake-seed-{}.json",
        std::process::id()
    ));
    std::fs::write(&seed_path, seed.to_string()).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_contain-azure-fake"))
        .arg("--seed")
        .arg(&seed_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    refuse_real_endpoint(&url).unwrap();

    let http = reqwest::Client::new();
    let token_url = format!("{url}/login/{}/oauth2/v2.0/token", FakeAzure::TENANT);
    let form = format!(
        "client_id={}&client_secret={}&grant_type=client_credentials&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
        FakeAzure::CLIENT_ID,
        FakeAzure::CLIENT_SECRET
    );
    let token = common::into_response(http.post(token_url).body(form).send().await.unwrap()).await;
    let token = token.body["access_token"].as_str().unwrap().to_string();
    let nsg_url = format!(
        "{url}/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/seeded?api-version=2024-05-01"
    );
    let nsg =
        common::into_response(http.get(nsg_url).bearer_auth(&token).send().await.unwrap()).await;
    let user = common::into_response(
        http.get(format!("{url}/graph/v1.0/users/u1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;

    // Stop the server the way a test harness does: SIGTERM to the process it started.
    let terminated = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(terminated.success());
    let output = child.wait_with_output().unwrap();
    std::fs::remove_file(&seed_path).ok();
    assert!(
        output.status.success(),
        "the binary exits cleanly on SIGTERM: {:?}",
        output.status
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("stopping on SIGTERM"));
    assert_eq!(nsg.status, 200);
    assert_eq!(
        nsg.body["properties"]["defaultSecurityRules"]
            .as_array()
            .map(Vec::len),
        Some(6)
    );
    assert_eq!(user.body["userPrincipalName"], "u1@contoso.com");
}

#[test]
fn binary_rejects_bad_seed() {
    let seed_path = std::env::temp_dir().join(format!(
        "contain-azure-fake-bad-seed-{}.json",
        std::process::id()
    ));
    std::fs::write(&seed_path, r#"{"arm": {"/not/an/arm/id": {}}}"#).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_contain-azure-fake"))
        .arg("--seed")
        .arg(&seed_path)
        .output()
        .unwrap();
    std::fs::remove_file(&seed_path).ok();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/not/an/arm/id"),
        "stderr names the bad id: {stderr}"
    );
}
