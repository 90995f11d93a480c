//! Comparison of an operation's values by the fields that matter, with ARM ids compared
//! without regard to case, as ARM compares them.

use contain_core::{Assessment, Operation};
use serde_json::Value;

/// True when two values are equal, strings compared without regard to case.
pub(crate) fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_value(a, b)),
        (Value::Object(a), Value::Object(b)) => a.len() == b.len() && a.iter().all(|(key, value)| b.get(key).is_some_and(|other| same_value(value, other))),
        (a, b) => a == b,
    }
}

/// Relates `current` to the operation by the field `key` alone, so that an applied value may
/// carry more (the operation URL it waited on).
pub(crate) fn assess_field(operation: &Operation, current: &Value, applied: Option<&Value>, key: &str) -> Assessment {
    let field = |value: &Value| value.get(key).cloned().unwrap_or(Value::Null);
    let now = field(current);
    if same_value(&now, &field(&operation.prior)) {
        return Assessment::Prior;
    }
    let after = field(applied.unwrap_or(&operation.desired));
    if same_value(&now, &after) {
        return Assessment::Applied;
    }
    Assessment::Diverged { detail: format!("{} has {key} {now}, but the run expected {} (before) or {after} (after)", operation.subject, field(&operation.prior)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn assess_field_ignores_case_and_extras() {
        let operation = Operation {
            id: "i".into(),
            kind: "k".into(),
            subject: "s".into(),
            description: "d".into(),
            prior: json!({"nsg": null}),
            desired: json!({"nsg": "/subscriptions/S/x"}),
            reversible: true,
        };
        assert_eq!(assess_field(&operation, &json!({"nsg": "/subscriptions/s/X"}), None, "nsg"), Assessment::Applied);
        assert_eq!(assess_field(&operation, &json!({"nsg": null}), Some(&json!({"nsg": "/subscriptions/S/x", "operation": "u"})), "nsg"), Assessment::Prior);
        assert!(matches!(assess_field(&operation, &json!({"nsg": "/other"}), None, "nsg"), Assessment::Diverged { .. }));
    }
}
