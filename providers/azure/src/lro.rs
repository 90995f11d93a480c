//! Long-running ARM operations, polled by the provider.
//!
//! The generated 0.21 clients poll only `Azure-AsyncOperation`, wait 30 s when the server names
//! no `Retry-After`, drop the error body, hide the operation URL and do not poll deletes. Here a
//! write is sent as a plain request, and its `Azure-AsyncOperation` (or else `Location`) URL is
//! polled until the operation ends. A write counts as done only when its operation Succeeded.

use std::time::Instant;

use contain_core::{ActionError, CallContext, ErrorKind};
use serde_json::Value;

use crate::http::{Api, Http, Reply, display_path, error_detail};

/// The result of a finished write: the operation URL polled, if there was one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Finished {
    pub(crate) operation: Option<String>,
}

impl Http {
    /// Waits until the operation a write started has ended. Returns an error that names the
    /// operation URL and carries the server's error when it ended Failed or Canceled, or when it
    /// did not end in time.
    pub(crate) async fn finish(&self, context: &CallContext, reply: &Reply, description: &str) -> Result<Finished, ActionError> {
        if let Some(url) = reply.header("azure-asyncoperation").map(str::to_string) {
            context.pending.record(&format!("{description}: waiting for operation {url}"));
            self.poll_status(context, &url, reply, description).await?;
            return Ok(Finished { operation: Some(url) });
        }
        if reply.status == 202
            && let Some(url) = reply.header("location").map(str::to_string)
        {
            context.pending.record(&format!("{description}: waiting for operation {url}"));
            self.poll_location(context, &url, reply, description).await?;
            return Ok(Finished { operation: Some(url) });
        }
        match provisioning_state(&reply.body) {
            Some(state @ ("Failed" | "Canceled")) => Err(ActionError::new(ErrorKind::Other, format!("{description}: the resource is {state}")).with_code(state)),
            _ => Ok(Finished::default()),
        }
    }

    /// Polls an `Azure-AsyncOperation` URL, whose body carries `status`.
    async fn poll_status(&self, context: &CallContext, url: &str, first: &Reply, description: &str) -> Result<(), ActionError> {
        let started = Instant::now();
        let mut wait = first.retry_after().unwrap_or(self.timing.poll_interval);
        loop {
            self.pause(wait, started, url, description).await?;
            let reply = self.get(context, Api::Arm, url).await?;
            let status = reply.body.get("status").and_then(Value::as_str).unwrap_or("InProgress");
            match status {
                "Succeeded" => return Ok(()),
                "Failed" | "Canceled" => {
                    let (code, message) = error_detail(&reply.body);
                    let mut error = ActionError::new(ErrorKind::Other, format!("{description}: operation {} ended {status}: {}{message}", display_path(url), code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default()));
                    if let Some(code) = code {
                        error = error.with_code(code);
                    }
                    return Err(error);
                }
                _ => wait = reply.retry_after().unwrap_or(self.timing.poll_interval),
            }
        }
    }

    /// Polls a `Location` URL, which returns 202 until the operation ends.
    async fn poll_location(&self, context: &CallContext, url: &str, first: &Reply, description: &str) -> Result<(), ActionError> {
        let started = Instant::now();
        let mut wait = first.retry_after().unwrap_or(self.timing.poll_interval);
        loop {
            self.pause(wait, started, url, description).await?;
            let reply = self.get(context, Api::Arm, url).await.map_err(|error| ActionError { message: format!("{description}: operation {} failed: {}", display_path(url), error.message), ..error })?;
            if reply.status != 202 {
                return Ok(());
            }
            wait = reply.retry_after().unwrap_or(self.timing.poll_interval);
        }
    }

    async fn pause(&self, wait: std::time::Duration, started: Instant, url: &str, description: &str) -> Result<(), ActionError> {
        if started.elapsed() + wait > self.timing.operation_timeout {
            return Err(ActionError::new(
                ErrorKind::Transient,
                format!("{description}: operation {} still running after {} s; read the resource to learn whether it took effect", display_path(url), started.elapsed().as_secs()),
            ));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

pub(crate) fn provisioning_state(body: &Value) -> Option<&str> {
    body.pointer("/properties/provisioningState").and_then(Value::as_str)
}
