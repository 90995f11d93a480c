//! Microsoft Graph JSON batching: many requests in one `POST /$batch`, at most 20 each.
//!
//! Each inner response is checked on its own. A request whose inner response is a 429 (inside a
//! 200 batch response) is sent again in a later batch after its `Retry-After`, within the
//! client's retry budget. Every other status is returned to the caller.

use std::collections::BTreeMap;
use std::time::Duration;

use azure_core::Method;
use contain_core::{ActionError, CallContext};
use serde_json::{Value, json};

use crate::http::{Api, Http};

/// Graph's limit of requests per batch.
pub(crate) const BATCH_LIMIT: usize = 20;

/// One request of a batch, with the id its response comes back under.
#[derive(Debug, Clone)]
pub(crate) struct BatchRequest {
    pub(crate) id: String,
    pub(crate) method: &'static str,
    /// The path below `/v1.0`, such as `/users/{id}/revokeSignInSessions`.
    pub(crate) url: String,
    pub(crate) body: Option<Value>,
}

/// The response to one request of a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchAnswer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl BatchAnswer {
    pub(crate) fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn encode(request: &BatchRequest) -> Value {
    let mut encoded = json!({ "id": request.id, "method": request.method, "url": request.url });
    if let Some(body) = &request.body {
        encoded["body"] = body.clone();
        encoded["headers"] = json!({ "Content-Type": "application/json" });
    }
    encoded
}

/// Reads the `Retry-After` of an inner response, whatever the case of the header name.
fn retry_after(answer: &Value) -> Option<Duration> {
    let headers = answer["headers"].as_object()?;
    let value = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("retry-after")).map(|(_, value)| value)?;
    let seconds = value.as_u64().or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))?;
    Some(Duration::from_secs(seconds))
}

impl Http {
    /// Sends the requests in batches of at most 20, sends throttled ones again after their
    /// `Retry-After`, and returns each response by request id.
    pub(crate) async fn batch(&self, context: &CallContext, requests: &[BatchRequest]) -> Result<BTreeMap<String, BatchAnswer>, ActionError> {
        let mut answers = BTreeMap::new();
        let mut pending: Vec<BatchRequest> = requests.to_vec();
        let mut waited = Duration::ZERO;

        while !pending.is_empty() {
            let mut throttled = Vec::new();
            let mut wait = Duration::ZERO;
            for chunk in pending.chunks(BATCH_LIMIT) {
                let body = json!({ "requests": chunk.iter().map(encode).collect::<Vec<_>>() });
                let reply = self.send(context, Api::Graph, Method::Post, "/$batch", Some(&body), None).await?;
                for answer in reply.body["responses"].as_array().cloned().unwrap_or_default() {
                    let id = answer["id"].as_str().unwrap_or_default().to_string();
                    let status = answer["status"].as_u64().unwrap_or(0) as u16;
                    let Some(request) = chunk.iter().find(|request| request.id == id) else { continue };
                    if status == 429 {
                        wait = wait.max(retry_after(&answer).unwrap_or(Duration::from_secs(1)));
                        throttled.push(request.clone());
                        continue;
                    }
                    answers.insert(id, BatchAnswer { status, body: answer["body"].clone() });
                }
                // A request the batch response left out is reported, not lost.
                let unanswered: Vec<&BatchRequest> = chunk.iter().filter(|r| !answers.contains_key(&r.id) && !throttled.iter().any(|t| t.id == r.id)).collect();
                for request in unanswered {
                    answers.insert(request.id.clone(), BatchAnswer { status: 0, body: json!({ "error": { "message": "the batch response contains no response to this request" } }) });
                }
            }
            if throttled.is_empty() {
                break;
            }
            if waited + wait > self.timing.retry_budget {
                for request in throttled {
                    answers.insert(request.id, BatchAnswer { status: 429, body: json!({ "error": { "code": "TooManyRequests", "message": "still throttled when the retry budget ran out" } }) });
                }
                break;
            }
            tracing::info!("{} Graph request(s) of a batch were throttled; sending them again after {} s", throttled.len(), wait.as_secs());
            tokio::time::sleep(wait).await;
            waited += wait;
            pending = throttled;
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_from_inner_headers() {
        assert_eq!(retry_after(&json!({ "headers": { "Retry-After": "7" } })), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&json!({ "headers": { "retry-after": 3 } })), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&json!({ "headers": {} })), None);
        let encoded = encode(&BatchRequest { id: "1".into(), method: "PATCH", url: "/users/a".into(), body: Some(json!({ "accountEnabled": false })) });
        assert_eq!(encoded["headers"]["Content-Type"], "application/json");
    }
}
