//! ARM behaviour of the fake beyond the shapes of the examples: etags,
//! asynchronous operations, faults, validation and state snapshots.

mod common;

use common::{Client, nic_path, nsg_path, vnet_path};
use contain_azure_fake::Fault;
use serde_json::{Value, json};

fn rule(name: &str, priority: i64, direction: &str) -> Value {
    json!({ "name": name, "properties": {
        "protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "22",
        "sourceAddressPrefix": "*", "destinationAddressPrefix": "*",
        "access": "Deny", "priority": priority, "direction": direction } })
}

async fn create_nsg(client: &Client, name: &str) -> String {
    let path = nsg_path("rg1", name);
    client
        .arm_write("PUT", &path, Some(&json!({ "location": "westus" })))
        .await;
    path
}

#[tokio::test]
async fn missing_api_version_is_rejected() {
    let client = Client::start().await;
    let answer = client.send("GET", &nsg_path("rg1", "x"), None, &[]).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["code"], "MissingApiVersionParameter");
}

#[tokio::test]
async fn missing_token_is_rejected() {
    let client = Client::start().await;
    let url = format!(
        "{}{}?api-version=2024-05-01",
        client.fake.url(),
        nsg_path("rg1", "x")
    );
    let answer = common::into_response(client.http.get(&url).send().await.unwrap()).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["error"]["code"], "AuthenticationFailed");

    let forged = common::into_response(
        client
            .http
            .get(&url)
            .bearer_auth("not-issued")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(forged.status, 401);
    assert_eq!(forged.body["error"]["code"], "AuthenticationFailed");
}

