//! The `contain serve` process of a test, and plain HTTP requests to it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

use contain_e2e::Harness;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One response of the server.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: Value,
}

/// A running `contain serve`, stopped when dropped.
pub struct Server {
    child: Child,
    pub address: String,
    pub log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Sends a signal, such as `HUP`, to the server.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().expect("the kill command runs");
        assert!(sent.success(), "SIG{name} sent to {pid}");
    }

    /// Sends SIGTERM and waits for the server to exit; returns its exit code and its log.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("the kill command runs");
        assert!(sent.success(), "SIGTERM sent to {pid}");
        let status = self.child.wait().expect("the server exits");
        // The log thread ends when the server's stderr closes.
        std::thread::sleep(std::time::Duration::from_millis(200));
        (status.code(), self.log.lock().unwrap().clone())
    }

    pub fn start(harness: &Harness, endpoint: &str, tokens: &str) -> Server {
        Server::start_with(harness, endpoint, tokens, &[])
    }

    /// Starts the server with more arguments and environment variables.
    pub fn start_with(harness: &Harness, endpoint: &str, tokens: &str, extra: &[&str]) -> Server {
        Server::start_env(harness, endpoint, tokens, extra, &[])
    }

    pub fn start_env(harness: &Harness, endpoint: &str, tokens: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--tokens", tokens];
        if !extra.contains(&"--playbooks") {
            args.extend(["--playbooks", "playbooks"]);
        }
        args.extend(extra);
        let mut vars = vec![("CONTAIN_LOG", "info")];
        vars.extend(env);
        let mut command = harness.command(endpoint, &vars, &args);
        let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().expect("contain serve starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines.next().expect("contain serve prints its address").unwrap();
            // Plain HTTP or HTTPS: TLS tests talk to the address with curl.
            if let Some(address) = line.strip_prefix("contain serve: listening on http://").or_else(|| line.strip_prefix("contain serve: listening on https://")) {
                break address.to_string();
            }
        };
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Server { child, address, log }
    }

    /// Sends one request over a new connection and reads the whole response.
    pub async fn request(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Response {
        self.request_with(method, path, token, &[], body).await
    }

    pub async fn request_with(&self, method: &str, path: &str, token: Option<&str>, extra: &[(&str, &str)], body: Option<&str>) -> Response {
        let mut stream = tokio::net::TcpStream::connect(&self.address).await.expect("the server accepts");
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n", self.address);
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(token) = token {
            head.push_str(&format!("authorization: Bearer {token}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (headers, payload) = text.split_once("\r\n\r\n").expect("an HTTP response");
        let status = headers.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        let body = serde_json::from_str(payload).unwrap_or_else(|_| Value::String(payload.to_string()));
        Response { status, headers: headers.to_lowercase(), body }
    }
}

/// Creates a token per role with `contain token new`, and writes the tokens file.
pub fn tokens(harness: &Harness) -> (String, Vec<(&'static str, String)>) {
    let mut file = String::new();
    let mut tokens = Vec::new();
    for role in ["viewer", "responder", "approver", "admin"] {
        let created = harness.contain(&["token", "new", "--principal", &format!("{role}-user"), "--roles", role]);
        assert_eq!(created.code, 0, "{}", created.stderr);
        let line = created.stderr.lines().find(|l| l.starts_with("- { principal:")).expect("the line for the tokens file");
        file.push_str(line);
        file.push('\n');
        tokens.push((role, created.stdout.trim().to_string()));
    }
    let path = harness.state_dir.path().join("tokens.yaml");
    std::fs::write(&path, &file).unwrap();
    assert!(!file.contains(&tokens[0].1), "the file stores hashes only");
    (path.display().to_string(), tokens)
}

/// Polls a run until its status is `want`.
pub async fn wait_for(server: &Server, token: &str, run_id: &str, want: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let shown = server.request("GET", &format!("/v1/runs/{run_id}"), Some(token), None).await;
        assert_eq!(shown.status, 200, "{:?}", shown.body);
        if shown.body["run"]["status"] == want {
            return shown.body;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "run {run_id} never reached {want}: {:#}", shown.body);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
