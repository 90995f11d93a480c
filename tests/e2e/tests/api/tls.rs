//! TLS: the server over HTTPS with client certificates required, and webhooks to an HTTPS
//! receiver. Certificates come from the `openssl` command; requests go through `curl`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use contain_e2e::Harness;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::{Server, tokens};

/// A test certificate authority, a server certificate for 127.0.0.1 and a client certificate,
/// all signed by it.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    fn new(dir: &Path) -> Certificates {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl").args(args).current_dir(&dir).output().expect("the openssl command runs");
            assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        };
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(&[&["req", "-x509"], &key[..], &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=contain test CA"]].concat());
        for (name, extension) in [("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")] {
            openssl(&[&["req"], &key[..], &["-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr"), "-subj", &format!("/CN={name}")]].concat());
            std::fs::write(dir.join(format!("{name}.ext")), format!("{extension}\n")).unwrap();
            openssl(&[
                "x509", "-req", "-in", &format!("{name}.csr"), "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", &format!("{name}.pem"), "-extfile", &format!("{name}.ext"),
            ]);
        }
        Certificates { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// Runs curl against the server; returns its exit code and output.
fn curl(args: &[&str]) -> (i32, String) {
    let output = Command::new("curl").args(["-sS", "--max-time", "10"]).args(args).output().expect("the curl command runs");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr))
}

#[tokio::test]
async fn https_with_client_certificates() {
    let harness = Harness::new().await;
    let pki = Certificates::new(harness.state_dir.path());
    let (tokens_file, tokens) = tokens(&harness);
    let viewer = &tokens[0].1;
    let tls = ["--tls-certificate", &pki.path("server.pem"), "--tls-key", &pki.path("server.key"), "--client-ca", &pki.path("ca.pem")];
    let server = Server::start_with(&harness, &harness.endpoint, &tokens_file, &tls);
    let url = format!("https://{}/v1/runs", server.address);
    let authorization = format!("authorization: Bearer {viewer}");

    let (code, output) = curl(&["--cacert", &pki.path("ca.pem"), "--cert", &pki.path("client.pem"), "--key", &pki.path("client.key"), "-H", &authorization, &url]);
    assert_eq!(code, 0, "{output}");
    let listed: Value = serde_json::from_str(&output).unwrap_or_else(|_| panic!("JSON: {output}"));
    assert!(listed["runs"].is_array(), "{listed}");

    // Without a client certificate the handshake fails, whatever the token.
    let (code, output) = curl(&["--cacert", &pki.path("ca.pem"), "-H", &authorization, &url]);
    assert_ne!(code, 0, "refused without a client certificate: {output}");
    // Plain HTTP on the TLS port gets no API response.
    let (code, output) = curl(&["-H", &authorization, &format!("http://{}/v1/runs", server.address)]);
    assert!(code != 0 || !output.contains("\"runs\""), "{output}");

    // A certificate the server cannot use is refused at start, naming the file.
    let broken = harness.contain(&["serve", "--tokens", &tokens_file, "--tls-certificate", &pki.path("server.csr"), "--tls-key", &pki.path("server.key")]);
    assert_eq!(broken.code, 2, "{}", broken.stderr);
    assert!(broken.stderr.contains("server.csr"), "{}", broken.stderr);
    assert!(broken.stderr.contains("no PEM certificate"), "{}", broken.stderr);
}

/// An HTTPS webhook receiver gets the signed event; the server checks its certificate against
/// `--webhook-ca`.
#[tokio::test]
async fn https_webhook() {
    let harness = Harness::new().await;
    let pki = Certificates::new(harness.state_dir.path());
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(receiver_config(&pki)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hooks/contain", listener.local_addr().unwrap());
    let (sender, mut delivered) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(mut stream) = acceptor.accept(stream).await else { continue };
            let mut raw = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let read = stream.read(&mut chunk).await.unwrap_or(0);
                raw.extend_from_slice(&chunk[..read]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if read == 0 || text.split_once("\r\n\r\n").is_some_and(|(_, body)| body.ends_with('}')) {
                    break;
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            let _ = stream.shutdown().await;
            let _ = sender.send(String::from_utf8_lossy(&raw).to_string());
        }
    });

    let (tokens_file, tokens) = tokens(&harness);
    let secret = "https-webhook-secret-for-tests";
    let args = ["--webhook", &url, "--webhook-ca", &pki.path("ca.pem")];
    let server = Server::start_env(&harness, &harness.endpoint, &tokens_file, &args, &[("CONTAIN_WEBHOOK_SECRET", secret)]);
    let body = json!({ "playbook": "aws/ec2-instance-compromise", "inputs": { "instance": harness.estate.single.instance_id, "incident": "INC-H1" } }).to_string();
    let started = server.request("POST", "/v1/runs", Some(&tokens[1].1), Some(&body)).await;
    assert_eq!(started.status, 202, "{:?}", started.body);

    let request = tokio::time::timeout(std::time::Duration::from_secs(60), delivered.recv()).await.expect("a webhook within a minute").unwrap();
    let (head, payload) = request.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /hooks/contain "), "{head}");
    let header = head.lines().find_map(|l| l.strip_prefix("x-contain-signature: ")).expect("a signature header");
    let timestamp: u64 = header.strip_prefix("t=").and_then(|r| r.split(',').next()).unwrap().parse().unwrap();
    assert_eq!(header, contain_server::webhooks::signature(secret.as_bytes(), timestamp, payload));
    let event: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(event["run_id"], started.body["run_id"], "{event}");

    // A webhook URL the server cannot use is refused at start.
    let refused = harness.contain(&["serve", "--tokens", &tokens_file, "--webhook", "ftp://127.0.0.1:21/x"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("ftp://127.0.0.1:21/x"), "{}", refused.stderr);
    assert!(refused.stderr.contains("https://HOST"), "{}", refused.stderr);
}

/// Builds the receiver's TLS settings: the server certificate for 127.0.0.1.
fn receiver_config(pki: &Certificates) -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    let chain = rustls::pki_types::CertificateDer::pem_file_iter(pki.path("server.pem")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}
