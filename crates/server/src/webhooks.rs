//! Webhook callbacks on run state changes (awaiting approval, finished, rolled back), to the
//! configured URLs only. Each body is signed with HMAC-SHA256 over `<timestamp>.<body>`, sent in
//! the header `x-contain-signature: t=<unix seconds>,v1=<hex>`, so a receiver can check both the
//! sender and the freshness. Delivery runs on a task of its own and is retried with backoff: it
//! never holds up a run. `https://` URLs are checked against the system's certificate
//! authorities, or against the ones given with `--webhook-ca`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;

/// Attempts per delivery, the first included.
const ATTEMPTS: u32 = 5;
/// The wait before the second attempt, doubled for each attempt after it.
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The maximum time of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The webhook URLs and the signing key.
#[derive(Clone, Default)]
pub struct Webhooks {
    urls: Vec<String>,
    secret: Vec<u8>,
    /// The TLS client of `https://` URLs.
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of debug output.
        f.debug_struct("Webhooks").field("urls", &self.urls).finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Checks the URLs, each `http://HOST[:PORT]/PATH` or `https://HOST[:PORT]/PATH`, and the
    /// secret, and sets up TLS for the https ones: `ca` names the certificate authorities
    /// (PEM) to trust instead of the system's.
    pub fn new(urls: Vec<String>, secret: Vec<u8>, ca: Option<&Path>) -> Result<Webhooks, String> {
        for url in &urls {
            parse(url).ok_or_else(|| format!("invalid webhook URL `{url}`: expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH"))?;
        }
        if !urls.is_empty() && secret.len() < 16 {
            return Err("the webhook secret must be at least 16 bytes: set CONTAIN_WEBHOOK_SECRET".into());
        }
        let tls = if urls.iter().any(|u| u.starts_with("https://")) { Some(TlsConnector::from(client_config(ca)?)) } else { None };
        Ok(Webhooks { urls, secret, tls })
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
            let tls = self.tls.clone();
            let run_id = run_id.to_string();
            let event = event.to_string();
            tokio::spawn(async move {
                for attempt in 1..=ATTEMPTS {
                    match tokio::time::timeout(ATTEMPT_TIMEOUT, deliver(&url, &secret, &body, tls.as_ref())).await {
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

/// Builds the TLS client settings of https webhooks.
fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for certificate in crate::tls::certificates(path, "webhook certificate authorities").map_err(|e| e.to_string())? {
                roots.add(certificate).map_err(|e| format!("cannot use a certificate of {}: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no system certificate authorities found for https webhooks: give --webhook-ca".into());
            }
        }
    }
    let config = ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A webhook URL taken apart.
#[derive(Debug, PartialEq)]
struct Target {
    https: bool,
    host: String,
    /// `host:port`, for the connection and the `host` header.
    address: String,
    path: String,
}

/// Splits `http://host:port/path` or `https://host[:port]/path`.
fn parse(url: &str) -> Option<Target> {
    let (https, rest) = match url.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("http://")?),
    };
    let (address, path) = match rest.split_once('/') {
        Some((address, path)) => (address, format!("/{path}")),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok()?),
        None if https => (address, 443),
        None => (address, 80),
    };
    (!host.is_empty() && !host.contains(['@', '?', '#'])).then(|| Target { https, host: host.to_string(), address: format!("{host}:{port}"), path })
}

/// Sends one HTTP/1.1 POST; any 2xx status is success.
async fn deliver(url: &str, secret: &[u8], body: &str, tls: Option<&TlsConnector>) -> Result<(), String> {
    let target = parse(url).ok_or("invalid URL")?;
    let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let request = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-contain-signature: {}\r\nconnection: close\r\n\r\n{body}",
        target.path,
        target.address,
        body.len(),
        signature(secret, timestamp, body)
    );
    let stream = tokio::net::TcpStream::connect(&target.address).await.map_err(|e| e.to_string())?;
    let response = if target.https {
        let connector = tls.ok_or("https webhooks are not set up")?;
        let name = ServerName::try_from(target.host.clone()).map_err(|e| format!("invalid host name `{}`: {e}", target.host))?;
        let stream = connector.connect(name, stream).await.map_err(|e| format!("TLS: {e}"))?;
        exchange(stream, &request).await?
    } else {
        exchange(stream, &request).await?
    };
    let status_line = String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_string();
    match status_line.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) {
        Some(status) if (200..300).contains(&status) => Ok(()),
        _ => Err(format!("the receiver answered `{status_line}`")),
    }
}

/// Writes the request and reads the whole response.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> Result<Vec<u8>, String> {
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    match stream.read_to_end(&mut response).await {
        Ok(_) => Ok(response),
        // Some TLS servers close without close_notify after a `connection: close` response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => Ok(response),
        Err(e) => Err(e.to_string()),
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
        let plain = parse("http://127.0.0.1:9000/hooks/contain").unwrap();
        assert_eq!((plain.https, plain.address.as_str(), plain.path.as_str()), (false, "127.0.0.1:9000", "/hooks/contain"));
        let secure = parse("https://soar.example/hooks").unwrap();
        assert_eq!((secure.https, secure.host.as_str(), secure.address.as_str()), (true, "soar.example", "soar.example:443"));
        assert_eq!(parse("http://no-port/x").map(|t| t.address), Some("no-port:80".to_string()));
        assert_eq!(parse("ftp://127.0.0.1:21/x"), None);
        assert_eq!(parse("https://user@host:443/x"), None);
    }
}
