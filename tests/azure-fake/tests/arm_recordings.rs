//! Replays the recorded live ARM traffic in fixtures/arm/recordings (vcrpy
//! cassettes of azure-mgmt-network 10.0.0, api-version 2019-12-01) against the
//! fake, and compares status codes, the async operation headers, the ETag
//! header and the JSON keys of every response.

mod common;

use common::{Client, assert_same_keys, fixture_path};
use serde_json::Value;

/// Keys that api-version 2019-12-01 returns and the fake leaves out: the
/// fake follows the 2024 spec examples, which do not have them.
const KEYS_ONLY_IN_2019: &[&str] = &[
    "sourcePortRanges",
    "destinationPortRanges",
    "sourceAddressPrefixes",
    "destinationAddressPrefixes",
    "enableDdosProtection",
    "enableVmProtection",
    "delegations",
    "privateEndpointNetworkPolicies",
    "privateLinkServiceNetworkPolicies",
    "hostedWorkloads",
    "tapConfigurations",
    "nicType",
    "internalDomainNameSuffix",
];

/// Keys that the fake adds and the 2019 responses do not have: NSG
/// `flushConnection` and NIC `vnetEncryptionSupported` come from newer API
/// versions. The recorded default rules carry `etag` and `type`; the fake
/// shows default rules as the 2024 example does, without them.
const KEYS_ONLY_IN_FAKE: &[&str] = &["flushConnection", "vnetEncryptionSupported"];

struct Interaction {
    method: String,
    path: String,
    request_body: Option<Value>,
    status: u16,
    headers: Vec<String>,
    etag: Option<String>,
    body: Value,
}

fn load(name: &str) -> Vec<Interaction> {
    let path = fixture_path(&format!("arm/recordings/{name}"));
    let text = std::fs::read_to_string(&path).expect("read the cassette");
    let cassette: Value = serde_saphyr::from_str(&text).expect("parse the cassette");
    let interactions = cassette["interactions"].as_array().expect("interactions");
    interactions
        .iter()
        .map(|interaction| {
            let request = &interaction["request"];
            let response = &interaction["response"];
            let uri = request["uri"].as_str().expect("uri");
            let request_body = request["body"].as_str().map(|body| {
                // The recorder stored the NIC PUT body as a Python bytes literal, b'...'.
                let body = body
                    .strip_prefix("b'")
                    .and_then(|body| body.strip_suffix('\''))
                    .unwrap_or(body);
                serde_json::from_str(body).expect("request body is JSON")
            });
            let headers = response["headers"].as_object().expect("headers");
            let body_text = response["body"]["string"].as_str().unwrap_or_default();
            Interaction {
                method: request["method"].as_str().expect("method").to_string(),
                path: uri
                    .strip_prefix("https://management.azure.com")
                    .expect("an ARM URI")
                    .to_string(),
                request_body,
                status: response["status"]["code"].as_u64().expect("status") as u16,
                headers: headers
                    .keys()
                    .map(|name| name.to_ascii_lowercase())
                    .collect(),
                etag: headers
                    .get("etag")
                    .and_then(|values| values[0].as_str())
                    .map(str::to_string),
                body: if body_text.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(body_text).expect("response body is JSON")
                },
            }
        })
        .collect()
}

fn is_poll(interaction: &Interaction) -> bool {
    interaction.method == "GET" && interaction.path.contains("/operations/")
}

/// For a list response, keeps only the items the fake also has (the recorded
/// subscription-wide lists include resources of other resource groups).
fn comparable(recorded: &Value, answer: &Value) -> Value {
    let Some(items) = recorded.get("value").and_then(Value::as_array) else {
        return recorded.clone();
    };
    let ids: Vec<String> = answer["value"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["id"].as_str())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let matching_items: Vec<Value> = items
        .iter()
        .filter(|item| {
            item["id"]
                .as_str()
                .is_some_and(|id| ids.contains(&id.to_ascii_lowercase()))
        })
        .cloned()
        .collect();
    serde_json::json!({ "value": matching_items })
}

