//! `GET /metrics`: Prometheus text of runs by status, HTTP requests, and the cloud work of the
//! engine (attempts and passing failures, throttling apart).
//!
//! NOTE: step durations and per-API call counts are not measured yet.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use contain_engine::{cloud_counters, run_summary};
use contain_journal::list_run_ids;

use crate::AppState;
use crate::error::ApiError;

/// Counts of HTTP requests by method, route and status.
pub(crate) type RequestCounts = std::sync::Mutex<BTreeMap<(String, String, u16), u64>>;

/// Prometheus text: runs by status, step durations, cloud calls and throttling, HTTP requests.
#[utoipa::path(
    get,
    path = "/metrics",
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
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for id in list_run_ids(dir).map_err(|e| ApiError::internal(format!("cannot list runs: {e}")))? {
        if let Ok(summary) = run_summary(dir, &id) {
            *by_status.entry(summary.status.to_string()).or_default() += 1;
        }
    }
    let awaiting = state.pending.lock().expect("pending lock").values().filter(|p| p.status == "awaiting_approval").count();

    let mut out = String::new();
    let _ = writeln!(out, "# HELP contain_runs Runs with a journal in the state directory, by status.\n# TYPE contain_runs gauge");
    for (status, count) in &by_status {
        let _ = writeln!(out, "contain_runs{{status=\"{status}\"}} {count}");
    }
    let _ = writeln!(out, "# HELP contain_runs_awaiting_approval Runs waiting for a second person's approval.\n# TYPE contain_runs_awaiting_approval gauge");
    let _ = writeln!(out, "contain_runs_awaiting_approval {awaiting}");

    let counters = cloud_counters();
    let _ = writeln!(out, "# HELP contain_cloud_attempts_total Cloud attempts by the engine, by kind.\n# TYPE contain_cloud_attempts_total counter");
    for (kind, value) in [("read", counters.reads), ("change", counters.changes), ("revert", counters.reverts)] {
        let _ = writeln!(out, "contain_cloud_attempts_total{{kind=\"{kind}\"}} {value}");
    }
    let _ = writeln!(out, "# HELP contain_cloud_failures_total Passing cloud failures, which are retried, by kind.\n# TYPE contain_cloud_failures_total counter");
    for (kind, value) in [("throttled", counters.throttled), ("transient", counters.transient)] {
        let _ = writeln!(out, "contain_cloud_failures_total{{kind=\"{kind}\"}} {value}");
    }

    let _ = writeln!(out, "# HELP contain_http_requests_total HTTP requests, by method, route and status.\n# TYPE contain_http_requests_total counter");
    for ((method, route, status), count) in state.requests.lock().expect("requests lock").iter() {
        let _ = writeln!(out, "contain_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}");
    }
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
