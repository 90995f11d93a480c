//! The cloud-limits mode: buckets per region, latency, operations that end by
//! time, and 429 for writes to a locked resource. Durations are short and the
//! checks are on behaviour, not on speed.

mod common;

use std::time::{Duration, Instant};

use common::{Client, SUBSCRIPTION};
use contain_azure_fake::ArmLimits;
use serde_json::{Value, json};

const RG: &str = "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network";

/// Limits with no latency, operations of exactly `operation_seconds`, and
/// a `Retry-After` of 1 s, unscaled.
fn limits(operation_seconds: f64) -> ArmLimits {
    ArmLimits {
        latency_p50_ms: 0.0,
        latency_p99_ms: 0.0,
        operation_p50_seconds: operation_seconds,
        operation_p99_seconds: operation_seconds,
        operation_retry_after_seconds: 1.0,
        ..ArmLimits::default()
    }
}

fn nsg_body(location: &str) -> Value {
    json!({ "location": location, "properties": { "securityRules": [] } })
}

fn insert_vnet(client: &Client, name: &str, subnets: &[&str]) -> String {
    let vnet = format!("{RG}/virtualNetworks/{name}");
    let subnets: Vec<Value> = subnets
        .iter()
        .enumerate()
        .map(|(index, subnet)| json!({ "name": subnet, "properties": { "addressPrefix": format!("10.0.{index}.0/24") } }))
        .collect();
    client.fake.insert(
        &vnet,
        json!({ "location": "westus", "properties": {
            "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] }, "subnets": subnets } }),
    );
    vnet
}

fn subnet_body(index: u32) -> Value {
    json!({ "properties": { "addressPrefix": format!("10.0.{index}.0/24") } })
}

#[tokio::test]
async fn operation_ends_after_its_duration() {
    let client = Client::start().await;
    client.fake.set_limits(limits(0.3));
    let nsg = format!("{RG}/networkSecurityGroups/nsg1");

    let created = client.arm("PUT", &nsg, Some(&nsg_body("westus"))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("retry-after").as_deref(), Some("1"));
    let operation = created
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation");

    let early = client.send("GET", &operation, None, &[]).await;
    assert_eq!(early.body["status"], "InProgress");
    assert_eq!(early.header("retry-after").as_deref(), Some("1"));
    let early_again = client.send("GET", &operation, None, &[]).await;
    assert_eq!(
        early_again.body["status"], "InProgress",
        "polls do not end an operation in this mode"
    );
    assert_eq!(
        client.arm("GET", &nsg, None).await.status,
        404,
        "the NSG exists only once the operation ends"
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    let done = client.send("GET", &operation, None, &[]).await;
    assert_eq!(done.body["status"], "Succeeded", "{}", done.text);
    assert_eq!(client.arm("GET", &nsg, None).await.status, 200);
}

#[tokio::test]
async fn change_lands_without_a_poll() {
    let client = Client::start().await;
    client.fake.set_limits(limits(0.2));
    let nsg = format!("{RG}/networkSecurityGroups/nsg1");

    assert_eq!(
        client
            .arm("PUT", &nsg, Some(&nsg_body("westus")))
            .await
            .status,
        201
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(
        client.fake.get(&nsg).is_some(),
        "the fake ends due operations on a read of its state"
    );
    let replaced = client.arm("PUT", &nsg, Some(&nsg_body("westus"))).await;
    assert_eq!(
        replaced.status, 200,
        "the lock ended with the operation: {}",
        replaced.text
    );
}

#[tokio::test]
async fn locked_vnet_write_gets_429() {
    let client = Client::start().await;
    client.fake.set_limits(limits(0.5));
    let vnet = insert_vnet(&client, "vnet1", &["a", "b"]);

    let first = client
        .arm("PUT", &format!("{vnet}/subnets/a"), Some(&subnet_body(0)))
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = client
        .arm("PUT", &format!("{vnet}/subnets/b"), Some(&subnet_body(1)))
        .await;
    assert_eq!(second.status, 429, "{}", second.text);
    assert_eq!(second.body["error"]["code"], "RetryableError");
    assert_eq!(
        second.body["error"]["details"][0]["code"],
        "RetryableErrorDueToAnotherOperation"
    );
    let retry_after: u64 = second
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert_eq!(retry_after, 1, "0.5 s left, rounded up to whole seconds");

    let counts = client.fake.limit_counts();
    assert_eq!(counts["PUT subnets"].calls, 2);
    assert_eq!(counts["PUT subnets"].busy, 1);
    assert_eq!(counts["PUT subnets"].throttled, 0);

    tokio::time::sleep(Duration::from_millis(600)).await;
    let third = client
        .arm("PUT", &format!("{vnet}/subnets/b"), Some(&subnet_body(1)))
        .await;
    assert_eq!(
        third.status, 200,
        "the VNet is free once the first operation ended: {}",
        third.text
    );
}

#[tokio::test]
async fn empty_write_bucket_throttles() {
    let client = Client::start().await;
    client.fake.set_limits(ArmLimits {
        write_burst: 2.0,
        write_per_second: 0.01,
        ..limits(0.0)
    });

    for name in ["w1", "w2"] {
        let response = client
            .arm(
                "PUT",
                &format!("{RG}/networkSecurityGroups/{name}"),
                Some(&nsg_body("westus")),
            )
            .await;
        assert_eq!(response.status, 201, "{name}: {}", response.text);
    }
    let throttled = client
        .arm(
            "PUT",
            &format!("{RG}/networkSecurityGroups/w3"),
            Some(&nsg_body("westus")),
        )
        .await;
    assert_eq!(throttled.status, 429, "{}", throttled.text);
    assert_eq!(
        throttled.body["error"]["code"],
        "SubscriptionRequestsThrottled"
    );
    let retry_after: u64 = throttled
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(
        retry_after >= 99,
        "one token takes 100 s at 0.01 per second, not {retry_after}"
    );

    let other_region = client
        .arm(
            "PUT",
            &format!("{RG}/networkSecurityGroups/e1"),
            Some(&nsg_body("eastus")),
        )
        .await;
    assert_eq!(
        other_region.status, 201,
        "each region has its own bucket: {}",
        other_region.text
    );
    let read = client
        .arm("GET", &format!("{RG}/networkSecurityGroups/w1"), None)
        .await;
    assert_eq!(
        read.status, 200,
        "reads draw on another bucket: {}",
        read.text
    );

    let counts = client.fake.limit_counts();
    assert_eq!(counts["PUT networkSecurityGroups"].calls, 4);
    assert_eq!(counts["PUT networkSecurityGroups"].throttled, 1);
    assert_eq!(
        client.fake.operation_records().len(),
        3,
        "a throttled write starts no operation"
    );
}

#[tokio::test]
async fn time_scale_divides_durations() {
    let client = Client::start().await;
    client.fake.set_limits(ArmLimits {
        scale: 100.0,
        operation_retry_after_seconds: 10.0,
        ..limits(8.0)
    });
    let nsg = format!("{RG}/networkSecurityGroups/nsg1");

    let created = client.arm("PUT", &nsg, Some(&nsg_body("West US"))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.header("retry-after").as_deref(),
        Some("1"),
        "10 s / 100 is rounded up to 1 s"
    );

    let records = client.fake.operation_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].location, "westus");
    assert_eq!(records[0].resource, nsg.to_ascii_lowercase());
    assert_eq!(records[0].duration, Duration::from_millis(80), "8 s / 100");
}

#[tokio::test]
async fn latency_delays_arm_requests() {
    let client = Client::start().await;
    client.fake.set_limits(ArmLimits {
        latency_p50_ms: 100.0,
        latency_p99_ms: 100.0,
        ..limits(0.0)
    });

    let started = Instant::now();
    let read = client.arm("GET", &format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/none"), None).await;
    assert_eq!(read.status, 404);
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "the answer came after {:?}",
        started.elapsed()
    );
    assert_eq!(
        client.fake.limit_counts()["GET networkSecurityGroups"].calls,
        1
    );
}

#[tokio::test]
async fn default_mode_keeps_poll_counts() {
    let client = Client::start().await;
    let nsg = format!("{RG}/networkSecurityGroups/nsg1");

    let created = client.arm("PUT", &nsg, Some(&nsg_body("westus"))).await;
    let operation = created
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation");
    assert_eq!(
        client.send("GET", &operation, None, &[]).await.body["status"],
        "InProgress"
    );
    let locked = client.arm("PUT", &nsg, Some(&nsg_body("westus"))).await;
    assert_eq!(
        locked.status, 409,
        "without limits a locked resource answers 409"
    );
    assert_eq!(locked.body["error"]["code"], "AnotherOperationInProgress");
    assert_eq!(
        client.send("GET", &operation, None, &[]).await.body["status"],
        "Succeeded"
    );
    assert!(client.fake.limit_counts().is_empty());
    assert!(client.fake.operation_records().is_empty());
}
