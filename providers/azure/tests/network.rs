//! Conformance of the ARM network actions against the fake: plan writes nothing, apply
//! contains, a second plan finds nothing to do, rollback restores the fake's state exactly, and
//! a second rollback writes nothing.

mod common;

use common::{RG, apply_context, start};
use contain_azure::{NSG, SUBNET, VM, VNET};
use contain_azure_fake::{FakeAzure, Fault};
use contain_core::{ActionKind, ErrorKind};
use serde_json::{Value, json};

fn vnet() -> String {
    format!("{RG}/Microsoft.Network/virtualNetworks/vnet1")
}

fn nsg(name: &str) -> String {
    format!("{RG}/Microsoft.Network/networkSecurityGroups/{name}")
}

fn nic(name: &str) -> String {
    format!("{RG}/Microsoft.Network/networkInterfaces/{name}")
}

fn vm() -> String {
    format!("{RG}/Microsoft.Compute/virtualMachines/vm1")
}

fn allow(name: &str, priority: u32, source: &str, port: &str) -> Value {
    json!({ "name": name, "properties": { "priority": priority, "access": "Allow", "direction": "Inbound", "protocol": "Tcp",
        "sourceAddressPrefix": source, "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": port } })
}

/// Seeds a VNet with an application subnet, the gateway subnet and a delegated subnet. A VM has
/// two NICs, the first with two IP configurations, an NSG, and a property the 0.21 models lack.
fn seed(fake: &FakeAzure) {
    fake.insert(&vnet(), json!({ "location": "westus", "properties": {
        "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
        "subnets": [
            { "name": "app", "properties": { "addressPrefix": "10.0.1.0/24", "networkSecurityGroup": { "id": nsg("web-nsg") } } },
            { "name": "GatewaySubnet", "properties": { "addressPrefix": "10.0.255.0/27" } },
            { "name": "functions", "properties": { "addressPrefix": "10.0.3.0/24",
                "delegations": [{ "name": "web", "properties": { "serviceName": "Microsoft.Web/serverFarms" } }] } } ] } }));
    fake.insert(&nsg("web-nsg"), json!({ "location": "westus", "properties": { "securityRules": [allow("https", 200, "*", "443")] } }));
    fake.insert(&nic("vm1-nic-a"), json!({ "location": "westus", "properties": {
        "networkSecurityGroup": { "id": nsg("web-nsg") },
        "enableAcceleratedNetworking": true,
        "auxiliaryMode": "AcceleratedConnections",
        "ipConfigurations": [
            { "name": "primary", "properties": { "primary": true, "privateIPAddress": "10.0.1.4", "subnet": { "id": format!("{}/subnets/app", vnet()) } } },
            { "name": "secondary", "properties": { "primary": false, "privateIPAddress": "10.0.1.5", "subnet": { "id": format!("{}/subnets/app", vnet()) } } } ] } }));
    fake.insert(&nic("vm1-nic-b"), json!({ "location": "westus", "properties": {
        "ipConfigurations": [{ "name": "primary", "properties": { "primary": true, "subnet": { "id": format!("{}/subnets/app", vnet()) } } }] } }));
    fake.insert(&vm(), json!({ "location": "westus", "properties": { "vmId": "0f3c5e52-0000-4000-8000-000000000001", "networkProfile": { "networkInterfaces": [
        { "id": nic("vm1-nic-a"), "properties": { "primary": true } },
        { "id": nic("vm1-nic-b"), "properties": { "primary": false } } ] } } }));
}

