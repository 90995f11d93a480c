//! Checks shared by the actions' `with` options.

use contain_core::{ActionError, ErrorKind, OptionProblem, is_template};
use serde_json::{Map, Value};

/// Reports each key of `options` that is not in `valid`.
pub(crate) fn unknown_keys(options: &Map<String, Value>, valid: &[&str]) -> Vec<OptionProblem> {
    let expected = if valid.is_empty() { "this action takes no options".to_string() } else { format!("valid options are {}", valid.join(", ")) };
    options
        .keys()
        .filter(|key| !valid.contains(&key.as_str()))
        .map(|key| OptionProblem { key: Some(key.clone()), message: format!("unknown option `{key}`: {expected}") })
        .collect()
}

/// Reads a true-or-false option, recording a problem when it is neither. A template counts as
/// the default until the plan fills it in.
pub(crate) fn flag(options: &Map<String, Value>, key: &str, default: bool, problems: &mut Vec<OptionProblem>) -> bool {
    match options.get(key) {
        None => default,
        Some(Value::Bool(value)) => *value,
        Some(value) if is_template(value) => default,
        Some(other) => {
            problems.push(OptionProblem { key: Some(key.to_string()), message: format!("invalid {key} {other}: expected true or false") });
            default
        }
    }
}

/// The error a plan returns for options that failed their check.
pub(crate) fn invalid(problems: Vec<OptionProblem>) -> ActionError {
    ActionError::new(ErrorKind::Invalid, problems.into_iter().map(|problem| problem.message).collect::<Vec<_>>().join("; "))
}
