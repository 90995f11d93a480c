//! A fault-injecting HTTP proxy on 127.0.0.1, in front of moto.
//!
//! It forwards each request to moto over a new connection and records the request's AWS action
//! and user agent. A [`Fault`] rule acts on matching requests instead of forwarding them as
//! they are: it returns an error, resets the connection, holds the request, or slows the response,
//! either before moto sees the request or after moto made the change, so tests can make one
//! specific cloud call fail in each way a network and a cloud fail.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Returns an error for requests whose form body contains every string of `body_contains`, after
/// letting the first `skip` such requests through, for `times` requests.
#[derive(Debug, Clone)]
pub struct Fault {
    pub body_contains: Vec<String>,
    /// Requests whose body contains any of these strings do not match, such as `DryRun=true`.
    pub body_lacks: Vec<String>,
    /// The response body, instead of an EC2 error document built from `code` and `message`.
    pub body: Option<String>,
    pub skip: usize,
    pub times: usize,
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The effect of the fault. [`Effect::Answer`] responds with `status`, `code` and `message`.
    pub effect: Effect,
}

impl Fault {
    /// Returns a fault that delays the first call of `action` (not a dry run) by `millis`, then
    /// forwards it.
    pub fn delay(action: &str, millis: u64) -> Fault {
        Fault {
            body_contains: vec![format!("Action={action}&")],
            body_lacks: vec!["DryRun=true".into()],
            body: None,
            skip: 0,
            times: 1,
            status: 0,
            code: String::new(),
            message: String::new(),
            effect: Effect::Delay(millis),
        }
    }
}

/// What a matching fault does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Respond with the error without forwarding: the call took no effect.
    Answer,
    /// Forward the request, so moto makes the change, then answer the error instead of moto's
    /// answer: the call took effect but the client cannot know.
    AnswerAfterForward,
    /// Close the connection without an answer, before forwarding.
    Reset,
    /// Forward the request, then close the connection without an answer.
    ResetAfterForward,
    /// Hold the request for this many milliseconds, then close the connection: a time-out.
    Hang(u64),
    /// Wait this many milliseconds, then forward: a slow answer.
    Delay(u64),
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// The `Action=` of the form body, such as `ModifyNetworkInterfaceAttribute`.
    pub action: String,
    pub user_agent: String,
    pub body: String,
    /// True when a fault returned the response instead of moto.
    pub faulted: bool,
}

#[derive(Default)]
struct State {
    faults: Vec<(Fault, usize)>,
    seen: Vec<SeenRequest>,
    /// Rate limits, latency and errors, for the benchmark.
    limits: Option<crate::limits::LimitState>,
    /// The benchmark sends many requests: it keeps counts, not every request.
    keep_seen: bool,
}