#[tokio::test]
async fn vm_isolation_round_trip() {
    let harness = start().await;
    seed(&harness.fake);
    let before = harness.fake.state();
    harness.fake.clear_requests();

    let planned = harness.plan(ActionKind::Isolate, VM, &vm(), json!({})).await;
    assert!(harness.writes().is_empty(), "plan wrote: {:?}", harness.writes());
    let kinds: Vec<&str> = planned.plan.operations.iter().map(|op| op.kind.as_str()).collect();
    assert_eq!(kinds, ["azure.isolation_nsg", "azure.nic_nsg", "azure.nic_nsg"]);
    assert!(planned.plan.notes.iter().any(|note| note.contains("flushConnection")));

    let applied = harness.apply(&planned).await.expect("apply");
    let group = nsg("contain-isolation-westus");
    let isolated = harness.fake.get(&nic("vm1-nic-a")).unwrap();
    assert_eq!(isolated["properties"]["networkSecurityGroup"]["id"].as_str().unwrap().to_lowercase(), group.to_lowercase());
    // The NIC was written whole: both IP configurations and the properties the models lack.
    assert_eq!(isolated["properties"]["ipConfigurations"].as_array().unwrap().len(), 2);
    assert_eq!(isolated["properties"]["auxiliaryMode"], "AcceleratedConnections");
    let created = harness.fake.get(&group).unwrap();
    assert_eq!(created["properties"]["flushConnection"], true);
    let nic_puts: Vec<_> = harness.writes().into_iter().filter(|r| r.method == "PUT" && r.path.contains("networkInterfaces")).collect();
    assert_eq!(nic_puts.len(), 2);
    assert!(nic_puts.iter().all(|put| put.if_match.is_some()), "every NIC write carries If-Match");

    harness.fake.clear_requests();
    let again = harness.plan(ActionKind::Isolate, VM, &vm(), json!({})).await;
    assert!(again.plan.operations.is_empty());
    assert!(again.plan.notes[0].starts_with("already isolated"));
    assert!(harness.writes().is_empty());

    harness.rollback(&planned, &applied).await;
    assert_eq!(harness.fake.state(), before, "rollback restores the fake's state exactly");
    harness.fake.clear_requests();
    harness.rollback(&planned, &applied).await;
    assert!(harness.writes().is_empty(), "a second rollback wrote: {:?}", harness.writes());
}

#[tokio::test]
async fn vnet_isolation_skips_reserved_subnets() {
    let harness = start().await;
    seed(&harness.fake);
    let before = harness.fake.state();
    harness.fake.clear_requests();

    let planned = harness.plan(ActionKind::Isolate, VNET, &vnet(), json!({})).await;
    assert!(harness.writes().is_empty());
    let ids: Vec<&str> = planned.plan.operations.iter().map(|op| op.id.as_str()).collect();
    assert_eq!(ids, ["group:contain-isolation-westus", "subnets:vnet1"], "one write of the VNet sets every subnet's group");
    assert!(planned.plan.notes.iter().any(|note| note.contains("GatewaySubnet is reserved")));
    assert!(planned.plan.notes.iter().any(|note| note.contains("delegated to Microsoft.Web/serverFarms")));
    assert!(planned.plan.operations[1].description.contains("3 IP configuration(s)"), "{}", planned.plan.operations[1].description);

    assert_eq!(planned.plan.operations[1].prior["subnets"]["app"].as_str().map(str::to_lowercase), Some(nsg("web-nsg").to_lowercase()), "each subnet's prior group is journaled");
    harness.fake.clear_requests();
    let applied = harness.apply(&planned).await.expect("apply");
    let vnet_puts = harness.writes().into_iter().filter(|r| r.method == "PUT" && r.path.ends_with("/virtualNetworks/vnet1")).count();
    assert_eq!(vnet_puts, 1);
    let network = harness.fake.get(&vnet()).unwrap();
    let app = &network["properties"]["subnets"][0];
    assert!(app["properties"]["networkSecurityGroup"]["id"].as_str().unwrap().ends_with("contain-isolation-westus"));
    assert!(network["properties"]["subnets"][1]["properties"].get("networkSecurityGroup").is_none());

    let subnet_plan = harness.plan(ActionKind::Isolate, SUBNET, &format!("{}/subnets/app", vnet()), json!({})).await;
    assert!(subnet_plan.plan.operations.is_empty());

    harness.rollback(&planned, &applied).await;
    assert_eq!(harness.fake.state(), before);
}

