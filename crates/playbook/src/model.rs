use std::fmt;

use contain_core::ActionKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::node::Position;
use crate::template::Template;

/// A validated playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    pub name: String,
    pub description: String,
    pub inputs: Vec<InputSpec>,
    pub on_failure: OnFailure,
    /// True when a run started through the HTTP API waits for a second person's approval
    /// (`approval: required`).
    pub approval_required: bool,
    pub steps: Vec<Step>,
    /// SHA-256 of the source text, in hex, recorded in every run's journal.
    pub digest: String,
}

impl Playbook {
    pub fn input(&self, name: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|input| input.name == name)
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.id == id)
    }
}

/// The engine's policy when a target fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop starting new work and keep what was applied.
    Halt,
    /// Revert every change this run applied.
    Rollback,
}

impl OnFailure {
    pub const VALID: &'static str = "halt, rollback";

    pub fn parse(value: &str) -> Option<OnFailure> {
        match value {
            "halt" => Some(OnFailure::Halt),
            "rollback" => Some(OnFailure::Rollback),
            _ => None,
        }
    }
}

impl fmt::Display for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnFailure::Halt => "halt",
            OnFailure::Rollback => "rollback",
        })
    }
}

/// The type of an input's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputType {
    String,
    Integer,
    Boolean,
    /// An IPv4 or IPv6 network in CIDR notation.
    Cidr,
    /// A cloud resource type that a provider handles, such as `aws.ec2.instance`.
    Resource(String),
}

impl InputType {
    pub const BUILTIN: [&'static str; 4] = ["string", "integer", "boolean", "cidr"];

    pub fn name(&self) -> &str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Boolean => "boolean",
            InputType::Cidr => "cidr",
            InputType::Resource(name) => name,
        }
    }
}

/// A declared input of a playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub input_type: InputType,
    /// True when the input takes a list of values.
    pub list: bool,
    pub description: String,
    pub required: bool,
    pub default: Option<Value>,
    /// A regular expression every value must match.
    pub pattern: Option<String>,
    pub position: Position,
}

/// The targets of a step: a template naming them, or a selector the provider evaluates.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// `target: "${{ inputs.instance }}"`.
    Template(Template),
    /// `target: { select: aws.ec2.instance, tags: { compromised: "true" } }`.
    Selector {
        resource_type: String,
        /// The filters, whose strings may hold templates.
        filters: Map<String, Value>,
        templates: Vec<Template>,
    },
}

impl TargetSpec {
    /// Returns the templates the targets depend on.
    pub fn templates(&self) -> Vec<&Template> {
        match self {
            TargetSpec::Template(template) => vec![template],
            TargetSpec::Selector { templates, .. } => templates.iter().collect(),
        }
    }

    /// Returns the target as written, for messages.
    pub fn source(&self) -> String {
        match self {
            TargetSpec::Template(template) => template.source.clone(),
            TargetSpec::Selector { resource_type, filters, .. } => format!("select {resource_type} {}", Value::Object(filters.clone())),
        }
    }
}

/// The number of targets a step may change unless it sets `max_targets`.
pub const DEFAULT_MAX_TARGETS: usize = 25;

/// One step of a playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    pub action: ActionKind,
    pub target: TargetSpec,
    /// The resource type of the target, from the input the target names or from `target_type`.
    pub target_type: String,
    /// Provider options. String values may hold templates, filled in at plan time.
    pub with: Map<String, Value>,
    /// The templates found in `with`, for dependency checks.
    pub option_templates: Vec<Template>,
    pub needs: Vec<String>,
    /// True when the step sets `irreversible: allow`: only then may it make changes that
    /// rollback cannot undo.
    pub irreversible: bool,
    /// The maximum number of targets the step may change. A plan that resolves more fails.
    pub max_targets: usize,
    pub position: Position,
}
