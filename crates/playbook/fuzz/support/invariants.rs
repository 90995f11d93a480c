//! Properties that every parse and input check must have, whatever the input. The fuzz test
//! and the cargo-fuzz targets both include this file.

use std::net::IpAddr;

use contain_playbook::{Diagnostics, InputType, Playbook, check_cidr};
use serde_json::{Map, Value};

/// Splits text into lines as YAML does: at `\r\n`, `\n` or a lone `\r`.
pub fn yaml_lines(source: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = source;
    while let Some(end) = rest.find(['\n', '\r']) {
        lines.push(&rest[..end]);
        let break_len = if rest[end..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[end + break_len..];
    }
    lines.push(rest);
    lines
}

/// Checks a parse result: a rejection has at least one diagnostic, each with a message and a
/// position inside the document. A line may be one past the last line, because an error at the
/// end of the input can sit on the line after a final line break.
pub fn check_parse_result(source: &str, result: &Result<Playbook, Diagnostics>) -> Result<(), String> {
    match result {
        Ok(playbook) => {
            if playbook.steps.is_empty() {
                return Err("an accepted playbook has no steps".to_string());
            }
            if playbook.digest.len() != 64 {
                return Err(format!("the digest `{}` is not 64 hex digits", playbook.digest));
            }
            Ok(())
        }
        Err(diagnostics) => {
            if diagnostics.0.is_empty() {
                return Err("the playbook was rejected with no diagnostic".to_string());
            }
            let lines = yaml_lines(source);
            let max_line = lines.len() as u64 + 1;
            for diagnostic in &diagnostics.0 {
                let position = diagnostic.position;
                if diagnostic.message.trim().is_empty() {
                    return Err(format!("a diagnostic at {}:{} has an empty message", position.line, position.column));
                }
                if position.line < 1 || position.line > max_line {
                    return Err(format!("diagnostic line {} is outside 1..={max_line}: {}", position.line, diagnostic.message));
                }
                if position.column < 1 {
                    return Err(format!("diagnostic column {} is below 1: {}", position.column, diagnostic.message));
                }
            }
            Ok(())
        }
    }
}

/// Checks resolved input values against the declarations: every value has its input's type,
/// every required input has a value, and nothing undeclared appears.
pub fn check_resolved(playbook: &Playbook, result: &Result<Map<String, Value>, Vec<String>>) -> Result<(), String> {
    let values = match result {
        Ok(values) => values,
        Err(problems) if problems.is_empty() => return Err("the inputs were rejected with no problem".to_string()),
        Err(problems) => {
            return match problems.iter().find(|p| p.trim().is_empty()) {
                Some(_) => Err("a problem message is empty".to_string()),
                None => Ok(()),
            };
        }
    };
    for name in values.keys() {
        if playbook.input(name).is_none() {
            return Err(format!("the resolved values contain undeclared input `{name}`"));
        }
    }
    for spec in &playbook.inputs {
        let Some(value) = values.get(&spec.name) else {
            if spec.required {
                return Err(format!("required input `{}` was accepted without a value", spec.name));
            }
            continue;
        };
        // Defaults are copied as declared, so only given values are checked for their type.
        if spec.default.as_ref() == Some(value) {
            continue;
        }
        let items: Vec<&Value> = match (spec.list, value) {
            (true, Value::Array(items)) if !items.is_empty() => items.iter().collect(),
            (true, other) => return Err(format!("list input `{}` resolved to {other}, not a non-empty list", spec.name)),
            (false, other) => vec![other],
        };
        for item in items {
            let typed = match &spec.input_type {
                InputType::Integer => item.is_i64(),
                InputType::Boolean => item.is_boolean(),
                InputType::Cidr => item.as_str().is_some_and(|text| check_cidr(text).is_ok()),
                InputType::String | InputType::Resource(_) => item.is_string(),
            };
            if !typed {
                return Err(format!("input `{}` of type {} resolved to {item}", spec.name, spec.input_type.name()));
            }
        }
    }
    Ok(())
}

/// Checks the outcome of `check_cidr` on `text`: an accepted CIDR is a valid IP address, a `/`
/// and a prefix length no longer than the address.
pub fn check_cidr_outcome(text: &str, accepted: bool) -> Result<(), String> {
    if !accepted {
        return Ok(());
    }
    let Some((address, prefix)) = text.split_once('/') else {
        return Err(format!("check_cidr accepted `{text}`, which has no `/`"));
    };
    let address: IpAddr = address.parse().map_err(|_| format!("check_cidr accepted `{text}`, whose address is invalid"))?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(length) if length <= max => Ok(()),
        _ => Err(format!("check_cidr accepted `{text}`, whose prefix length is invalid")),
    }
}