#[tokio::test]
async fn if_match_mismatch_is_412() {
    let client = Client::start().await;
    let path = create_nsg(&client, "guarded").await;
    let stale = "W/\"00000000-0000-0000-0000-000000000000\"";
    let body = json!({ "location": "westus" });

    let put = client
        .arm_with("PUT", &path, Some(&body), &[("if-match", stale)])
        .await;
    assert_eq!(put.status, 412);
    assert_eq!(put.body["error"]["code"], "PreconditionFailed");
    let patch = client
        .arm_with(
            "PATCH",
            &path,
            Some(&json!({ "tags": {} })),
            &[("if-match", stale)],
        )
        .await;
    assert_eq!(patch.status, 412);
    let delete = client
        .arm_with("DELETE", &path, None, &[("if-match", stale)])
        .await;
    assert_eq!(delete.status, 412);
    let rule_put = client
        .arm_with(
            "PUT",
            &format!("{path}/securityRules/r"),
            Some(&rule("r", 100, "Inbound")),
            &[("if-match", stale)],
        )
        .await;
    assert_eq!(rule_put.status, 412);

    let current = client.arm("GET", &path, None).await.header("etag").unwrap();
    let matching = client
        .arm_with(
            "PATCH",
            &path,
            Some(&json!({ "tags": { "a": "b" } })),
            &[("if-match", &current)],
        )
        .await;
    assert_eq!(matching.status, 200);
    let any = client
        .arm_with(
            "PATCH",
            &path,
            Some(&json!({ "tags": {} })),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(any.status, 200, "If-Match: * matches an existing resource");
    let missing = client
        .arm_with(
            "PUT",
            &nsg_path("rg1", "absent"),
            Some(&body),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(
        missing.status, 412,
        "If-Match: * does not match a missing resource"
    );
}

#[tokio::test]
async fn unknown_properties_survive() {
    let client = Client::start().await;
    let path = nsg_path("rg1", "custom");
    let mut with_rule = rule("r1", 200, "Inbound");
    with_rule["properties"]["futureRuleFlag"] = json!({ "nested": [1, 2] });
    let body = json!({
        "location": "westus",
        "someNewTopLevel": "kept",
        "properties": { "securityRules": [with_rule], "futureNsgSetting": true }
    });
    client.arm_write("PUT", &path, Some(&body)).await;
    let got = client.arm("GET", &path, None).await;
    assert_eq!(got.body["someNewTopLevel"], "kept");
    assert_eq!(got.body["properties"]["futureNsgSetting"], true);
    assert_eq!(
        got.body["properties"]["securityRules"][0]["properties"]["futureRuleFlag"],
        json!({ "nested": [1, 2] })
    );

    // Writing back the whole body read keeps everything but the etags.
    client.arm_write("PUT", &path, Some(&got.body)).await;
    let again = client.arm("GET", &path, None).await;
    assert_eq!(without_etags(again.body), without_etags(got.body));
}

fn without_etags(mut value: Value) -> Value {
    match &mut value {
        Value::Object(object) => {
            object.remove("etag");
            for child in object.values_mut() {
                *child = without_etags(child.take());
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                *item = without_etags(item.take());
            }
        }
        _ => {}
    }
    value
}

#[tokio::test]
async fn change_waits_for_operation() {
    let client = Client::start().await;
    let path = create_nsg(&client, "slow").await;
    client.fake.set_async_polls(2);
    let body = json!({ "location": "westus", "properties": { "securityRules": [rule("r1", 100, "Inbound")] } });
    let answer = client.arm("PUT", &path, Some(&body)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("retry-after").as_deref(), Some("0"));
    let operation = answer.header("azure-asyncoperation").unwrap();

    let before = client.arm("GET", &path, None).await;
    assert_eq!(
        before.body["properties"]["securityRules"],
        json!([]),
        "the change is not visible before success"
    );
    for _ in 0..2 {
        let poll = client.send("GET", &operation, None, &[]).await;
        assert_eq!(poll.body, json!({ "status": "InProgress" }));
    }
    let busy = client.arm("PUT", &path, Some(&body)).await;
    assert_eq!(busy.status, 409, "a second write while the first runs");
    assert_eq!(busy.body["error"]["code"], "AnotherOperationInProgress");

    let done = client.send("GET", &operation, None, &[]).await;
    assert_eq!(done.body, json!({ "status": "Succeeded" }));
    let after = client.arm("GET", &path, None).await;
    assert_eq!(after.body["properties"]["securityRules"][0]["name"], "r1");
}

#[tokio::test]
async fn delete_location_poll() {
    let client = Client::start().await;
    let path = create_nsg(&client, "doomed").await;
    let answer = client.arm("DELETE", &path, None).await;
    assert_eq!(answer.status, 202);
    let location = answer.header("location").expect("Location");
    assert!(answer.header("azure-asyncoperation").is_some());

    let pending = client.send("GET", &location, None, &[]).await;
    assert_eq!(pending.status, 202);
    let done = client.send("GET", &location, None, &[]).await;
    assert_eq!(done.status, 204);
    assert_eq!(client.arm("GET", &path, None).await.status, 404);
}

#[tokio::test]
async fn failed_operation_changes_nothing() {
    let client = Client::start().await;
    let path = create_nsg(&client, "fragile").await;
    let before = client.fake.state();
    client.fake.fail_operations("fragile");

    let body = json!({ "location": "westus", "properties": { "securityRules": [rule("r1", 100, "Inbound")] } });
    let answer = client.arm("PUT", &path, Some(&body)).await;
    assert_eq!(answer.status, 200);
    let status = client
        .wait(&answer.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(status.body["status"], "Failed");
    assert_eq!(status.body["error"]["code"], "InternalServerError");
    assert!(status.body["error"]["message"].is_string());
    assert_eq!(
        client.fake.state(),
        before,
        "a failed operation leaves the state unchanged"
    );

    let delete = client.arm("DELETE", &path, None).await;
    assert_eq!(delete.status, 202, "the lock is released after the failure");
    client
        .wait(&delete.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(
        client.arm("GET", &path, None).await.status,
        404,
        "only the next write failed"
    );
}

#[tokio::test]
async fn fault_429_then_success() {
    let client = Client::start().await;
    client.fake.inject(
        Fault::new(
            "PUT",
            "networkSecurityGroups/busy",
            429,
            "RetryableErrorDueToAnotherOperation",
        )
        .retry_after(7),
    );
    let path = nsg_path("rg1", "busy");
    let body = json!({ "location": "westus" });

    let throttled = client.arm("PUT", &path, Some(&body)).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after").as_deref(), Some("7"));
    assert_eq!(
        throttled.body["error"]["code"],
        "RetryableErrorDueToAnotherOperation"
    );

    let retried = client.arm_write("PUT", &path, Some(&body)).await;
    assert_eq!(retried.status, 201);
}

#[tokio::test]
async fn fault_counts_its_times() {
    let client = Client::start().await;
    client.fake.inject(Fault {
        method: "*".into(),
        path_contains: "/networkSecurityGroups/".into(),
        status: 500,
        code: "InternalServerError".into(),
        retry_after: None,
        times: 2,
    });
    let path = nsg_path("rg1", "x");
    assert_eq!(client.arm("GET", &path, None).await.status, 500);
    assert_eq!(client.arm("GET", &path, None).await.status, 500);
    assert_eq!(client.arm("GET", &path, None).await.status, 404);
}

fn seed_attached_nsg(client: &Client) -> (String, String) {
    let nsg = nsg_path("rg1", "shared");
    let vnet = vnet_path("rg1", "vnet1");
    client.fake.insert(&nsg, json!({ "location": "westus" }));
    client.fake.insert(
        &vnet,
        json!({ "location": "westus", "properties": {
            "addressSpace": { "addressPrefixes": ["10.1.0.0/16"] },
            "subnets": [{ "name": "web", "properties": { "addressPrefix": "10.1.1.0/24", "networkSecurityGroup": { "id": nsg } } }] } }),
    );
    let nic = nic_path("rg1", "nic1");
    client.fake.insert(
        &nic,
        json!({ "location": "westus", "properties": {
            "networkSecurityGroup": { "id": nsg },
            "ipConfigurations": [{ "name": "ipconfig1", "properties": { "subnet": { "id": format!("{vnet}/subnets/web") } } }] } }),
    );
    (nsg, nic)
}

#[tokio::test]
async fn nsg_in_use_cannot_be_deleted() {
    let client = Client::start().await;
    let (nsg, nic) = seed_attached_nsg(&client);
    let got = client.arm("GET", &nsg, None).await;
    assert_eq!(
        got.body["properties"]["networkInterfaces"],
        json!([{ "id": nic }])
    );
    assert_eq!(
        got.body["properties"]["subnets"],
        json!([{ "id": format!("{}/subnets/web", vnet_path("rg1", "vnet1")) }])
    );

    let answer = client.arm("DELETE", &nsg, None).await;
    assert_eq!(answer.status, 409);
    assert_eq!(
        answer.body["error"]["code"],
        "InUseNetworkSecurityGroupCannotBeDeleted"
    );
}

/// An NSG delete that was accepted fails if a NIC takes the NSG while the
/// delete runs, instead of leaving the NIC with a dangling reference.
#[tokio::test]
async fn nsg_attached_during_delete() {
    let client = Client::start().await;
    let nsg = create_nsg(&client, "late").await;
    let delete = client.arm("DELETE", &nsg, None).await;
    assert_eq!(delete.status, 202);

    let nic = json!({ "location": "westus", "properties": {
        "networkSecurityGroup": { "id": nsg },
        "ipConfigurations": [{ "name": "ipconfig1", "properties": {} }] } });
    client
        .arm_write("PUT", &nic_path("rg1", "late-nic"), Some(&nic))
        .await;

    let status = client
        .wait(&delete.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(status.body["status"], "Failed");
    assert_eq!(
        status.body["error"]["code"],
        "InUseNetworkSecurityGroupCannotBeDeleted"
    );
    assert_eq!(
        client.arm("GET", &nsg, None).await.status,
        200,
        "the NSG is kept"
    );
}

#[tokio::test]
async fn subnet_in_use_cannot_be_deleted() {
    let client = Client::start().await;
    seed_attached_nsg(&client);
    let answer = client
        .arm(
            "DELETE",
            &format!("{}/subnets/web", vnet_path("rg1", "vnet1")),
            None,
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["code"], "InUseSubnetCannotBeDeleted");
}

#[tokio::test]
async fn rule_priority_is_validated() {
    let client = Client::start().await;
    let path = create_nsg(&client, "rules").await;
    let cases = [
        (
            vec![rule("low", 99, "Inbound")],
            "SecurityRuleInvalidPriority",
        ),
        (
            vec![rule("high", 4097, "Inbound")],
            "SecurityRuleInvalidPriority",
        ),
        (
            vec![rule("a", 300, "Inbound"), rule("b", 300, "Inbound")],
            "SecurityRuleConflict",
        ),
    ];
    for (rules, code) in cases {
        let body = json!({ "location": "westus", "properties": { "securityRules": rules } });
        let answer = client.arm("PUT", &path, Some(&body)).await;
        assert_eq!(answer.status, 400, "{code}");
        assert_eq!(answer.body["error"]["code"], code);
    }
    let both_directions = json!({ "location": "westus", "properties": { "securityRules": [rule("a", 300, "Inbound"), rule("b", 300, "Outbound")] } });
    assert_eq!(
        client
            .arm_write("PUT", &path, Some(&both_directions))
            .await
            .status,
        200
    );

    let conflict = client
        .arm(
            "PUT",
            &format!("{path}/securityRules/c"),
            Some(&rule("c", 300, "Outbound")),
        )
        .await;
    assert_eq!(conflict.status, 400);
    assert_eq!(conflict.body["error"]["code"], "SecurityRuleConflict");
}

#[tokio::test]
async fn rule_limit_is_enforced() {
    let client = Client::start().await;
    client.fake.set_rule_limit(2);
    let path = create_nsg(&client, "limited").await;
    let three = json!({ "location": "westus", "properties": { "securityRules": [
        rule("a", 100, "Inbound"), rule("b", 101, "Inbound"), rule("c", 102, "Inbound")] } });
    let answer = client.arm("PUT", &path, Some(&three)).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["code"], "SecurityRulesLimitReached");

    client
        .arm_write(
            "PUT",
            &format!("{path}/securityRules/a"),
            Some(&rule("a", 100, "Inbound")),
        )
        .await;
    client
        .arm_write(
            "PUT",
            &format!("{path}/securityRules/b"),
            Some(&rule("b", 101, "Inbound")),
        )
        .await;
    let third = client
        .arm(
            "PUT",
            &format!("{path}/securityRules/c"),
            Some(&rule("c", 102, "Inbound")),
        )
        .await;
    assert_eq!(third.body["error"]["code"], "SecurityRulesLimitReached");
}

#[tokio::test]
async fn rule_writes_update_the_nsg() {
    let client = Client::start().await;
    let path = create_nsg(&client, "parent").await;
    let etag_before = client.arm("GET", &path, None).await.body["etag"].clone();
    client
        .arm_write(
            "PUT",
            &format!("{path}/securityRules/ssh"),
            Some(&rule("ssh", 110, "Inbound")),
        )
        .await;
    let nsg = client.arm("GET", &path, None).await;
    assert_eq!(nsg.body["properties"]["securityRules"][0]["name"], "ssh");
    assert_ne!(nsg.body["etag"], etag_before);
    let listed = client
        .arm("GET", &format!("{path}/securityRules"), None)
        .await;
    assert_eq!(listed.body["value"].as_array().map(Vec::len), Some(1));

    client
        .arm_write("DELETE", &format!("{path}/securityRules/ssh"), None)
        .await;
    let nsg = client.arm("GET", &path, None).await;
    assert_eq!(nsg.body["properties"]["securityRules"], json!([]));
    let missing = client
        .arm("GET", &format!("{path}/securityRules/ssh"), None)
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "NotFound");
}

#[tokio::test]
async fn missing_resource_is_404() {
    let client = Client::start().await;
    let answer = client.arm("GET", &nsg_path("rg1", "nothing"), None).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["error"]["code"], "ResourceNotFound");
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing")
    );
}

#[tokio::test]
async fn state_restored_by_inverse_writes() {
    let client = Client::start().await;
    let (nsg, nic) = seed_attached_nsg(&client);
    client.fake.insert(
        &format!("{nsg}/securityRules/web"),
        rule("web", 200, "Inbound"),
    );
    let quarantine = create_nsg(&client, "quarantine").await;
    let before = client.fake.state();

    // Move the NIC to the quarantine NSG and add a rule, then undo both.
    let original_nic = client.arm("GET", &nic, None).await.body;
    let mut moved = original_nic.clone();
    moved["properties"]["networkSecurityGroup"]["id"] = json!(quarantine);
    client.arm_write("PUT", &nic, Some(&moved)).await;
    client
        .arm_write(
            "PUT",
            &format!("{nsg}/securityRules/deny-all"),
            Some(&rule("deny-all", 100, "Inbound")),
        )
        .await;
    client
        .arm_write("DELETE", &format!("{nsg}/securityRules/web"), None)
        .await;
    assert_ne!(client.fake.state(), before);

    client.arm_write("PUT", &nic, Some(&original_nic)).await;
    client
        .arm_write("DELETE", &format!("{nsg}/securityRules/deny-all"), None)
        .await;
    client
        .arm_write(
            "PUT",
            &format!("{nsg}/securityRules/web"),
            Some(&rule("web", 200, "Inbound")),
        )
        .await;
    assert_eq!(
        client.fake.state(),
        before,
        "the inverse writes restore the state exactly"
    );
}

#[tokio::test]
async fn vm_is_read_only() {
    let client = Client::start().await;
    let vm =
        "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
    client.fake.insert(
        vm,
        json!({ "location": "westus", "properties": {
            "vmId": "5c2b1f43-0000-4000-8000-000000000001",
            "networkProfile": { "networkInterfaces": [{ "id": nic_path("rg1", "nic1"), "properties": { "primary": true } }] } } }),
    );
    let got = client.arm("GET", vm, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["type"], "Microsoft.Compute/virtualMachines");
    assert_eq!(got.body["name"], "vm1");
    assert_eq!(
        got.body["properties"]["networkProfile"]["networkInterfaces"][0]["properties"]["primary"],
        true
    );
    let put = client.arm("PUT", vm, Some(&got.body)).await;
    assert_eq!(put.status, 405);
}

#[tokio::test]
async fn requests_are_recorded() {
    let client = Client::start().await;
    client.fake.clear_requests();
    let path = nsg_path("rg1", "logged");
    let body = json!({ "location": "westus" });
    client
        .arm_with("PUT", &path, Some(&body), &[("if-match", "*")])
        .await;
    let requests = client.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "PUT");
    assert_eq!(requests[0].path, path);
    assert_eq!(requests[0].query, "api-version=2024-05-01");
    assert_eq!(requests[0].if_match.as_deref(), Some("*"));
    assert_eq!(requests[0].body, body);
}

