//! Checks the fake against the Azure REST API spec examples in
//! fixtures/arm/spec-examples: each example's request gets one of the status
//! codes the example lists, and a body with the example's JSON keys.

mod common;

use common::{
    ARM_EXTRA_KEYS, Client, assert_same_keys, fixture_json, nic_path, nsg_path, vnet_path,
};
use serde_json::{Value, json};

fn example(name: &str) -> Value {
    fixture_json(&format!("arm/spec-examples/{name}"))
}

fn listed_statuses(example: &Value) -> Vec<u16> {
    example["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(|code| code.parse().expect("status code"))
        .collect()
}

/// Asserts the status is one the example lists, and compares the body's keys
/// with the example's body for that status.
fn check(
    name: &str,
    example: &Value,
    response: &common::Response,
    extra_allowed: &[&str],
    missing_allowed: &[&str],
) {
    let statuses = listed_statuses(example);
    assert!(
        statuses.contains(&response.status),
        "{name}: the fake answered {}, the example lists {statuses:?}: {}",
        response.status,
        response.text
    );
    let expected = &example["responses"][response.status.to_string()]["body"];
    if expected.is_null() {
        assert!(
            response.text.is_empty(),
            "{name}: the example has no body for {}, the fake sent {}",
            response.status,
            response.text
        );
        return;
    }
    assert_same_keys(
        name,
        &response.body,
        expected,
        extra_allowed,
        missing_allowed,
    );
}

/// Sends a PUT example twice: the first PUT creates (201), the second updates
/// (200). `extra_allowed` names keys the example's answers leave out although
/// its request sets them.
async fn put_twice(
    client: &Client,
    name: &str,
    path: &str,
    body: &Value,
    extra_allowed: &[&str],
) -> Value {
    let example = example(name);
    let mut extra: Vec<&str> = ARM_EXTRA_KEYS.to_vec();
    extra.extend_from_slice(extra_allowed);
    let created = client.arm_write("PUT", path, Some(body)).await;
    assert_eq!(created.status, 201, "{name}: first PUT");
    check(name, &example, &created, &extra, &[]);
    let updated = client.arm_write("PUT", path, Some(body)).await;
    assert_eq!(updated.status, 200, "{name}: second PUT");
    check(name, &example, &updated, &extra, &[]);
    updated.body
}

#[tokio::test]
async fn nsg_create_example() {
    let client = Client::start().await;
    let example = example("NetworkSecurityGroupCreate.json");
    let path = nsg_path("rg1", "testnsg");
    put_twice(
        &client,
        "NetworkSecurityGroupCreate.json",
        &path,
        &example["parameters"]["parameters"],
        &[],
    )
    .await;

    let got = client.arm("GET", &path, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body["properties"]["defaultSecurityRules"],
        example["responses"]["201"]["body"]["properties"]["defaultSecurityRules"],
        "default rules must be exactly the example's"
    );
    assert_eq!(got.body["properties"]["flushConnection"], false);
    assert_eq!(got.body["properties"]["provisioningState"], "Succeeded");
}

#[tokio::test]
async fn nsg_create_with_rule_example() {
    let client = Client::start().await;
    let example = example("NetworkSecurityGroupCreateWithRule.json");
    let path = nsg_path("rg1", "testnsg");
    let body = put_twice(
        &client,
        "NetworkSecurityGroupCreateWithRule.json",
        &path,
        &example["parameters"]["parameters"],
        &[],
    )
    .await;
    let expected_rule = &example["responses"]["200"]["body"]["properties"]["securityRules"][0];
    assert_eq!(
        body["properties"]["securityRules"][0]["id"],
        expected_rule["id"]
    );
}

#[tokio::test]
async fn nsg_get_example() {
    let client = Client::start().await;
    let example = example("NetworkSecurityGroupGet.json");
    let rule_example = fixture_json("arm/spec-examples/NetworkSecurityGroupCreateWithRule.json");
    let mut seed = rule_example["parameters"]["parameters"].clone();
    seed["location"] = json!("westus");
    let path = nsg_path("rg1", "testnsg");
    client.arm_write("PUT", &path, Some(&seed)).await;

    let got = client.arm("GET", &path, None).await;
    check(
        "NetworkSecurityGroupGet.json",
        &example,
        &got,
        ARM_EXTRA_KEYS,
        &[],
    );
    let etag = got.header("etag").expect("GET returns an ETag header");
    assert_eq!(
        got.body["etag"],
        etag.as_str(),
        "the ETag header equals the body's etag"
    );
}

#[tokio::test]
async fn nsg_update_tags_example() {
    let client = Client::start().await;
    let example = example("NetworkSecurityGroupUpdateTags.json");
    let path = nsg_path("rg1", "testnsg");
    client
        .arm_write("PUT", &path, Some(&json!({ "location": "westus" })))
        .await;
    let before = client.arm("GET", &path, None).await;

    let patched = client
        .arm("PATCH", &path, Some(&example["parameters"]["parameters"]))
        .await;
    check(
        "NetworkSecurityGroupUpdateTags.json",
        &example,
        &patched,
        ARM_EXTRA_KEYS,
        &[],
    );
    assert_eq!(
        patched.body["tags"],
        example["parameters"]["parameters"]["tags"]
    );
    assert_ne!(
        patched.body["etag"], before.body["etag"],
        "a PATCH changes the etag"
    );
}

async fn seed_nsg_with_rule1(client: &Client) -> String {
    let rule_example = fixture_json("arm/spec-examples/NetworkSecurityGroupCreateWithRule.json");
    let path = nsg_path("rg1", "testnsg");
    client
        .arm_write(
            "PUT",
            &path,
            Some(&rule_example["parameters"]["parameters"]),
        )
        .await;
    path
}

#[tokio::test]
async fn rule_create_example() {
    let client = Client::start().await;
    let example = example("NetworkSecurityGroupRuleCreate.json");
    client
        .arm_write(
            "PUT",
            &nsg_path("rg1", "testnsg"),
            Some(&json!({ "location": "westus" })),
        )
        .await;
    let path = format!("{}/securityRules/rule1", nsg_path("rg1", "testnsg"));
    put_twice(
        &client,
        "NetworkSecurityGroupRuleCreate.json",
        &path,
        &example["parameters"]["securityRuleParameters"],
        &[],
    )
    .await;
}

#[tokio::test]
async fn rule_get_example() {
    let client = Client::start().await;
    let example = example("NetworkSecurityGroupRuleGet.json");
    let nsg = seed_nsg_with_rule1(&client).await;
    let got = client
        .arm("GET", &format!("{nsg}/securityRules/rule1"), None)
        .await;
    check(
        "NetworkSecurityGroupRuleGet.json",
        &example,
        &got,
        ARM_EXTRA_KEYS,
        &[],
    );
    let nsg_etag = client.arm("GET", &nsg, None).await.body["etag"].clone();
    assert_eq!(got.body["etag"], nsg_etag, "a rule carries its NSG's etag");
}

#[tokio::test]
async fn rule_delete_example() {
    let client = Client::start().await;
    let example = example("NetworkSecurityGroupRuleDelete.json");
    let nsg = seed_nsg_with_rule1(&client).await;
    let path = format!("{nsg}/securityRules/rule1");

    let deleted = client.arm("DELETE", &path, None).await;
    check(
        "NetworkSecurityGroupRuleDelete.json",
        &example,
        &deleted,
        &[],
        &[],
    );
    assert!(
        deleted.header("azure-asyncoperation").is_some(),
        "the example's 202 has Azure-AsyncOperation"
    );
    let operation = deleted.header("azure-asyncoperation").unwrap();
    assert_eq!(client.wait(&operation).await.body["status"], "Succeeded");

    let again = client.arm("DELETE", &path, None).await;
    assert_eq!(again.status, 204, "deleting a missing rule answers 204");
    check(
        "NetworkSecurityGroupRuleDelete.json",
        &example,
        &again,
        &[],
        &[],
    );
}

#[tokio::test]
async fn nic_create_example() {
    let client = Client::start().await;
    let example = example("NetworkInterfaceCreate.json");
    let path = nic_path("rg1", "test-nic");
    let body = put_twice(
        &client,
        "NetworkInterfaceCreate.json",
        &path,
        &example["parameters"]["parameters"],
        &["disableTcpStateTracking"],
    )
    .await;
    let configurations = body["properties"]["ipConfigurations"]
        .as_array()
        .expect("ipConfigurations");
    assert_eq!(configurations.len(), 2, "both ip configurations are kept");
    assert_eq!(configurations[0]["properties"]["primary"], true);
    assert_eq!(configurations[1]["properties"]["primary"], false);
    assert_eq!(
        configurations[1]["properties"]["subnet"], configurations[0]["properties"]["subnet"],
        "a secondary configuration without a subnet goes into the primary's subnet"
    );
}

#[tokio::test]
async fn nic_get_example() {
    let client = Client::start().await;
    let example = example("NetworkInterfaceGet.json");
    let stored = example["responses"]["200"]["body"].clone();
    let id = stored["id"].as_str().unwrap().to_string();
    client
        .fake
        .insert(&nsg_path("rg1", "nsg"), json!({ "location": "eastus" }));
    client.fake.insert(&id, stored);

    let got = client.arm("GET", &nic_path("rg1", "test-nic"), None).await;
    check(
        "NetworkInterfaceGet.json",
        &example,
        &got,
        ARM_EXTRA_KEYS,
        &[],
    );
    assert_eq!(
        got.body["properties"]["macAddress"], "00-0D-3A-1B-C7-21",
        "seeded values are served unchanged"
    );
}

/// Seeds the estate the effective NSG example describes: nic1 in subnet
/// rg1-vnet/default, with test-nsg on the NIC and subnet-nsg on the subnet.
fn seed_effective_estate(client: &Client) {
    let fake = &client.fake;
    fake.insert(
        &nsg_path("rg1", "test-nsg"),
        json!({
            "location": "westus",
            "properties": { "securityRules": [
                { "name": "rule1", "properties": {
                    "protocol": "Tcp", "sourcePortRange": "456", "destinationPortRange": "6579",
                    "sourceAddressPrefix": "0.0.0.0/32", "destinationAddressPrefix": "0.0.0.0/32",
                    "access": "Allow", "priority": 234, "direction": "Inbound" } },
                { "name": "default-allow-rdp", "properties": {
                    "protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "3389",
                    "sourceAddressPrefix": "1.1.1.1", "destinationAddressPrefix": "*",
                    "access": "Allow", "priority": 1000, "direction": "Inbound" } }
            ] }
        }),
    );
    fake.insert(
        &nsg_path("rg1", "subnet-nsg"),
        json!({ "location": "westus" }),
    );
    fake.insert(
        &vnet_path("rg1", "rg1-vnet"),
        json!({
            "location": "westus",
            "properties": {
                "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
                "subnets": [{ "name": "default", "properties": {
                    "addressPrefix": "10.0.0.0/24",
                    "networkSecurityGroup": { "id": nsg_path("rg1", "subnet-nsg") } } }]
            }
        }),
    );
    fake.insert(
        &nic_path("rg1", "nic1"),
        json!({
            "location": "westus",
            "properties": {
                "networkSecurityGroup": { "id": nsg_path("rg1", "test-nsg") },
                "ipConfigurations": [{ "name": "ipconfig1", "properties": {
                    "subnet": { "id": format!("{}/subnets/default", vnet_path("rg1", "rg1-vnet")) } } }]
            }
        }),
    );
}

#[tokio::test]
async fn effective_nsg_example() {
    let client = Client::start().await;
    let example = example("NetworkInterfaceEffectiveNSGList.json");
    seed_effective_estate(&client);

    let listed = client
        .arm(
            "POST",
            &format!("{}/effectiveNetworkSecurityGroups", nic_path("rg1", "nic1")),
            None,
        )
        .await;
    // Not modelled: network manager associations, and service tags expanded into prefixes.
    check(
        "NetworkInterfaceEffectiveNSGList.json",
        &example,
        &listed,
        &[],
        &["networkManager", "expandedDestinationAddressPrefix"],
    );
    let value = listed.body["value"].as_array().expect("value");
    assert_eq!(
        value.len(),
        2,
        "one entry for the subnet's NSG and one for the NIC's"
    );
    let nic_entry = value
        .iter()
        .find(|entry| entry["association"]["networkInterface"].is_object())
        .expect("NIC entry");
    let expected_rules = &example["responses"]["200"]["body"]["value"][0]["effectiveSecurityRules"];
    assert_eq!(
        nic_entry["effectiveSecurityRules"][0], expected_rules[0],
        "rule1 expands as in the example"
    );
    assert_eq!(
        nic_entry["effectiveSecurityRules"][1], expected_rules[1],
        "default-allow-rdp expands as in the example"
    );
}

#[tokio::test]
async fn subnet_create_example() {
    let client = Client::start().await;
    let example = example("SubnetCreate.json");
    client.fake.insert(
        &vnet_path("subnet-test", "vnetname"),
        json!({ "location": "westus", "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/8"] } } }),
    );
    let path = format!("{}/subnets/subnet1", vnet_path("subnet-test", "vnetname"));
    put_twice(
        &client,
        "SubnetCreate.json",
        &path,
        &example["parameters"]["subnetParameters"],
        &[],
    )
    .await;
}