#[tokio::test]
async fn nsg_block_round_trip() {
    let harness = start().await;
    seed(&harness.fake);
    let before = harness.fake.state();
    harness.fake.clear_requests();
    let with = json!({ "addresses": ["203.0.113.7", "198.51.100.0/24"], "direction": "both" });

    let planned = harness.plan(ActionKind::Block, NSG, &nsg("web-nsg"), with.clone()).await;
    assert!(harness.writes().is_empty());
    assert_eq!(planned.plan.operations.len(), 1);

    let applied = harness.apply(&planned).await.expect("apply");
    let group = harness.fake.get(&nsg("web-nsg")).unwrap();
    let rules = group["properties"]["securityRules"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
    let inbound = rules.iter().find(|rule| rule["name"].as_str().unwrap().starts_with("contain-block-in-")).unwrap();
    assert_eq!(inbound["properties"]["access"], "Deny");
    assert!(inbound["properties"]["priority"].as_u64().unwrap() < 200, "below the allow rule");
    // Both rules went in one write of the whole group.
    let puts: Vec<_> = harness.writes().into_iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 1);
    assert!(puts[0].if_match.is_some());

    harness.fake.clear_requests();
    let again = harness.plan(ActionKind::Block, NSG, &nsg("web-nsg"), with).await;
    assert!(again.plan.operations.is_empty(), "a re-run recognises its own rules");
    assert!(harness.writes().is_empty());

    harness.rollback(&planned, &applied).await;
    assert_eq!(harness.fake.state(), before);
    harness.fake.clear_requests();
    harness.rollback(&planned, &applied).await;
    assert!(harness.writes().is_empty());
}

#[tokio::test]
async fn allow_at_100_is_not_contained_unless_converted() {
    let harness = start().await;
    harness.fake.insert(&nsg("open-nsg"), json!({ "location": "westus", "properties": { "securityRules": [
        allow("any-ssh", 100, "Internet", "22"), allow("office", 110, "198.51.100.0/24", "*") ] } }));
    let before = harness.fake.state();
    harness.fake.clear_requests();

    let rejected = harness.plan(ActionKind::Block, NSG, &nsg("open-nsg"), json!({ "addresses": ["203.0.113.7"], "direction": "inbound" })).await;
    let reason = rejected.plan.uncontainable.expect("not contained");
    assert!(reason.starts_with("not contained"), "{reason}");
    assert!(reason.contains("any-ssh (priority 100)"), "{reason}");
    assert!(rejected.plan.operations.is_empty());

    let planned = harness.plan(ActionKind::Block, NSG, &nsg("open-nsg"), json!({ "addresses": ["203.0.113.7"], "direction": "inbound", "convert_allow": true })).await;
    assert!(planned.plan.uncontainable.is_none());
    let description = &planned.plan.operations[0].description;
    assert!(description.starts_with("TURN ALLOW RULE(S) any-ssh (priority 100: Tcp ports 22 from Internet, inbound) INTO DENY"), "{description}");
    assert!(harness.writes().is_empty());
    let applied = harness.apply(&planned).await.expect("apply");
    let group = harness.fake.get(&nsg("open-nsg")).unwrap();
    let converted = group["properties"]["securityRules"].as_array().unwrap().iter().find(|r| r["name"] == "any-ssh").unwrap().clone();
    assert_eq!(converted["properties"]["access"], "Deny");
    assert_eq!(applied[0].0.prior["originals"][0]["properties"]["access"], "Allow", "the rule is journaled verbatim first");

    harness.rollback(&planned, &applied).await;
    assert_eq!(harness.fake.state(), before, "the converted rule is restored verbatim");
}

#[tokio::test]
async fn limits_are_checked_before_any_write() {
    let harness = start().await;
    let rules: Vec<Value> = (0..999).map(|i| allow(&format!("r{i}"), 200 + i, "10.0.0.0/8", "443")).collect();
    harness.fake.insert(&nsg("full-nsg"), json!({ "location": "westus", "properties": { "securityRules": rules } }));
    harness.fake.clear_requests();

    let planned = harness.plan(ActionKind::Block, NSG, &nsg("full-nsg"), json!({ "addresses": ["203.0.113.7"] })).await;
    let reason = planned.plan.uncontainable.expect("over the limit");
    assert!(reason.contains("limit of 1000"), "{reason}");
    assert!(planned.plan.operations.is_empty(), "a step writes all of its rules or none");
    assert!(harness.writes().is_empty());
}

