//! `GET /metrics`: Prometheus text of runs by status, HTTP requests, step durations, and the
//! cloud work of the engine by operation kind (attempts and passing failures, throttling apart).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use contain_engine::{STEP_BUCKETS, cloud_calls, run_summary, step_durations};
use contain_journal::list_run_ids;

use crate::AppState;
use crate::error::ApiError;

/// Counts of HTTP requests by method, route and status.
pub(crate) type RequestCounts = std::sync::Mutex<BTreeMap<(String, String, u16), u64>>;

/// Prometheus text: runs by status, step durations, cloud calls and throttling, HTTP requests.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    description = "Role: viewer.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format 0.0.4.", body = String, content_type = "text/plain"),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the role.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, ApiError> {
    let dir = state.engine.state_dir();
    // Every status is listed, zero included, so that a dashboard's series never disappear.
    let statuses = ["running", "succeeded", "partial", "failed", "rolled_back", "partly_rolled_back", "interrupted", "awaiting_approval", "rejected"];
    let mut by_status: BTreeMap<String, u64> = statuses.iter().map(|s| (s.to_string(), 0)).collect();
    for pending in state.pending.lock().expect("pending lock").values() {
        *by_status.entry(pending.status.clone()).or_default() += 1;
    }
    for id in list_run_ids(dir).map_err(|e| ApiError::internal(format!("cannot list runs: {e}")))? {
        if let Ok(summary) = run_summary(dir, &id) {
            *by_status.entry(summary.status.to_string()).or_default() += 1;
        }
    }
    let awaiting = state.pending.lock().expect("pending lock").values().filter(|p| p.status == "awaiting_approval").count();

    let mut out = String::new();
    let _ = writeln!(out, "# HELP contain_runs Runs in the state directory, by status, those awaiting approval or rejected included.\n# TYPE contain_runs gauge");
    for (status, count) in &by_status {
        let _ = writeln!(out, "contain_runs{{status=\"{status}\"}} {count}");
    }
    let _ = writeln!(out, "# HELP contain_runs_awaiting_approval Runs waiting for a second person's approval.\n# TYPE contain_runs_awaiting_approval gauge");
    let _ = writeln!(out, "contain_runs_awaiting_approval {awaiting}");

    let calls = cloud_calls();
    let _ = writeln!(out, "# HELP contain_cloud_attempts_total Cloud attempts by the engine, by call (read, change, revert) and operation kind.\n# TYPE contain_cloud_attempts_total counter");
    for c in &calls {
        let _ = writeln!(out, "contain_cloud_attempts_total{{kind=\"{}\",operation=\"{}\"}} {}", c.call, c.operation, c.attempts);
    }
    let _ = writeln!(out, "# HELP contain_cloud_failures_total Passing cloud failures, which are retried, by failure (throttled, transient), call and operation kind.\n# TYPE contain_cloud_failures_total counter");
    for c in &calls {
        for (failure, value) in [("throttled", c.throttled), ("transient", c.transient)] {
            let _ = writeln!(out, "contain_cloud_failures_total{{failure=\"{failure}\",kind=\"{}\",operation=\"{}\"}} {value}", c.call, c.operation);
        }
    }

    let _ = writeln!(out, "# HELP contain_step_duration_seconds How long steps took to apply, by action.\n# TYPE contain_step_duration_seconds histogram");
    for step in step_durations() {
        for (bound, count) in STEP_BUCKETS.iter().zip(&step.buckets) {
            let _ = writeln!(out, "contain_step_duration_seconds_bucket{{action=\"{}\",le=\"{bound}\"}} {count}", step.action);
        }
        let _ = writeln!(out, "contain_step_duration_seconds_bucket{{action=\"{}\",le=\"+Inf\"}} {}", step.action, step.count);
        let _ = writeln!(out, "contain_step_duration_seconds_sum{{action=\"{}\"}} {}", step.action, step.sum_seconds);
        let _ = writeln!(out, "contain_step_duration_seconds_count{{action=\"{}\"}} {}", step.action, step.count);
    }

    let _ = writeln!(out, "# HELP contain_http_requests_total HTTP requests, by method, route and status.\n# TYPE contain_http_requests_total counter");
    for ((method, route, status), count) in state.requests.lock().expect("requests lock").iter() {
        let _ = writeln!(out, "contain_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}");
    }
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
