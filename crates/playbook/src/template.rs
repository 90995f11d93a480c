//! Templates such as `${{ inputs.instance }}` or `${{ steps.isolate.outputs.role }}`.

use std::fmt;

/// A string with embedded expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Expression(Expression),
}

/// The value an expression refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    Input(String),
    StepOutput { step: String, output: String },
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expression::Input(name) => write!(f, "inputs.{name}"),
            Expression::StepOutput { step, output } => write!(f, "steps.{step}.outputs.{output}"),
        }
    }
}

impl Template {
    /// Parses a template. Errors name the faulty expression and the valid forms.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;

        while let Some(start) = rest.find("${{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after_open = &rest[start + 3..];
            let Some(end) = after_open.find("}}") else {
                return Err(format!("unclosed expression in `{source}`: `${{{{` has no matching `}}}}`"));
            };
            let expression = after_open[..end].trim();
            parts.push(Part::Expression(parse_expression(expression)?));
            rest = &after_open[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }

        Ok(Template { source: source.to_string(), parts })
    }

    /// Returns the expressions of the template, in order.
    pub fn expressions(&self) -> impl Iterator<Item = &Expression> {
        self.parts.iter().filter_map(|part| match part {
            Part::Expression(expression) => Some(expression),
            Part::Literal(_) => None,
        })
    }

    /// Returns the expression when the template is one expression and nothing else.
    pub fn sole_expression(&self) -> Option<&Expression> {
        match self.parts.as_slice() {
            [Part::Expression(expression)] => Some(expression),
            _ => None,
        }
    }
}

const VALID_FORMS: &str = "valid forms are `inputs.NAME` and `steps.STEP.outputs.NAME`";

fn parse_expression(expression: &str) -> Result<Expression, String> {
    let fields: Vec<&str> = expression.split('.').collect();
    let is_name = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');

    match fields.as_slice() {
        ["inputs", name] if is_name(name) => Ok(Expression::Input(name.to_string())),
        ["steps", step, "outputs", output] if is_name(step) && is_name(output) => {
            Ok(Expression::StepOutput { step: step.to_string(), output: output.to_string() })
        }
        _ => Err(format!("invalid expression `{expression}`: {VALID_FORMS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_with_literal_and_input() {
        let template = Template::parse("arn:aws:iam::${{ inputs.account }}:root").unwrap();
        assert_eq!(template.parts.len(), 3);
        assert_eq!(template.expressions().next(), Some(&Expression::Input("account".into())));
        assert!(template.sole_expression().is_none());
    }

    #[test]
    fn template_step_output() {
        let template = Template::parse("${{steps.isolate.outputs.role}}").unwrap();
        assert_eq!(
            template.sole_expression(),
            Some(&Expression::StepOutput { step: "isolate".into(), output: "role".into() })
        );
    }

    #[test]
    fn template_unclosed_expression() {
        let err = Template::parse("${{ inputs.instance").unwrap_err();
        assert!(err.contains("unclosed"), "{err}");
    }

    #[test]
    fn template_unknown_root() {
        let err = Template::parse("${{ env.HOME }}").unwrap_err();
        assert!(err.contains("`env.HOME`"), "{err}");
        assert!(err.contains("inputs.NAME"), "{err}");
    }
}