#[tokio::test]
async fn failed_operation_changes_nothing() {
    let harness = start().await;
    seed(&harness.fake);
    let planned = harness.plan(ActionKind::Block, NSG, &nsg("web-nsg"), json!({ "addresses": ["203.0.113.7"] })).await;
    let before = harness.fake.state();
    harness.fake.fail_operations("networkSecurityGroups/web-nsg");

    let error = harness.apply(&planned).await.expect_err("the operation ended Failed");
    assert_eq!(error.kind, ErrorKind::Other);
    assert!(error.message.contains("ended Failed"), "{}", error.message);
    assert!(error.message.contains("/operations/"), "the error names the operation URL: {}", error.message);
    assert_eq!(error.code.as_deref(), Some("InternalServerError"));
    assert_eq!(harness.fake.state(), before, "a failed operation is not applied");

    // The subject still reads as prior, so rollback has nothing to revert.
    let operation = &planned.plan.operations[0];
    let current = planned.action.read(&apply_context(), &planned.target, operation).await.unwrap();
    assert_eq!(planned.action.assess(operation, &current, None), contain_core::Assessment::Prior);
}

#[tokio::test]
async fn busy_conflict_is_retried_after_retry_after() {
    let harness = start().await;
    seed(&harness.fake);
    let planned = harness.plan(ActionKind::Block, NSG, &nsg("web-nsg"), json!({ "addresses": ["203.0.113.7"] })).await;
    harness.fake.inject(Fault::new("PUT", "networkSecurityGroups/web-nsg", 409, "AnotherOperationInProgress").retry_after(0).times(2));
    harness.fake.clear_requests();

    harness.apply(&planned).await.expect("the third attempt succeeds");
    let puts = harness.fake.requests().into_iter().filter(|r| r.method == "PUT").count();
    assert_eq!(puts, 3);

    harness.fake.inject(Fault::new("PUT", "networkSecurityGroups/web-nsg", 429, "RetryableErrorDueToAnotherOperation").retry_after(0).times(1));
    let with = json!({ "addresses": ["192.0.2.1"], "direction": "outbound" });
    let second = harness.plan(ActionKind::Block, NSG, &nsg("web-nsg"), with).await;
    harness.apply(&second).await.expect("429 then success");
}

#[tokio::test]
async fn plan_mode_refuses_writes_before_sending() {
    let harness = start().await;
    seed(&harness.fake);
    let planned = harness.plan(ActionKind::Isolate, VM, &vm(), json!({})).await;
    harness.fake.clear_requests();

    let error = planned.action.apply(&common::plan_context(), &planned.target, &planned.plan.operations[0]).await.expect_err("rejected");
    assert_eq!(error.kind, ErrorKind::DryRunRefused);
    assert!(harness.writes().is_empty());
}

#[tokio::test]
async fn ip_group_block_keeps_other_writers_entries() {
    let harness = start().await;
    let group = format!("{RG}/Microsoft.Network/ipGroups/blocked");
    harness.fake.insert(&group, json!({ "location": "westus", "properties": { "ipAddresses": ["13.64.39.16/32", "198.51.100.9"] } }));
    let before = harness.fake.state();
    harness.fake.clear_requests();

    let planned = harness.plan(ActionKind::Block, contain_azure::IP_GROUP, &group, json!({ "addresses": ["198.51.100.9", "203.0.113.7"] })).await;
    assert!(harness.writes().is_empty());
    assert_eq!(planned.plan.operations[0].desired["added"], json!(["203.0.113.7/32"]), "an address already listed is not added again");

    // Another writer changed the group between contain's read and write, so ARM returns 412.
    harness.fake.inject(Fault::new("PUT", "ipGroups/blocked", 412, "PreconditionFailed").times(1));
    let applied = harness.apply(&planned).await.expect("read again and write");
    let puts: Vec<_> = harness.writes().into_iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 2);
    assert!(puts.iter().all(|put| put.if_match.is_some()));
    let entries = harness.fake.get(&group).unwrap()["properties"]["ipAddresses"].clone();
    assert_eq!(entries, json!(["13.64.39.16/32", "198.51.100.9", "203.0.113.7/32"]));

    harness.rollback(&planned, &applied).await;
    assert_eq!(harness.fake.state(), before, "rollback removes exactly the added address");
}