#[tokio::test]
async fn subnet_get_example() {
    let client = Client::start().await;
    let example = example("SubnetGet.json");
    client.fake.insert(
        &vnet_path("subnet-test", "vnetname"),
        json!({ "location": "westus", "properties": {
            "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
            "subnets": [{ "name": "subnet1", "properties": { "addressPrefix": "10.0.0.0/16" } }] } }),
    );
    let got = client
        .arm(
            "GET",
            &format!("{}/subnets/subnet1", vnet_path("subnet-test", "vnetname")),
            None,
        )
        .await;
    check("SubnetGet.json", &example, &got, ARM_EXTRA_KEYS, &[]);
}

#[tokio::test]
async fn vnet_create_with_subnet_example() {
    let client = Client::start().await;
    let example = example("VirtualNetworkCreateSubnet.json");
    put_twice(
        &client,
        "VirtualNetworkCreateSubnet.json",
        &vnet_path("rg1", "test-vnet"),
        &example["parameters"]["parameters"],
        &[],
    )
    .await;
}

#[tokio::test]
async fn vnet_get_example() {
    let client = Client::start().await;
    let example = example("VirtualNetworkGet.json");
    let vnet = vnet_path("rg1", "test-vnet");
    client.fake.insert(
        &vnet,
        json!({ "location": "westus", "properties": {
            "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
            "subnets": [{ "name": "subnet1", "properties": { "addressPrefix": "10.0.1.0/24" } }],
            "defaultPublicNatGateway": { "id": "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/natGateways/test-ngw" } } }),
    );
    client.fake.insert(
        &nic_path("rg1", "nic1"),
        json!({ "location": "westus", "properties": { "ipConfigurations": [
            { "name": "ipconfig1", "properties": { "subnet": { "id": format!("{vnet}/subnets/subnet1") } } }] } }),
    );
    let got = client.arm("GET", &vnet, None).await;
    check(
        "VirtualNetworkGet.json",
        &example,
        &got,
        ARM_EXTRA_KEYS,
        &[],
    );
    assert_eq!(
        got.body["properties"]["subnets"][0]["properties"]["ipConfigurations"][0]["id"],
        format!("{}/ipConfigurations/ipconfig1", nic_path("rg1", "nic1")),
        "a subnet lists the NIC ip configurations in it"
    );
    assert_eq!(
        got.body["properties"]["subnets"][0]["etag"], got.body["etag"],
        "subnets share the VNet's etag"
    );
}

