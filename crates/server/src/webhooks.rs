//! Webhook callbacks on run state changes (awaiting approval, finished, rolled back), to the
//! configured URLs only. Each body is signed with HMAC-SHA256 over `<timestamp>.<body>`, sent in
//! the header `x-contain-signature: t=<unix seconds>,v1=<hex>`, so a receiver can check both the
//! sender and the freshness. Delivery runs on a task of its own and is retried with backoff: it
//! never holds up a run.
//!
//! NOTE: only `http://` URLs are delivered for now; `https://` needs the TLS client that comes
//! with TLS serving.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Attempts per delivery, the first included.
const ATTEMPTS: u32 = 5;
/// The wait before the second attempt, doubled for each attempt after it.
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The maximum time of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The webhook URLs and the signing key.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    /// `http://host:port/path` URLs.
    pub urls: Vec<String>,
    /// The HMAC key.
    pub secret: Vec<u8>,
}

impl Webhooks {
    /// Checks the URLs: each must be `http://host:port/path`.
    pub fn check(&self) -> Result<(), String> {
        for url in &self.urls {
            parse(url).ok_or_else(|| format!("invalid webhook URL `{url}`: expected http://HOST:PORT/PATH (https is not supported yet)"))?;
        }
        if !self.urls.is_empty() && self.secret.len() < 16 {
            return Err("the webhook secret must be at least 16 bytes: set CONTAIN_WEBHOOK_SECRET".into());
        }
        Ok(())
    }

    /// Sends `event` about `run_id` to every URL, in the background.
    pub fn notify(&self, event: &str, run_id: &str, detail: Value) {
        if self.urls.is_empty() {
            return;
        }
        let body = json!({ "event": event, "run_id": run_id, "detail": detail }).to_string();
        for url in self.urls.clone() {
            let body = body.clone();
            let secret = self.secret.clone();
            let run_id = run_id.to_string();
            let event = event.to_string();
            tokio::spawn(async move {
                for attempt in 1..=ATTEMPTS {
                    match tokio::time::timeout(ATTEMPT_TIMEOUT, deliver(&url, &secret, &body)).await {
                        Ok(Ok(())) => {
                            tracing::info!(run_id = %run_id, event = %event, url = %url, attempt, "webhook delivered");
                            return;
                        }
                        Ok(Err(error)) => tracing::warn!(run_id = %run_id, event = %event, url = %url, attempt, "webhook delivery failed: {error}"),
                        Err(_) => tracing::warn!(run_id = %run_id, event = %event, url = %url, attempt, "webhook delivery timed out"),
                    }
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(FIRST_WAIT * 2u32.pow(attempt - 1)).await;
                    }
                }
                tracing::error!(run_id = %run_id, event = %event, url = %url, "webhook not delivered after {ATTEMPTS} attempts");
            });
        }
    }
}

/// Returns the signature header's value for `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Splits `http://host:port/path` into the address and the path.
fn parse(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (address, path) = match rest.split_once('/') {
        Some((address, path)) => (address, format!("/{path}")),
        None => (rest, "/".to_string()),
    };
    let (host, port) = address.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok()).then(|| (address.to_string(), path))
}

/// Sends one HTTP/1.1 POST; any 2xx status is success.
async fn deliver(url: &str, secret: &[u8], body: &str) -> Result<(), String> {
    let (address, path) = parse(url).ok_or("invalid URL")?;
    let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-contain-signature: {}\r\nconnection: close\r\n\r\n{body}",
        body.len(),
        signature(secret, timestamp, body)
    );
    let mut stream = tokio::net::TcpStream::connect(&address).await.map_err(|e| e.to_string())?;
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(|e| e.to_string())?;
    let status_line = String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_string();
    match status_line.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) {
        Some(status) if (200..300).contains(&status) => Ok(()),
        _ => Err(format!("the receiver answered `{status_line}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let signed = signature(b"Jefe", 0, "what do ya want for nothing?");
        assert_ne!(signed, signature(b"Jefe", 1, "what do ya want for nothing?"), "the timestamp is signed");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac.finalize().into_bytes()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(signed.starts_with("t=0,v1="));
    }

    #[test]
    fn urls() {
        assert_eq!(parse("http://127.0.0.1:9000/hooks/contain"), Some(("127.0.0.1:9000".into(), "/hooks/contain".into())));
        assert_eq!(parse("https://example.com/x"), None);
        assert_eq!(parse("http://no-port/x"), None);
    }
}
