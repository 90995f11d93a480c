//! The playbooks the server offers: files `NAME.yaml` under the playbooks directory, named by
//! their path without `.yaml`, such as `aws/ec2-instance-compromise`.

use std::path::{Path, PathBuf};

use contain_playbook::Playbook;
use serde::Serialize;
use serde_json::Value;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Serialize)]
pub(crate) struct PlaybookSummary {
    pub name: String,
    pub description: String,
    pub inputs: Vec<InputSummary>,
}

#[derive(Debug, Serialize)]
pub(crate) struct InputSummary {
    pub name: String,
    #[serde(rename = "type")]
    pub input_type: String,
    pub description: String,
    pub required: bool,
    pub list: bool,
}

/// Lists the playbooks with their inputs, and the files that do not parse with their problems.
#[utoipa::path(
    get,
    path = "/v1/playbooks",
    operation_id = "listPlaybooks",
    tag = "playbooks",
    description = "Role: viewer.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`playbooks`: name, description and inputs of each; `invalid`: files with problems.", body = Value),
        (status = 401, description = "No token, or an unknown one.", body = crate::openapi::ErrorBody),
        (status = 403, description = "The principal lacks the role.", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let mut listed = Vec::new();
    let mut invalid = Vec::new();
    for name in names(&state.playbooks) {
        match load(&state, &name) {
            Ok((playbook, _)) => listed.push(summary(&name, &playbook)),
            Err(error) => invalid.push(json!({ "name": name, "problems": error.message })),
        }
    }
    Ok(Json(json!({ "playbooks": listed, "invalid": invalid })))
}

/// Lists the playbook names under `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = path.strip_prefix(dir).ok().and_then(|p| p.to_str()).and_then(|p| p.strip_suffix(".yaml")) {
                found.push(name.replace(std::path::MAIN_SEPARATOR, "/"));
            }
        }
    }
    found.sort();
    found
}

/// Returns the file of a playbook name, refusing names that would leave the directory.
pub(crate) fn path_of(dir: &Path, name: &str) -> Result<PathBuf, ApiError> {
    let valid = !name.is_empty()
        && name.split('/').all(|part| !part.is_empty() && !part.starts_with('.') && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    if !valid {
        return Err(ApiError::invalid(format!("invalid playbook name `{name}`: use a path under the playbooks directory without .yaml, such as aws/ec2-instance-compromise")));
    }
    let path = dir.join(format!("{name}.yaml"));
    if !path.is_file() {
        return Err(ApiError::not_found(format!("no playbook `{name}`: GET /v1/playbooks lists them")));
    }
    Ok(path)
}

/// Reads and validates a playbook, reporting every problem with its line and column.
pub(crate) fn load(state: &AppState, name: &str) -> Result<(Playbook, String), ApiError> {
    let path = path_of(&state.playbooks, name)?;
    let display = path.display().to_string();
    let source = std::fs::read_to_string(&path).map_err(|e| ApiError::internal(format!("cannot read playbook {name}: {e}")))?;
    match contain_playbook::parse(&source, state.engine.providers()) {
        Ok(playbook) => Ok((playbook, display)),
        Err(diagnostics) => {
            let lines: Vec<String> = diagnostics.0.iter().map(|d| d.display_in(&format!("{name}.yaml")).to_string()).collect();
            Err(ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid_playbook", lines.join("\n")))
        }
    }
}

pub(crate) fn summary(name: &str, playbook: &Playbook) -> PlaybookSummary {
    let inputs = playbook
        .inputs
        .iter()
        .map(|input| InputSummary {
            name: input.name.clone(),
            input_type: input.input_type.name().to_string(),
            description: input.description.clone(),
            required: input.required,
            list: input.list,
        })
        .collect();
    PlaybookSummary { name: name.to_string(), description: playbook.description.clone(), inputs }
}

/// Turns the JSON inputs of a request into NAME=VALUE pairs, as the command line gives them.
pub(crate) fn input_pairs(inputs: &serde_json::Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs = Vec::new();
    for (name, value) in inputs {
        let mut push = |value: &Value| -> Result<(), ApiError> {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                other => return Err(ApiError::invalid(format!("input `{name}`: {other} is not a string, number or boolean"))),
            };
            pairs.push((name.clone(), text));
            Ok(())
        };
        match value {
            Value::Array(items) => items.iter().try_for_each(&mut push)?,
            other => push(other)?,
        }
    }
    Ok(pairs)
}