fn ip_group_path() -> String {
    "/subscriptions/subId/resourceGroups/myResourceGroup/providers/Microsoft.Network/ipGroups/ipGroups1".to_string()
}

/// Seeds a firewall whose network rule names the IP group, so that the
/// group's read-only `firewalls` list has an entry as in the examples.
fn seed_firewall(client: &Client) {
    client.fake.insert(
        "/subscriptions/subId/resourceGroups/myResourceGroup/providers/Microsoft.Network/azureFirewalls/azurefirewall",
        json!({ "location": "westus", "properties": { "networkRuleCollections": [{ "name": "netrulecoll", "properties": {
            "priority": 112, "action": { "type": "Deny" },
            "rules": [{ "name": "rule1", "protocols": ["TCP"], "destinationPorts": ["443"],
                "sourceIpGroups": [ip_group_path()], "destinationAddresses": ["*"] }] } }] } }),
    );
}

#[tokio::test]
async fn ip_group_create_example() {
    let client = Client::start().await;
    seed_firewall(&client);
    let example = example("IpGroupsCreate.json");
    put_twice(
        &client,
        "IpGroupsCreate.json",
        &ip_group_path(),
        &example["parameters"]["parameters"],
        &["tags"],
    )
    .await;
}

#[tokio::test]
async fn ip_group_get_example() {
    let client = Client::start().await;
    let example = example("IpGroupsGet.json");
    seed_firewall(&client);
    let create = fixture_json("arm/spec-examples/IpGroupsCreate.json");
    let mut seed = create["parameters"]["parameters"].clone();
    seed.as_object_mut().unwrap().remove("tags");
    client.fake.insert(&ip_group_path(), seed);
    let got = client.arm("GET", &ip_group_path(), None).await;
    check("IpGroupsGet.json", &example, &got, ARM_EXTRA_KEYS, &[]);
    let etag = got.body["etag"].as_str().expect("etag");
    assert!(
        etag.starts_with("W/\"") && etag.ends_with('"'),
        "etag {etag} has the form W/\"uuid\""
    );
}
