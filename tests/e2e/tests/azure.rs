//! The Azure playbooks from the command line, against the fake ARM, Graph and token server on
//! 127.0.0.1. Plan writes nothing, run contains, and rollback restores the fake's state. One
//! playbook blocks addresses in an AWS VPC (moto) and an Azure NSG in one run.

use contain_azure_fake::{FakeAzure, refuse_real_endpoint};
use contain_e2e::{Harness, Invocation, diff};
use serde_json::{Value, json};

const RG: &str = "/subscriptions/subid/resourceGroups/rg1/providers";
const ALICE: &str = "8d3f1a2b-0000-4000-8000-0000000a11ce";
const APP: &str = "5e1d0c9a-0000-4000-8000-0000000000a9";
const APP_SP: &str = "5e1d0c9a-0000-4000-8000-0000000005a5";

fn nsg(name: &str) -> String {
    format!("{RG}/Microsoft.Network/networkSecurityGroups/{name}")
}

fn vnet() -> String {
    format!("{RG}/Microsoft.Network/virtualNetworks/vnet1")
}

fn vm() -> String {
    format!("{RG}/Microsoft.Compute/virtualMachines/vm1")
}

fn seed(fake: &FakeAzure) {
    let rule = |name: &str, priority: u32, source: &str| {
        json!({ "name": name, "properties": { "priority": priority, "access": "Allow", "direction": "Inbound", "protocol": "*",
            "sourceAddressPrefix": source, "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "*" } })
    };
    fake.insert(&nsg("web-nsg"), json!({ "location": "westus", "properties": { "securityRules": [rule("office", 300, "*")] } }));
    fake.insert(&nsg("open-nsg"), json!({ "location": "westus", "properties": { "securityRules": [rule("any", 100, "Internet")] } }));
    fake.insert(&vnet(), json!({ "location": "westus", "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] }, "subnets": [
        { "name": "app", "properties": { "addressPrefix": "10.0.1.0/24" } },
        { "name": "AzureBastionSubnet", "properties": { "addressPrefix": "10.0.9.0/26" } } ] } }));
    for name in ["vm1-nic-a", "vm1-nic-b"] {
        fake.insert(&format!("{RG}/Microsoft.Network/networkInterfaces/{name}"), json!({ "location": "westus", "properties": {
            "networkSecurityGroup": { "id": nsg("web-nsg") },
            "ipConfigurations": [
                { "name": "one", "properties": { "primary": true, "subnet": { "id": format!("{}/subnets/app", vnet()) } } },
                { "name": "two", "properties": { "primary": false, "subnet": { "id": format!("{}/subnets/app", vnet()) } } } ] } }));
    }
    fake.insert(&vm(), json!({ "location": "westus", "properties": { "vmId": "0f3c5e52-0000-4000-8000-000000000001", "networkProfile": { "networkInterfaces": [
        { "id": format!("{RG}/Microsoft.Network/networkInterfaces/vm1-nic-a"), "properties": { "primary": true } },
        { "id": format!("{RG}/Microsoft.Network/networkInterfaces/vm1-nic-b"), "properties": { "primary": false } } ] } } }));
    fake.insert_graph("users", json!({ "id": ALICE, "userPrincipalName": "alice@contoso.com", "accountEnabled": true, "userType": "Member",
        "signInSessionsValidFromDateTime": "2026-11-01T00:00:00Z" }));
    fake.insert_graph("servicePrincipals", json!({ "id": APP_SP, "appId": APP, "displayName": "Payroll SaaS", "accountEnabled": true, "appRoleAssignedTo": [] }));
    fake.insert_graph("applications", json!({ "id": APP, "appId": APP, "displayName": "Payroll SaaS", "keyCredentials": [], "passwordCredentials": [
        { "keyId": "11111111-0000-4000-8000-000000000002", "displayName": "backdoor", "startDateTime": "2026-12-03T10:00:00Z", "endDateTime": "2028-12-03T10:00:00Z" } ] }));
    fake.insert_graph("domains", json!({ "id": "contoso.com", "authenticationType": "Federated", "federationConfiguration": [{ "id": "fed-1",
        "displayName": "Contoso ADFS", "issuerUri": "http://adfs.contoso.com/adfs/services/trust", "passiveSignInUri": "https://adfs.contoso.com/adfs/ls",
        "signOutUri": "https://adfs.contoso.com/adfs/ls", "signingCertificate": "MIIC8DCCAdigAwIBAgIQ", "preferredAuthenticationProtocol": "wsFed",
        "federatedIdpMfaBehavior": "acceptIfMfaDoneByFederatedIdp" }] }));
}

/// Lists the fake's endpoints and credentials, as the `contain` process gets them, after
/// checking that every endpoint is this machine.
fn azure_env(fake: &FakeAzure) -> Vec<(&'static str, String)> {
    let variables = fake.contain_env();
    for (name, value) in &variables {
        if name.starts_with("CONTAIN_ARM") || name.starts_with("CONTAIN_GRAPH") || *name == "AZURE_AUTHORITY_HOST" {
            refuse_real_endpoint(value).unwrap_or_else(|why| panic!("refusing to run against {value}: {why}"));
        }
    }
    variables
}

fn contain(harness: &Harness, fake: &FakeAzure, args: &[&str]) -> Invocation {
    let variables = azure_env(fake);
    let env: Vec<(&str, &str)> = variables.iter().map(|(name, value)| (*name, value.as_str())).collect();
    harness.contain_with(&harness.endpoint.clone(), &env, args)
}

fn writes(fake: &FakeAzure) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/oauth2/v2.0/token"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Plans, runs and rolls back a playbook, and returns the run id and the fake's state after
/// the run.
fn round_trip(harness: &Harness, fake: &FakeAzure, playbook: &str, inputs: &[String]) -> (String, Value) {
    let mut args: Vec<&str> = vec![playbook];
    for input in inputs {
        args.extend(["-i", input.as_str()]);
    }

    fake.clear_requests();
    let plan = contain(harness, fake, &[&["plan"], args.as_slice()].concat());
    assert_eq!(plan.code, 0, "plan of {playbook}: {}{}", plan.stdout, plan.stderr);
    assert!(writes(fake).is_empty(), "plan of {playbook} wrote: {:?}", writes(fake));

    let run = contain(harness, fake, &[&["run"], args.as_slice(), &["--yes", "-o", "json"]].concat());
    assert_eq!(run.code, 0, "run of {playbook}: {}{}", run.stdout, run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let contained = fake.state();

    let again = contain(harness, fake, &[&["run"], args.as_slice(), &["--yes", "-o", "json"]].concat());
    assert_eq!(again.code, 0, "second run of {playbook}: {}{}", again.stdout, again.stderr);
    assert_eq!(again.json()["steps"][0]["targets"][0]["outcome"], "already_contained", "{playbook}: {}", again.stdout);

    let rollback = contain(harness, fake, &["rollback", &run_id, "--yes"]);
    assert_eq!(rollback.code, 0, "rollback of {playbook}: {}{}", rollback.stdout, rollback.stderr);
    (run_id, contained)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_playbooks_round_trip() {
    let harness = Harness::new().await;
    let fake = FakeAzure::start().await;
    seed(&fake);
    let before = fake.state();
    let incident = "incident=INC-AZ-1".to_string();

    let cases = [
        ("playbooks/azure/vm-compromise.yaml", vec![format!("vm={}", vm())]),
        ("playbooks/azure/vnet-isolate.yaml", vec![format!("vnet={}", vnet())]),
        ("playbooks/azure/block-addresses.yaml", vec![format!("nsg={}", nsg("web-nsg")), "addresses=203.0.113.7/32,2001:db8::/32".to_string()]),
        ("playbooks/azure/entra-user-compromise.yaml", vec!["user=alice@contoso.com".to_string()]),
        ("playbooks/azure/saas-app-lockout.yaml", vec![format!("application=appId:{APP}")]),
        ("playbooks/azure/federation-compromise.yaml", vec!["domain=contoso.com".to_string()]),
    ];
    for (playbook, mut inputs) in cases {
        inputs.push(incident.clone());
        let (run_id, contained) = round_trip(&harness, &fake, playbook, &inputs);
        assert_ne!(contained, before, "{playbook} changed nothing");
        let restored = fake.state();
        assert!(restored == before, "rollback of {playbook} ({run_id}) left:\n{}", diff(&before, &restored));
    }

    // The user's sessions stay revoked, because the operation is journaled as not reversible.
    let user = fake.get_graph("users", ALICE).unwrap();
    assert_ne!(user["signInSessionsValidFromDateTime"], "2026-11-01T00:00:00Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_credentials_are_removed_for_good() {
    let harness = Harness::new().await;
    let fake = FakeAzure::start().await;
    seed(&fake);
    let args = ["run", "playbooks/azure/app-credential-compromise.yaml", "-i", &format!("application={APP}"), "-i", "added_after=2026-12-01T00:00:00Z", "-i", "incident=INC-AZ-2", "--yes", "-o", "json"];

    let run = contain(&harness, &fake, &args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let application = fake.get_graph("applications", APP).unwrap();
    assert!(application["passwordCredentials"].as_array().unwrap().is_empty());
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let journal = std::fs::read_to_string(harness.journal_path(&run_id)).unwrap();
    assert!(journal.contains("\"displayName\":\"backdoor\""), "the journal keeps the removed credential's facts");
    assert!(journal.contains("2028-12-03T10:00:00Z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_at_100_fails_the_run() {
    let harness = Harness::new().await;
    let fake = FakeAzure::start().await;
    seed(&fake);
    let before = fake.state();
    let args = ["run", "playbooks/azure/block-addresses.yaml", "-i", &format!("nsg={}", nsg("open-nsg")), "-i", "addresses=203.0.113.7/32", "-i", "incident=INC-AZ-3", "--yes"];

    let run = contain(&harness, &fake, &args);
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("not contained"), "{}", run.stdout);
    assert!(run.stdout.contains("convert_allow"), "{}", run.stdout);
    assert_eq!(fake.state(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_blocks_in_aws_and_azure() {
    let harness = Harness::new().await;
    let fake = FakeAzure::start().await;
    seed(&fake);
    let aws_before = harness.describe().await;
    let azure_before = fake.state();
    let vpc = harness.estate.vpc_id.clone();
    let args = ["run", "playbooks/multi-cloud-block.yaml", "-i", &format!("vpc={vpc}"), "-i", &format!("nsg={}", nsg("web-nsg")), "-i", "addresses=203.0.113.7/32", "-i", "incident=INC-AZ-4", "--yes", "-o", "json"];

    let run = contain(&harness, &fake, &args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    let outcomes: Vec<&Value> = report["steps"].as_array().unwrap().iter().map(|step| &step["targets"][0]["outcome"]).collect();
    assert_eq!(outcomes, [&json!("contained"), &json!("contained")], "{report}");
    assert_ne!(harness.describe().await, aws_before);
    assert_ne!(fake.state(), azure_before);
    let run_id = report["run_id"].as_str().unwrap().to_string();
    let journal = std::fs::read_to_string(harness.journal_path(&run_id)).unwrap();
    assert!(journal.contains("\"provider\":\"aws\""), "the journal names the AWS identity");
    assert!(journal.contains("\"provider\":\"azure\""), "the journal names the Azure identity");
    assert!(journal.contains("\"kind\":\"operation_pending\""), "the NSG write's operation URL is journaled before polling");

    let rollback = contain(&harness, &fake, &["rollback", &run_id, "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let aws_after = harness.describe().await;
    assert!(aws_after == aws_before, "{}", diff(&aws_before, &aws_after));
    assert_eq!(fake.state(), azure_before);
}
