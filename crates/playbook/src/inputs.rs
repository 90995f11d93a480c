//! Input values given on the command line or over the API, checked against the declarations.

use std::sync::Arc;

use contain_core::{Provider, check_cidr};
use serde_json::{Map, Value};

use crate::catalog::Catalog;
use crate::model::{InputSpec, InputType, Playbook};

/// Checks the given values and fills in defaults. Pure: no cloud call.
///
/// `given` holds `(name, value)` pairs in the order given. A list input takes repeated pairs of
/// the same name or comma-separated values, and a single value is a one-element list. Returns
/// the values as JSON (a string, number or boolean, or an array of them for a list input), or
/// every problem found.
pub fn resolve_inputs(
    playbook: &Playbook,
    given: &[(String, String)],
    providers: &[Arc<dyn Provider>],
) -> Result<Map<String, Value>, Vec<String>> {
    let catalog = Catalog::new(providers);
    let mut problems = Vec::new();
    let mut values = Map::new();

    for (name, _) in given {
        if playbook.input(name).is_none() {
            let names: Vec<&str> = playbook.inputs.iter().map(|i| i.name.as_str()).collect();
            let problem = format!(
                "unknown input `{name}`: the inputs of {} are {}",
                playbook.name,
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            );
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
    }

    for spec in &playbook.inputs {
        let raw: Vec<&str> = given.iter().filter(|(n, _)| n == &spec.name).map(|(_, v)| v.as_str()).collect();
        if raw.is_empty() {
            match &spec.default {
                Some(default) => {
                    values.insert(spec.name.clone(), default.clone());
                }
                None if spec.required => problems.push(format!(
                    "missing required input `{}` ({}): pass it as --input {}=VALUE",
                    spec.name, spec.description, spec.name
                )),
                None => {}
            }
            continue;
        }

        match resolve_one(spec, &raw, &catalog) {
            Ok(value) => {
                values.insert(spec.name.clone(), value);
            }
            Err(mut found) => problems.append(&mut found),
        }
    }

    if problems.is_empty() { Ok(values) } else { Err(problems) }
}

fn resolve_one(spec: &InputSpec, raw: &[&str], catalog: &Catalog<'_>) -> Result<Value, Vec<String>> {
    let items: Vec<&str> = if spec.list {
        raw.iter().flat_map(|value| value.split(',')).map(str::trim).filter(|v| !v.is_empty()).collect()
    } else {
        if raw.len() > 1 {
            return Err(vec![format!(
                "input `{}` takes one value, but {} were given",
                spec.name,
                raw.len()
            )]);
        }
        raw.to_vec()
    };
    if items.is_empty() {
        return Err(vec![format!("input `{}` is empty: give at least one value", spec.name)]);
    }

    let mut problems = Vec::new();
    let mut converted = Vec::new();
    for item in items {
        match convert(&spec.input_type, item, spec.pattern.as_deref(), catalog) {
            Ok(value) => converted.push(value),
            Err(problem) => problems.push(format!("input `{}`: {problem}", spec.name)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(if spec.list { Value::Array(converted) } else { converted.remove(0) })
}

/// Converts one value given as text into JSON of the input's type.
fn convert(input_type: &InputType, text: &str, pattern: Option<&str>, catalog: &Catalog<'_>) -> Result<Value, String> {
    if let Some(pattern) = pattern {
        let regex = regex_lite::Regex::new(pattern).map_err(|e| format!("invalid pattern `{pattern}`: {e}"))?;
        if !regex.is_match(text) {
            return Err(format!("`{text}` does not match the pattern `{pattern}`"));
        }
    }

    match input_type {
        InputType::String => Ok(Value::String(text.to_string())),
        InputType::Integer => text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("invalid integer `{text}`: expected a whole number such as 42")),
        InputType::Boolean => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("invalid boolean `{text}`: expected true or false")),
        },
        InputType::Cidr => check_cidr(text).map(|()| Value::String(text.to_string())),
        InputType::Resource(type_name) => {
            let provider = catalog
                .provider(type_name)
                .ok_or_else(|| format!("no provider handles resource type {type_name}"))?;
            provider.parse_target(type_name, text).map_err(|e| e.to_string())?;
            Ok(Value::String(text.to_string()))
        }
    }
}

/// Checks a declared default value against the input's type. Returns the problems found.
pub(crate) fn check_default(
    input_type: &InputType,
    list: bool,
    pattern: Option<&str>,
    value: &Value,
    catalog: &Catalog<'_>,
) -> Vec<String> {
    let items: Vec<&Value> = match (list, value) {
        (true, Value::Array(items)) => items.iter().collect(),
        (true, other) => vec![other],
        (false, Value::Array(_)) => return vec!["a list was given, but the input takes one value".to_string()],
        (false, other) => vec![other],
    };

    items
        .into_iter()
        .filter_map(|item| {
            let text = match item {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Some(format!("{item} is not a {}", input_type.name())),
            };
            convert(input_type, &text, pattern, catalog).err()
        })
        .collect()
}

