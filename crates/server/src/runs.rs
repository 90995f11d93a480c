//! Reading runs: the list with filters and paging, one run, and its journal.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use contain_engine::{RunStatus, RunSummary, incident_record, run_summary};
use contain_journal::{is_valid_run_id, journal_path, list_run_ids, read_journal};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// The largest offset accepted.
const MAX_OFFSET: usize = 1_000_000_000;
/// The maximum number of runs on one page.
const MAX_LIMIT: usize = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only runs with this status. `awaiting_approval` and `rejected` list only `pending`.
    #[param(inline, value_type = Option<crate::openapi::StatusFilter>)]
    status: Option<String>,
    /// The playbook: its `name`, or its path under the playbooks directory as `GET
    /// /v1/playbooks` lists it.
    playbook: Option<String>,
    /// RFC 3339: runs started at or after this time.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Runs per page, 1 to 500; 50 when left out.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// Runs to skip, for the next pages.
    #[param(minimum = 0, maximum = 1_000_000_000)]
    offset: Option<usize>,
}

/// The runs with a journal, newest first, and the runs waiting for approval.
#[utoipa::path(
    get,
    path = "/v1/runs",
    operation_id = "listRuns",
    tag = "runs",
    description = "Role: viewer.",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`runs` (one page), `total`, `offset`, `limit`, and `pending`: runs awaiting approval or rejected.", body = Value),
        (status = 400, description = "The request names a bad value.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the role.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<Arc<AppState>>, Query(query): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    // Runs awaiting approval, or rejected, have no journal yet: they are listed under `pending`.
    let waiting = query.status.as_deref().filter(|s| matches!(*s, "awaiting_approval" | "rejected"));
    let status = match &query.status {
        Some(_) if waiting.is_some() => None,
        Some(text) => Some(RunStatus::parse(text).ok_or_else(|| {
            ApiError::invalid(format!(
                "invalid status `{text}`: valid statuses are running, succeeded, partial, failed, rolled_back, partly_rolled_back, interrupted, awaiting_approval, rejected"
            ))
        })?),
        None => None,
    };
    let since = match &query.since {
        Some(text) => Some(DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| ApiError::invalid(format!("invalid since `{text}`: {e}; expected RFC 3339 such as 2026-12-04T10:00:00Z")))?),
        None => None,
    };
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid(format!("invalid limit {limit}: it must be between 1 and {MAX_LIMIT}")));
    }

    let dir = state.engine.state_dir();
    let ids = list_run_ids(dir).map_err(|e| ApiError::internal(format!("cannot list runs: {e}")))?;
    let mut runs: Vec<RunSummary> = Vec::new();
    for id in ids.into_iter().filter(|_| waiting.is_none()) {
        let summary = run_summary(dir, &id).map_err(|e| ApiError::internal(format!("cannot read the journal of {id}: {e}")))?;
        let keep = status.is_none_or(|s| summary.status == s)
            && query.playbook.as_deref().is_none_or(|p| names_playbook(p, &summary.playbook))
            && since.is_none_or(|since| summary.started_at.is_some_and(|started| started >= since));
        if keep {
            runs.push(summary);
        }
    }
    runs.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.run_id.cmp(&a.run_id)));
    let total = runs.len();
    let offset = query.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::invalid(format!("invalid offset {offset}: it must be between 0 and {MAX_OFFSET}")));
    }
    let page: Vec<RunSummary> = runs.into_iter().skip(offset).take(limit).collect();
    let mut pending: Vec<crate::approvals::Pending> = state
        .pending
        .lock()
        .expect("pending lock")
        .values()
        .filter(|p| waiting.is_none_or(|w| p.status == w) && (status.is_none() || waiting.is_some()))
        .filter(|p| query.playbook.as_deref().is_none_or(|name| names_playbook(name, &p.playbook)))
        .cloned()
        .collect();
    pending.sort_by(|a, b| b.requested_at.cmp(&a.requested_at));
    let pending: Vec<Value> = pending.iter().map(crate::approvals::Pending::public).collect();
    Ok(Json(json!({ "runs": page, "total": total, "offset": offset, "limit": limit, "pending": pending })))
}

/// Checks whether a `playbook` filter names a run's playbook: by the playbook's `name`, or by
/// the API's name for it (its path under the playbooks directory), whose last part is the file
/// name.
fn names_playbook(filter: &str, playbook: &str) -> bool {
    filter == playbook || filter.rsplit('/').next() == Some(playbook)
}

pub(crate) fn checked(state: &AppState, id: &str) -> Result<(), ApiError> {
    if !is_valid_run_id(id) {
        return Err(ApiError::invalid(format!("invalid run id `{id}`: run ids hold letters, digits, `-`, `_` and `.`")));
    }
    if !journal_path(state.engine.state_dir(), id).exists() {
        if let Some(pending) = crate::approvals::find(state, id) {
            return Err(ApiError::new(StatusCode::CONFLICT, "not_started", format!("run {id} is {}, so it has not started and has no journal", pending.status)));
        }
        return Err(ApiError::not_found(format!("no run `{id}`: GET /v1/runs lists them")));
    }
    Ok(())
}

/// The run's summary, and its record: progress per step, target and operation, who started
/// and approved it, and its rollbacks.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}",
    operation_id = "getRun",
    tag = "runs",
    description = "Role: viewer.",
    params(("id" = String, Path, description = "The run id.", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`run`: the summary with the status; `record`: the incident record.", body = Value),
        (status = 400, description = "The request names a bad value.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the role.", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such run, plan or playbook.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn show(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if let Some(pending) = crate::approvals::find(&state, &id) {
        return Ok(Json(json!({ "run": pending.public() })));
    }
    checked(&state, &id)?;
    let read_error = |e: &dyn std::fmt::Display| ApiError::internal(format!("cannot read the journal of {id}: {e}"));
    let summary = run_summary(state.engine.state_dir(), &id).map_err(|e| read_error(&e))?;
    let record = incident_record(state.engine.state_dir(), &id).map_err(|e| read_error(&e))?;
    Ok(Json(json!({ "run": summary, "record": record })))
}

/// The run's journal records, and what the check of its hash chain found.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}/journal",
    operation_id = "getRunJournal",
    tag = "runs",
    description = "Role: viewer.",
    params(("id" = String, Path, description = "The run id.", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`records`, `intact` and `problems`.", body = Value),
        (status = 400, description = "The request names a bad value.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the role.", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such run, plan or playbook.", body = crate::openapi::ErrorBody),
        (status = 409, description = "The run awaits approval or was rejected, so it has no journal.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn journal(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    checked(&state, &id)?;
    let journal = read_journal(&journal_path(state.engine.state_dir(), &id)).map_err(|e| ApiError::internal(format!("cannot read the journal of {id}: {e}")))?;
    let problems: Vec<String> = journal.problems.iter().map(|p| format!("line {}: {}", p.line, p.message)).collect();
    Ok(Json(json!({ "run_id": id, "intact": journal.chain_intact(), "problems": problems, "records": journal.records })))
}