async fn replay(name: &str) {
    let client = Client::start().await;
    // The recordings' first poll already reports Succeeded.
    client.fake.set_async_polls(0);
    let mut last_operation: Option<String> = None;
    for (index, interaction) in load(name).iter().enumerate() {
        let step = format!(
            "{name} #{index} {} {}",
            interaction.method, interaction.path
        );
        let answer = if is_poll(interaction) {
            let url = last_operation
                .take()
                .unwrap_or_else(|| panic!("{step}: a poll without an earlier write"));
            client.send("GET", &url, None, &[]).await
        } else {
            client
                .arm(
                    &interaction.method,
                    &interaction.path,
                    interaction.request_body.as_ref(),
                )
                .await
        };
        assert_eq!(
            answer.status, interaction.status,
            "{step}: status; answer {}",
            answer.text
        );

        for header in ["azure-asyncoperation", "location", "etag"] {
            assert_eq!(
                answer.header(header).is_some(),
                interaction.headers.iter().any(|name| name == header),
                "{step}: presence of the {header} header"
            );
        }
        if interaction.etag.is_some() {
            assert_eq!(
                answer.header("etag").as_deref(),
                answer.body["etag"].as_str(),
                "{step}: ETag header equals the body's etag"
            );
        }
        if let Some(url) = answer.header("azure-asyncoperation") {
            assert!(
                url.starts_with(&format!("{}/subscriptions/", client.fake.url()))
                    && url.contains("/operations/"),
                "{step}: operation URL {url}"
            );
            last_operation = Some(url);
        }
        if let Some(url) = answer.header("location") {
            assert!(url.contains("/operationResults/"), "{step}: Location {url}");
        }

        if interaction.body.is_null() {
            assert!(
                answer.text.is_empty(),
                "{step}: the recording has no body, the fake sent {}",
                answer.text
            );
            continue;
        }
        let mut expected = comparable(&interaction.body, &answer.body);
        strip_default_rule_extras(&mut expected);
        assert_same_keys(
            &step,
            &answer.body,
            &expected,
            KEYS_ONLY_IN_FAKE,
            KEYS_ONLY_IN_2019,
        );
        // A PUT response of the fake always shows Updating. The recorded NIC PUT
        // already showed Succeeded, so only reads compare the state.
        if let Some(state) = interaction.body.pointer("/properties/provisioningState")
            && interaction.method == "GET"
        {
            assert_eq!(
                answer.body["properties"]["provisioningState"], *state,
                "{step}: provisioningState"
            );
        }
    }
}

/// Removes `etag` and `type` from recorded default rules, which the fake shows as the 2024 example does.
fn strip_default_rule_extras(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::Array(rules)) = object.get_mut("defaultSecurityRules") {
                for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
                    rule.remove("etag");
                    rule.remove("type");
                }
            }
            object.values_mut().for_each(strip_default_rule_extras);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_default_rule_extras),
        _ => {}
    }
}

#[tokio::test]
async fn nsg_recording_replays() {
    replay("test_mgmt_network.test_network_security_groups.yaml").await;
}

#[tokio::test]
async fn nic_recording_replays() {
    replay("test_mgmt_network.test_network_interface_card.yaml").await;
}

#[tokio::test]
async fn subnet_recording_replays() {
    replay("test_mgmt_network.test_subnets.yaml").await;
}

#[tokio::test]
async fn put_etag_changes_on_success() {
    // The recording shows etag A on the PUT response (Updating) and etag B on the
    // GET after the operation succeeded; the fake does the same.
    let client = Client::start().await;
    let path = common::nsg_path("rg1", "etags");
    let written = client
        .arm_write(
            "PUT",
            &path,
            Some(&serde_json::json!({ "location": "westus" })),
        )
        .await;
    assert_eq!(written.body["properties"]["provisioningState"], "Updating");
    let read = client.arm("GET", &path, None).await;
    assert_eq!(read.body["properties"]["provisioningState"], "Succeeded");
    assert_ne!(read.body["etag"], written.body["etag"]);
}
