//! A fake provider with the resource types and actions of the AWS provider, for fuzzing.
//!
//! The playbook crate must not depend on a provider crate, so the fuzz test and the cargo-fuzz
//! targets include this file instead. It offers the same type names and actions as
//! `providers/aws`, so the ready playbooks in `playbooks/aws` are accepted. It reports option
//! and selector problems both with and without a key, so that the parser's code placing those
//! diagnostics runs too. It makes no cloud call: every I/O method panics.

use std::sync::Arc;

use async_trait::async_trait;
use contain_core::{
    Action, ActionError, ActionKind, CallContext, CallerIdentity, Operation, OptionProblem, Provider, ResourceTypeInfo, Target, TargetParseError,
    TargetPlan, is_template,
};
use serde_json::{Map, Value};

/// Each resource type with the id prefixes it accepts and its actions. An ARN (`arn:`) is
/// accepted for every type, as the AWS provider does.
const TYPES: &[(&str, &[&str], &[ActionKind])] = &[
    ("aws.ec2.instance", &["i-"], &[ActionKind::Isolate, ActionKind::Snapshot]),
    ("aws.iam.user", &[""], &[ActionKind::Revoke]),
    ("aws.iam.role", &[""], &[ActionKind::Revoke]),
    ("aws.iam.identity_provider", &[], &[ActionKind::DisableSso]),
    ("aws.ec2.vpc", &["vpc-"], &[ActionKind::Isolate, ActionKind::Block]),
    ("aws.ec2.subnet", &["subnet-"], &[ActionKind::Isolate, ActionKind::Block]),
    ("aws.sso.permission_set", &[], &[ActionKind::DisableSso]),
    ("aws.ec2.security_group", &["sg-"], &[ActionKind::Block]),
];

/// The option keys any fake action accepts: the union of the AWS actions' options.
const OPTION_KEYS: &[&str] = &[
    "addresses",
    "direction",
    "ports",
    "entry_quota",
    "incident",
    "protect",
    "revoke_sessions",
    "select",
    "sever_tracked_connections",
    "share_with_account",
    "trust_policy_max_chars",
];

const SELECTOR_KEYS: &[&str] = &["tags", "vpc", "subnet"];

/// Returns the fake AWS provider as the provider list that `parse` and `resolve_inputs` take.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![Arc::new(FakeAws)]
}

pub struct FakeAws;

struct FakeAction {
    kind: ActionKind,
    resource_type: &'static str,
}

#[async_trait]
impl Provider for FakeAws {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn resource_types(&self) -> Vec<ResourceTypeInfo> {
        TYPES
            .iter()
            .map(|(name, _, actions)| ResourceTypeInfo { name, expected: "an id or an ARN", actions: actions.to_vec() })
            .collect()
    }

    fn parse_target(&self, resource_type: &str, value: &str) -> Result<Target, TargetParseError> {
        let prefixes = TYPES.iter().find(|(name, _, _)| *name == resource_type).map(|(_, prefixes, _)| *prefixes).unwrap_or_default();
        let well_formed = !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        let prefixed = value.starts_with("arn:") || prefixes.iter().any(|prefix| value.starts_with(prefix));
        if well_formed && prefixed {
            Ok(Target { resource_type: resource_type.to_string(), id: value.to_string(), region: None, account: None })
        } else {
            Err(TargetParseError { resource_type: resource_type.to_string(), value: value.to_string(), expected: "an id or an ARN".to_string() })
        }
    }

    fn action(&self, kind: ActionKind, resource_type: &str) -> Option<Arc<dyn Action>> {
        let (name, _, actions) = TYPES.iter().find(|(name, _, _)| *name == resource_type)?;
        actions.contains(&kind).then(|| Arc::new(FakeAction { kind, resource_type: name }) as Arc<dyn Action>)
    }

    fn check_selector(&self, resource_type: &str, filters: &Map<String, Value>) -> Vec<OptionProblem> {
        if resource_type != "aws.ec2.instance" {
            return vec![OptionProblem { key: None, message: format!("{resource_type} targets cannot be chosen by a selector") }];
        }
        let mut problems: Vec<OptionProblem> = filters
            .iter()
            .filter(|(key, value)| !SELECTOR_KEYS.contains(&key.as_str()) || !(value.is_object() || value.is_string() || is_template(value)))
            .map(|(key, _)| OptionProblem { key: Some(key.clone()), message: format!("invalid selector key `{key}`") })
            .collect();
        if filters.is_empty() {
            problems.push(OptionProblem { key: None, message: "the selector has no filter".to_string() });
        }
        problems
    }

    async fn caller_identity(&self, _: &CallContext) -> Result<CallerIdentity, ActionError> {
        unreachable!("parsing and input checks make no cloud call")
    }
}

#[async_trait]
impl Action for FakeAction {
    fn kind(&self) -> ActionKind {
        self.kind
    }

    fn resource_type(&self) -> &'static str {
        self.resource_type
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        let mut problems: Vec<OptionProblem> = options
            .iter()
            .filter(|(key, value)| !OPTION_KEYS.contains(&key.as_str()) || value.is_null())
            .map(|(key, _)| OptionProblem { key: Some(key.clone()), message: format!("invalid option `{key}`") })
            .collect();
        if self.kind == ActionKind::Block && !options.contains_key("addresses") {
            problems.push(OptionProblem { key: None, message: "block needs `addresses`".to_string() });
        }
        problems
    }

    async fn inspect(&self, _: &CallContext, _: &Target) -> Result<Value, ActionError> {
        unreachable!("parsing and input checks make no cloud call")
    }

    fn plan(&self, _: &Target, _: &Map<String, Value>, _: &Value) -> Result<TargetPlan, ActionError> {
        unreachable!("parsing and input checks do not plan")
    }

    async fn read(&self, _: &CallContext, _: &Target, _: &Operation) -> Result<Value, ActionError> {
        unreachable!("parsing and input checks make no cloud call")
    }

    async fn apply(&self, _: &CallContext, _: &Target, _: &Operation) -> Result<Value, ActionError> {
        unreachable!("parsing and input checks make no cloud call")
    }

    async fn revert(&self, _: &CallContext, _: &Target, _: &Operation, _: &Value) -> Result<Vec<String>, ActionError> {
        unreachable!("parsing and input checks make no cloud call")
    }
}