/// A running proxy, on a thread and runtime of its own so that a test may block on a child
/// process while the proxy serves it. It stops when dropped.
pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl FaultProxy {
    /// Starts a proxy on an ephemeral port of 127.0.0.1 that forwards to `upstream`
    /// (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> anyhow::Result<FaultProxy> {
        crate::check_loopback(upstream)?;
        let upstream_addr = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind the proxy")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State { keep_seen: true, ..State::default() }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();

        let shared = state.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("a non-blocking listener");
                let accept = async {
                    while let Ok((client, _)) = listener.accept().await {
                        let state = shared.clone();
                        let upstream = upstream_addr.clone();
                        tokio::spawn(async move {
                            if let Err(error) = serve(client, &upstream, &state).await {
                                eprintln!("fault proxy: {error:#}");
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Ok(FaultProxy { url, state, stop: Some(stop) })
    }

    /// Imposes rate limits, latency and errors on every request, and stops keeping each request.
    pub fn set_limits(&self, limits: crate::CloudLimits) {
        let mut state = self.state.lock().expect("proxy state");
        state.limits = Some(crate::limits::LimitState::new(limits));
        state.keep_seen = false;
    }

    /// Returns the counts of each action under the limits.
    pub fn counts(&self) -> std::collections::BTreeMap<String, crate::ActionCounts> {
        self.state.lock().expect("proxy state").limits.as_ref().map(|l| l.counts.clone()).unwrap_or_default()
    }

    pub fn add_fault(&self, fault: Fault) {
        self.state.lock().expect("proxy state").faults.push((fault, 0));
    }

    pub fn clear_faults(&self) {
        self.state.lock().expect("proxy state").faults.clear();
    }

    /// Returns every request seen so far, in order.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.state.lock().expect("proxy state").seen.clone()
    }
}

async fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>) -> anyhow::Result<()> {
    let (head, body) = read_request(&mut client).await?;
    let head_text = String::from_utf8_lossy(&head).to_string();
    let body_text = String::from_utf8_lossy(&body).to_string();
    let user_agent = header(&head_text, "user-agent").unwrap_or_default();
    let action = body_text
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or_default()
        .to_string();

    let verdict = state.lock().expect("proxy state").limits.as_mut().map(|limits| limits.admit(&action, body_text.contains("DryRun=true")));
    match verdict {
        Some(crate::limits::Verdict::Throttle) => {
            return answer(&mut client, 503, "RequestLimitExceeded", "Request limit exceeded.").await;
        }
        Some(crate::limits::Verdict::ServerError) => {
            return answer(&mut client, 500, "InternalError", "An internal error has occurred.").await;
        }
        Some(crate::limits::Verdict::Forward(latency)) => tokio::time::sleep(latency).await,
        None => {}
    }

    let fault = {
        let mut state = state.lock().expect("proxy state");
        let fault = state.faults.iter_mut().find_map(|(fault, matched)| {
            let excluded = fault.body_lacks.iter().any(|s| body_text.contains(s.as_str()));
            if excluded || !fault.body_contains.iter().all(|s| body_text.contains(s.as_str())) {
                return None;
            }
            *matched += 1;
            (*matched > fault.skip && *matched <= fault.skip + fault.times).then(|| fault.clone())
        });
        if state.keep_seen {
            state.seen.push(SeenRequest { action, user_agent, body: body_text, faulted: fault.is_some() });
        }
        fault
    };

    let Some(fault) = fault else {
        let response = forward(&head_text, &body, upstream).await?;
        client.write_all(&response).await?;
        client.shutdown().await.ok();
        return Ok(());
    };
    match fault.effect {
        Effect::Answer => {}
        Effect::AnswerAfterForward => {
            forward(&head_text, &body, upstream).await?;
        }
        Effect::Reset => return Ok(()),
        Effect::ResetAfterForward => {
            forward(&head_text, &body, upstream).await?;
            return Ok(());
        }
        Effect::Hang(millis) => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            return Ok(());
        }
        Effect::Delay(millis) => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            let response = forward(&head_text, &body, upstream).await?;
            client.write_all(&response).await?;
            client.shutdown().await.ok();
            return Ok(());
        }
    }
    {
        let xml = fault.body.clone().unwrap_or_else(|| {
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>",
                fault.code, fault.message
            )
        });
        let response = format!(
            "HTTP/1.1 {} Injected\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{xml}",
            fault.status,
            xml.len()
        );
        client.write_all(response.as_bytes()).await?;
    }

    Ok(())
}

/// Answers with an EC2 error document.
async fn answer(client: &mut TcpStream, status: u16, code: &str, message: &str) -> anyhow::Result<()> {
    let xml = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>limits</RequestID></Response>");
    let response = format!("HTTP/1.1 {status} Limited\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{xml}", xml.len());
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await.ok();
    Ok(())
}

/// Sends the request to moto over a new connection, closed after the response so that the
/// response ends at EOF, and returns the response.
async fn forward(head_text: &str, body: &[u8], upstream: &str) -> anyhow::Result<Vec<u8>> {
    let mut forwarded: Vec<u8> = Vec::new();
    for line in head_text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        forwarded.extend_from_slice(line.as_bytes());
        forwarded.extend_from_slice(b"\r\n");
    }
    forwarded.extend_from_slice(b"connection: close\r\n\r\n");
    forwarded.extend_from_slice(body);

    let mut server = TcpStream::connect(upstream).await.with_context(|| format!("cannot reach moto at {upstream}"))?;
    server.write_all(&forwarded).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    Ok(response)
}

/// Reads one request: the head up to the blank line, and a body of `content-length` bytes.
async fn read_request(client: &mut TcpStream) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let read = client.read(&mut chunk).await?;
        anyhow::ensure!(read > 0, "client closed the connection before the request head ended");
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(position) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break position + 4;
        }
    };
    let head = buffer[..head_end].to_vec();
    let length: usize = header(&String::from_utf8_lossy(&head), "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let read = client.read(&mut chunk).await?;
        anyhow::ensure!(read > 0, "client closed the connection before the request body ended");
        body.extend_from_slice(&chunk[..read]);
    }
    Ok((head, body))
}

fn header(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
    })
}
