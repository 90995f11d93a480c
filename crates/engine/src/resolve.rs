//! Fills templates of a step (its target and its `with` options) from inputs and from the
//! outputs of earlier steps.

use std::collections::BTreeMap;

use contain_core::{CallContext, Target};
use contain_playbook::{Expression, Part, Step, TargetSpec, Template};
use serde_json::{Map, Value};

use crate::{Engine, EngineError};

/// The outputs of each planned step, one map per target.
pub(crate) type StepOutputs = BTreeMap<String, Vec<Map<String, Value>>>;

fn lookup(expression: &Expression, inputs: &Map<String, Value>, outputs: &StepOutputs) -> Result<Value, String> {
    match expression {
        Expression::Input(name) => Ok(inputs.get(name).cloned().unwrap_or(Value::Null)),
        Expression::StepOutput { step, output } => {
            let per_target = outputs.get(step).ok_or_else(|| format!("step `{step}` has not been planned"))?;
            let values: Vec<Value> = per_target.iter().map(|o| o.get(output).cloned().unwrap_or(Value::Null)).collect();
            Ok(match values.len() {
                1 => values.into_iter().next().expect("one value"),
                _ => Value::Array(values),
            })
        }
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Renders a template into a string, or into the value itself when the template is one
/// expression (so a list stays a list).
fn render(template: &Template, inputs: &Map<String, Value>, outputs: &StepOutputs) -> Result<Value, String> {
    if let Some(expression) = template.sole_expression() {
        return lookup(expression, inputs, outputs);
    }
    let mut text = String::new();
    for part in &template.parts {
        match part {
            Part::Literal(literal) => text.push_str(literal),
            Part::Expression(expression) => {
                let value = lookup(expression, inputs, outputs)?;
                let piece = scalar_text(&value)
                    .ok_or_else(|| format!("`{expression}` is {value}, which cannot be placed inside the text `{}`", template.source))?;
                text.push_str(&piece);
            }
        }
    }
    Ok(Value::String(text))
}

/// The targets of a step. A list value gives one target per element; a null value (an output
/// that does not apply, such as a missing instance profile) gives none. A selector is evaluated
/// by the provider, read-only.
pub(crate) async fn resolve_targets(
    engine: &Engine,
    context: &CallContext,
    step: &Step,
    inputs: &Map<String, Value>,
    outputs: &StepOutputs,
) -> Result<Vec<Target>, EngineError> {
    let fail = |message: String| EngineError::Target { step: step.id.clone(), message };
    let template = match &step.target {
        TargetSpec::Template(template) => template,
        TargetSpec::Selector { resource_type, filters, .. } => {
            let provider = engine.provider_for(resource_type).ok_or_else(|| fail(format!("no provider handles {resource_type}")))?;
            let filters = resolve_options(filters, inputs, outputs).map_err(fail)?;
            return provider.select(context, resource_type, &filters).await.map_err(|e| fail(format!("selector failed: {e}")));
        }
    };
    let value = render(template, inputs, outputs).map_err(fail)?;
    let texts: Vec<Value> = match value {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    };

    let provider = engine
        .provider_for(&step.target_type)
        .ok_or_else(|| fail(format!("no provider handles {}", step.target_type)))?;
    let mut targets = Vec::new();
    for value in texts {
        if value.is_null() {
            continue;
        }
        let text = scalar_text(&value).ok_or_else(|| fail(format!("target value {value} is not a resource id")))?;
        let target = provider.parse_target(&step.target_type, &text).map_err(|e| fail(e.to_string()))?;
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    Ok(targets)
}

/// Fills every templated string in a step's options.
pub(crate) fn resolve_options(
    options: &Map<String, Value>,
    inputs: &Map<String, Value>,
    outputs: &StepOutputs,
) -> Result<Map<String, Value>, String> {
    fn fill(value: &Value, inputs: &Map<String, Value>, outputs: &StepOutputs) -> Result<Value, String> {
        match value {
            Value::String(text) if text.contains("${{") => render(&Template::parse(text)?, inputs, outputs),
            Value::Array(items) => items.iter().map(|v| fill(v, inputs, outputs)).collect::<Result<_, _>>().map(Value::Array),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| fill(v, inputs, outputs).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }
    options.iter().map(|(key, value)| fill(value, inputs, outputs).map(|v| (key.clone(), v))).collect()
}