/// Collects what an action reports in the middle of a change.
#[derive(Default)]
struct Collected(std::sync::Mutex<Vec<String>>);

impl contain_core::PendingLog for Collected {
    fn record(&self, detail: &str) {
        self.0.lock().unwrap().push(detail.to_string());
    }
}

#[tokio::test]
async fn operation_url_is_reported_before_polling() {
    let harness = start().await;
    seed(&harness.fake);
    harness.fake.set_async_polls(3);
    let planned = harness.plan(ActionKind::Block, NSG, &nsg("web-nsg"), json!({ "addresses": ["203.0.113.7"] })).await;
    let collected = std::sync::Arc::new(Collected::default());
    let context = contain_core::CallContext { pending: contain_core::Pending::new(collected.clone()), ..apply_context() };

    planned.action.apply(&context, &planned.target, &planned.plan.operations[0]).await.expect("apply");
    let details = collected.0.lock().unwrap().clone();
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(details[0].contains("/providers/Microsoft.Network/locations/westus/operations/"), "{}", details[0]);
    let polls = harness.fake.requests().iter().filter(|r| r.path.contains("/operations/")).count();
    assert_eq!(polls, 4, "three polls in progress, then the final one");
}

#[tokio::test]
async fn shared_group_deleted_when_freed() {
    let harness = start().await;
    seed(&harness.fake);
    let before = harness.fake.state();

    // The VM's run creates the group; the VNet's run reuses it.
    let vm_run = harness.plan(ActionKind::Isolate, VM, &vm(), json!({})).await;
    let vm_applied = harness.apply(&vm_run).await.expect("apply the VM run");
    let vnet_run = harness.plan(ActionKind::Isolate, VNET, &vnet(), json!({})).await;
    assert!(vnet_run.plan.operations.iter().all(|op| op.kind != "azure.isolation_nsg"), "the group is reused");
    let vnet_applied = harness.apply(&vnet_run).await.expect("apply the VNet run");

    let notes = harness.rollback(&vm_run, &vm_applied).await;
    assert!(notes.iter().any(|note| note.contains("still isolates")), "{notes:?}");
    assert!(harness.fake.get(&nsg("contain-isolation-westus")).is_some(), "the VNet still uses the group");
    let notes = harness.rollback(&vnet_run, &vnet_applied).await;
    assert!(notes.iter().any(|note| note.starts_with("deleted the isolation group")), "the deletion is noted: {notes:?}");
    assert_eq!(harness.fake.state(), before, "the last rollback deletes the group");
}

#[tokio::test]
async fn edited_rule_is_drift_not_deleted() {
    let harness = start().await;
    seed(&harness.fake);
    let planned = harness.plan(ActionKind::Block, NSG, &nsg("web-nsg"), json!({ "addresses": ["203.0.113.7"], "direction": "inbound" })).await;
    let applied = harness.apply(&planned).await.expect("apply");

    // Someone widens contain's rule after the run.
    let mut group = harness.fake.get(&nsg("web-nsg")).unwrap();
    for rule in group["properties"]["securityRules"].as_array_mut().unwrap() {
        if rule["name"].as_str().unwrap().starts_with("contain-block-in") {
            rule["properties"]["sourceAddressPrefixes"] = json!(["203.0.113.7/32", "198.18.0.1/32"]);
        }
    }
    harness.fake.insert(&nsg("web-nsg"), group);

    let (operation, value) = &applied[0];
    let current = planned.action.read(&apply_context(), &planned.target, operation).await.unwrap();
    let assessment = planned.action.assess(operation, &current, Some(value));
    assert!(matches!(assessment, contain_core::Assessment::Diverged { ref detail } if detail.contains("changed since the run")), "{assessment:?}");
}
