//! The Graph side of the cloud-limits mode: the write bucket, 429 with
//! `Retry-After` for a direct request and inside a 200 `$batch` response. The
//! buckets are small and the checks are on behaviour, not on speed.

mod common;

use common::Client;
use contain_azure_fake::GraphLimits;
use serde_json::{Value, json};

const VALID_FROM: &str = "2026-01-01T00:00:00Z";

fn seed_user(client: &Client, id: &str) {
    client.fake.insert_graph(
        "users",
        json!({ "id": id, "userPrincipalName": format!("{id}@contoso.com"), "accountEnabled": true,
                "userType": "Member", "signInSessionsValidFromDateTime": VALID_FROM }),
    );
}

/// Limits with a bucket of `burst` writes that refills at one write in 100 s, so that no
/// token comes back during a test.
fn limits(burst: f64) -> GraphLimits {
    GraphLimits {
        write_burst: burst,
        write_per_second: 0.01,
        ..GraphLimits::default()
    }
}

fn disable() -> Value {
    json!({ "accountEnabled": false })
}

#[tokio::test]
async fn write_beyond_burst_gets_429() {
    let client = Client::start().await;
    seed_user(&client, "u1");
    seed_user(&client, "u2");
    client.fake.set_graph_limits(limits(2.0));

    let first = client.graph("PATCH", "/users/u1", Some(&disable())).await;
    assert_eq!(first.status, 204, "{}", first.text);
    let second = client.graph("POST", "/users/u1/revokeSignInSessions", None).await;
    assert_eq!(second.status, 200, "{}", second.text);

    let third = client.graph("PATCH", "/users/u2", Some(&disable())).await;
    assert_eq!(third.status, 429, "{}", third.text);
    assert_eq!(third.body["error"]["code"], "TooManyRequests");
    assert_eq!(third.header("retry-after").as_deref(), Some("100"));
    let u2 = client.fake.get_graph("users", "u2").expect("u2");
    assert_eq!(u2["accountEnabled"], true, "a throttled PATCH changes nothing");

    let read = client.graph("GET", "/users/u2", None).await;
    assert_eq!(read.status, 200, "reads are not limited: {}", read.text);

    let counts = client.fake.graph_limit_counts();
    assert_eq!(counts["PATCH users"].calls, 2);
    assert_eq!(counts["PATCH users"].throttled, 1);
    assert_eq!(counts["POST revokeSignInSessions"].calls, 1);
    assert_eq!(counts["GET users"].calls, 1);
    assert_eq!(counts["GET users"].throttled, 0);
}

#[tokio::test]
async fn batch_returns_inner_429_in_200() {
    let client = Client::start().await;
    for id in ["u1", "u2"] {
        seed_user(&client, id);
    }
    client.fake.set_graph_limits(limits(3.0));
    let batch = json!({ "requests": [
        { "id": "1", "method": "PATCH", "url": "/users/u1", "body": disable(), "headers": { "Content-Type": "application/json" } },
        { "id": "2", "method": "POST", "url": "/users/u1/revokeSignInSessions" },
        { "id": "3", "method": "PATCH", "url": "/users/u2", "body": disable(), "headers": { "Content-Type": "application/json" } },
        { "id": "4", "method": "POST", "url": "/users/u2/revokeSignInSessions" },
        { "id": "5", "method": "GET", "url": "/users/u2" }
    ] });

    let answer = client.graph("POST", "/$batch", Some(&batch)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let responses = answer.body["responses"].as_array().expect("responses");
    let status_of = |id: &str| {
        responses.iter().find(|r| r["id"] == id).map(|r| r["status"].clone()).unwrap_or(Value::Null)
    };
    assert_eq!(status_of("1"), 204);
    assert_eq!(status_of("2"), 200);
    assert_eq!(status_of("3"), 204);
    assert_eq!(status_of("4"), 429, "the fourth write finds the bucket of 3 empty");
    assert_eq!(status_of("5"), 200, "an inner read is not limited");

    let throttled = responses.iter().find(|r| r["id"] == "4").expect("response 4");
    assert_eq!(throttled["headers"]["Retry-After"], "100");
    assert_eq!(throttled["body"]["error"]["code"], "TooManyRequests");
    let u2 = client.fake.get_graph("users", "u2").expect("u2");
    assert_eq!(u2["accountEnabled"], false);
    assert_eq!(u2["signInSessionsValidFromDateTime"], VALID_FROM, "the throttled revocation changed nothing");

    let counts = client.fake.graph_limit_counts();
    assert_eq!(counts["POST $batch"].calls, 1);
    assert_eq!(counts["POST $batch"].throttled, 0);
    assert_eq!(counts["POST revokeSignInSessions"].calls, 2);
    assert_eq!(counts["POST revokeSignInSessions"].throttled, 1);
}

#[tokio::test]
async fn bucket_refills_at_scaled_rate() {
    let client = Client::start().await;
    seed_user(&client, "u1");
    client.fake.set_graph_limits(GraphLimits {
        write_burst: 1.0,
        write_per_second: 1.0,
        scale: 10.0,
        ..GraphLimits::default()
    });

    let first = client.graph("PATCH", "/users/u1", Some(&disable())).await;
    assert_eq!(first.status, 204, "{}", first.text);
    let second = client.graph("PATCH", "/users/u1", Some(&disable())).await;
    assert_eq!(second.status, 429, "{}", second.text);
    assert_eq!(second.header("retry-after").as_deref(), Some("1"), "whole seconds, at least 1");

    // At 1 write per second scaled by 10, a token comes back within 100 ms.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let third = client.graph("PATCH", "/users/u1", Some(&disable())).await;
    assert_eq!(third.status, 204, "{}", third.text);
}

#[tokio::test]
async fn graph_unlimited_without_graph_limits() {
    let client = Client::start().await;
    seed_user(&client, "u1");
    for _ in 0..30 {
        let answer = client.graph("PATCH", "/users/u1", Some(&disable())).await;
        assert_eq!(answer.status, 204, "{}", answer.text);
    }
    assert!(client.fake.graph_limit_counts().is_empty());
}