#[tokio::test]
async fn list_in_resource_group() {
    let client = Client::start().await;
    create_nsg(&client, "one").await;
    create_nsg(&client, "two").await;
    client
        .fake
        .insert(&nsg_path("rg2", "other"), json!({ "location": "westus" }));
    let listed = client
        .arm("GET", "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups", None)
        .await;
    let names: Vec<&str> = listed.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|nsg| nsg["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two"]);
    let everywhere = client
        .arm(
            "GET",
            "/subscriptions/subid/providers/Microsoft.Network/networkSecurityGroups",
            None,
        )
        .await;
    assert_eq!(everywhere.body["value"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn names_keep_their_casing() {
    let client = Client::start().await;
    let path = nsg_path("RG-Mixed", "MyNsg");
    client
        .arm_write("PUT", &path, Some(&json!({ "location": "westus" })))
        .await;
    let got = client.arm("GET", &path.to_ascii_lowercase(), None).await;
    assert_eq!(got.status, 200, "ids match case-insensitively");
    assert_eq!(got.body["id"], path.as_str());
    assert_eq!(got.body["name"], "MyNsg");
}

/// The seeding example of the README: a VM with two NICs in a VNet with two subnets.
#[tokio::test]
async fn readme_vm_seed_example() {
    let client = Client::start().await;
    let fake = &client.fake;
    let rg = "/subscriptions/subid/resourceGroups/rg1/providers";
    let vnet = format!("{rg}/Microsoft.Network/virtualNetworks/vnet1");
    fake.insert(
        &format!("{rg}/Microsoft.Network/networkSecurityGroups/web-nsg"),
        json!({ "location": "westus" }),
    );
    fake.insert(
        &vnet,
        json!({ "location": "westus", "properties": {
            "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
            "subnets": [
                { "name": "web", "properties": { "addressPrefix": "10.0.1.0/24",
                    "networkSecurityGroup": { "id": format!("{rg}/Microsoft.Network/networkSecurityGroups/web-nsg") } } },
                { "name": "mgmt", "properties": { "addressPrefix": "10.0.2.0/24" } }
            ] } }),
    );
    for (nic, subnet) in [("vm1-nic-web", "web"), ("vm1-nic-mgmt", "mgmt")] {
        fake.insert(
            &format!("{rg}/Microsoft.Network/networkInterfaces/{nic}"),
            json!({ "location": "westus", "properties": {
                "virtualMachine": { "id": format!("{rg}/Microsoft.Compute/virtualMachines/vm1") },
                "ipConfigurations": [{ "name": "ipconfig1", "properties": {
                    "subnet": { "id": format!("{vnet}/subnets/{subnet}") } } }] } }),
        );
    }
    fake.insert(
        &format!("{rg}/Microsoft.Compute/virtualMachines/vm1"),
        json!({ "location": "westus", "properties": {
            "vmId": "0f3c5e52-0000-4000-8000-000000000001",
            "networkProfile": { "networkInterfaces": [
                { "id": format!("{rg}/Microsoft.Network/networkInterfaces/vm1-nic-web"), "properties": { "primary": true } },
                { "id": format!("{rg}/Microsoft.Network/networkInterfaces/vm1-nic-mgmt"), "properties": { "primary": false } }
            ] } } }),
    );

    let vm = client
        .arm(
            "GET",
            &format!("{rg}/Microsoft.Compute/virtualMachines/vm1"),
            None,
        )
        .await;
    assert_eq!(
        vm.body["properties"]["networkProfile"]["networkInterfaces"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let web = fake
        .get(&format!("{vnet}/subnets/web"))
        .expect("subnet web");
    assert_eq!(
        web["properties"]["ipConfigurations"],
        json!([{ "id": format!("{rg}/Microsoft.Network/networkInterfaces/vm1-nic-web/ipConfigurations/ipconfig1") }])
    );
    let nic = fake
        .get(&format!(
            "{rg}/Microsoft.Network/networkInterfaces/vm1-nic-mgmt"
        ))
        .expect("NIC");
    assert_eq!(
        nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.2.4"
    );
    let effective = client
        .arm("POST", &format!("{rg}/Microsoft.Network/networkInterfaces/vm1-nic-web/effectiveNetworkSecurityGroups"), None)
        .await;
    assert_eq!(
        effective.body["value"][0]["association"]["subnet"]["id"],
        format!("{vnet}/subnets/web")
    );
}
