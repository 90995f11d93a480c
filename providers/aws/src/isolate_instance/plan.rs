//! The pure part of the isolate action: options and the planned operations.

use contain_core::{ActionError, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};

use super::scaling::{AutoScalingMode, plan_scaling};
use super::state::InstanceState;
use crate::groups::GroupRole;
use crate::tags;

pub(crate) const ENSURE_GROUP: &str = "ec2.ensure_group";
pub(crate) const INTERFACE_GROUPS: &str = "ec2.interface_groups";
pub(crate) const PROTECTION: &str = "ec2.instance_protection";
pub(crate) const TAGS: &str = "ec2.instance_tags";

pub(crate) const ISOLATION_OP: &str = "group:isolation";
pub(crate) const ALLOW_ALL_OP: &str = "group:allow-all";
/// Stand for values known only during the run, until the engine binds the operation.
pub(crate) const RUN_PLACEHOLDER: &str = "<this run's id>";
pub(crate) const ISOLATION_PLACEHOLDER: &str = "<the isolation group>";
pub(crate) const ALLOW_ALL_PLACEHOLDER: &str = "<the allow-all group>";

pub(crate) const OPTION_KEYS: &[&str] = &["sever_tracked_connections", "protect", "tag", "incident", "auto_scaling", "deregister_targets"];

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub sever_tracked_connections: bool,
    pub protect: bool,
    /// Whether the instance is tagged with the incident and run (CreateTags).
    pub tag: bool,
    pub incident: Option<String>,
    pub auto_scaling: AutoScalingMode,
    pub deregister_targets: bool,
}

pub(crate) fn check_options(options: &Map<String, Value>) -> Vec<OptionProblem> {
    let mut problems = Vec::new();
    for (key, value) in options {
        let problem = match key.as_str() {
            _ if contain_core::is_template(value) && OPTION_KEYS.contains(&key.as_str()) => None,
            "sever_tracked_connections" | "protect" | "tag" | "deregister_targets" if !value.is_boolean() => Some(format!("`{key}` must be true or false, found {value}")),
            "auto_scaling" if !matches!(value.as_str(), Some("standby" | "detach")) => Some(format!("invalid `auto_scaling` {value}: valid values are standby, detach")),
            "auto_scaling" | "deregister_targets" => None,
            "incident" if !value.is_string() => Some(format!("`incident` must be a string, found {value}")),
            "sever_tracked_connections" | "protect" | "tag" | "incident" => None,
            _ => Some(format!("unknown option `{key}` for isolate on aws.ec2.instance: valid options are {}", OPTION_KEYS.join(", "))),
        };
        if let Some(message) = problem {
            problems.push(OptionProblem { key: Some(key.clone()), message });
        }
    }
    problems
}

pub(crate) fn parse_options(options: &Map<String, Value>) -> Result<Options, ActionError> {
    let problems = check_options(options);
    if let Some(first) = problems.first() {
        return Err(ActionError::new(ErrorKind::Invalid, first.message.clone()));
    }
    Ok(Options {
        sever_tracked_connections: options.get("sever_tracked_connections").and_then(Value::as_bool).unwrap_or(true),
        protect: options.get("protect").and_then(Value::as_bool).unwrap_or(true),
        tag: options.get("tag").and_then(Value::as_bool).unwrap_or(true),
        incident: options.get("incident").and_then(Value::as_str).map(str::to_string),
        auto_scaling: if options.get("auto_scaling").and_then(Value::as_str) == Some("detach") { AutoScalingMode::Detach } else { AutoScalingMode::Standby },
        deregister_targets: options.get("deregister_targets").and_then(Value::as_bool).unwrap_or(true),
    })
}

pub(crate) fn plan(target: &Target, options: &Options, state: &InstanceState) -> Result<TargetPlan, ActionError> {
    let instance = &state.instance_id;
    if matches!(state.state.as_str(), "terminated" | "shutting-down") {
        return Err(ActionError::new(ErrorKind::Precondition, format!("instance {instance} is {}: nothing can be isolated", state.state))
            .with_resource(instance));
    }
    if state.interfaces.is_empty() || state.vpc_id.is_empty() {
        return Err(ActionError::new(ErrorKind::Precondition, format!("instance {instance} has no network interface in a VPC"))
            .with_resource(instance));
    }

    let mut outputs = Map::new();
    outputs.insert("instance_id".into(), json!(instance));
    outputs.insert("vpc_id".into(), json!(state.vpc_id));
    outputs.insert("instance_profile".into(), json!(state.instance_profile));
    outputs.insert("auto_scaling_group".into(), json!(state.auto_scaling.as_ref().map(|a| a.group.clone())));
    let state_value = serde_json::to_value(state).expect("instance state serializes");

    let isolated = |groups: &[String]| state.isolation_group.as_ref().is_some_and(|g| groups == [g.clone()]);
    if state.interfaces.iter().all(|i| isolated(&i.groups)) {
        let group = state.isolation_group.as_deref().unwrap_or_default();
        return Ok(TargetPlan {
            state: state_value,
            operations: Vec::new(),
            notes: vec![format!("already isolated: every interface of {instance} is in the isolation group {group}; nothing to do")],
            outputs,
            uncontainable: None, missing_permissions: Vec::new(),
        });
    }

    let mut operations = Vec::new();
    let mut notes = Vec::new();
    let sever = options.sever_tracked_connections;
    if sever {
        operations.push(ensure_group_op(state, GroupRole::AllowAll));
    }
    operations.push(ensure_group_op(state, GroupRole::Isolation));
    plan_scaling(instance, state.auto_scaling.as_ref(), &state.target_groups, options.auto_scaling, options.deregister_targets, &mut operations)?;

    let isolation_ref = state.isolation_group.clone().unwrap_or_else(|| ISOLATION_PLACEHOLDER.to_string());
    let allow_all_ref = state.allow_all_group.clone().unwrap_or_else(|| ALLOW_ALL_PLACEHOLDER.to_string());
    for interface in state.interfaces.iter().filter(|i| !isolated(&i.groups)) {
        let via = if sever { json!(allow_all_ref) } else { Value::Null };
        let description = if sever {
            format!(
                "move {} from [{}] to the allow-all group, then to the isolation group, cutting tracked connections",
                interface.id,
                interface.groups.join(", ")
            )
        } else {
            format!("move {} from [{}] to the isolation group", interface.id, interface.groups.join(", "))
        };
        operations.push(Operation {
            id: format!("interface:{}", interface.id),
            kind: INTERFACE_GROUPS.to_string(),
            subject: interface.id.clone(),
            description,
            prior: json!({ "groups": interface.groups }),
            desired: json!({ "groups": [isolation_ref], "via": via }),
            reversible: true,
        });
    }
    for interface in state.interfaces.iter().filter(|i| isolated(&i.groups)) {
        notes.push(format!("{} is already in the isolation group: left as it is", interface.id));
    }

    if options.protect {
        operations.push(protection_op(state));
    } else {
        notes.push("protection is off for this step: termination, stop and shutdown behaviour are left as they are".into());
    }
    if options.tag {
        operations.push(tags_op(state, options.incident.as_deref()));
    } else {
        notes.push(format!("tagging is off for this step: {instance} is not tagged, so the journal is the only record that this run isolated it"));
    }

    if sever {
        notes.push(format!(
            "each interface is held in the allow-all group for one API call, so established flows become untracked and the isolation group then cuts them; while there, {instance} is open to all traffic"
        ));
        notes.push(
            "flows that stay tracked anyway and may outlive the isolation: ICMP, and flows through a Network Load Balancer, NAT gateway or transit gateway".into(),
        );
    } else {
        notes.push("sever_tracked_connections is off: connections open now stay open until they end".into());
    }
    let _ = target;

    Ok(TargetPlan { state: state_value, operations, notes, outputs, uncontainable: None, missing_permissions: Vec::new() })
}

fn ensure_group_op(state: &InstanceState, role: GroupRole) -> Operation {
    let (id, existing) = match role {
        GroupRole::Isolation => (ISOLATION_OP, &state.isolation_group),
        GroupRole::AllowAll => (ALLOW_ALL_OP, &state.allow_all_group),
    };
    let name = role.group_name(&state.vpc_id);
    let description = match existing {
        Some(group) => format!("use the existing {} {group} ({name})", role.label()),
        None => format!("create the {} {name} in {}", role.label(), state.vpc_id),
    };
    Operation {
        id: id.to_string(),
        kind: ENSURE_GROUP.to_string(),
        subject: name,
        description,
        prior: json!({ "id": existing }),
        desired: json!({ "id": existing.clone().unwrap_or_else(|| "created by this run".into()), "vpc_id": state.vpc_id, "role": role.tag_value() }),
        reversible: true,
    }
}

/// Turns the protection attributes on. Their current values take one call per attribute and
/// instance, so the plan leaves them to the apply, which journals what it read and changes only
/// the attributes not already set.
fn protection_op(state: &InstanceState) -> Operation {
    Operation {
        id: "protection".into(),
        kind: PROTECTION.into(),
        subject: state.instance_id.clone(),
        description: "turn on termination and stop protection and set shutdown behaviour to stop, where not already so".into(),
        prior: json!(Operation::PRIOR_READ_AT_APPLY),
        desired: json!({ "disable_api_termination": true, "disable_api_stop": true, "shutdown_behavior": "stop" }),
        reversible: true,
    }
}

fn tags_op(state: &InstanceState, incident: Option<&str>) -> Operation {
    let mut prior = Map::new();
    let mut desired = Map::new();
    if let Some(incident) = incident {
        prior.insert(tags::INCIDENT.into(), json!(state.tags.get(tags::INCIDENT).cloned().flatten()));
        desired.insert(tags::INCIDENT.into(), json!(incident));
    }
    prior.insert(tags::RUN.into(), json!(state.tags.get(tags::RUN).cloned().flatten()));
    desired.insert(tags::RUN.into(), json!(RUN_PLACEHOLDER));
    let pairs: Vec<String> = desired
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(RUN_PLACEHOLDER) => format!("{k}={RUN_PLACEHOLDER}"),
            other => format!("{k}={}", other.unwrap_or_default()),
        })
        .collect();
    Operation {
        id: "tags".into(),
        kind: TAGS.into(),
        subject: state.instance_id.clone(),
        description: format!("tag {} with {}", state.instance_id, pairs.join(" and ")),
        prior: Value::Object(prior),
        desired: Value::Object(desired),
        reversible: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::state::InterfaceState;

    fn instance() -> InstanceState {
        InstanceState {
            instance_id: "i-0123456789abcdef0".into(),
            state: "running".into(),
            vpc_id: "vpc-1".into(),
            interfaces: vec![InterfaceState { id: "eni-1".into(), device_index: 0, subnet_id: "subnet-1".into(), groups: vec!["sg-web".into()] }],
            tags: Default::default(),
            isolation_group: Some("sg-isolation".into()),
            allow_all_group: None,
            instance_profile: None,
            auto_scaling: None,
            target_groups: Vec::new(),
        }
    }

    fn plan_with(options: Value) -> TargetPlan {
        let target = Target { resource_type: crate::target::INSTANCE.into(), id: "i-0123456789abcdef0".into(), region: None, account: None };
        let options = parse_options(options.as_object().expect("options are an object")).expect("valid options");
        plan(&target, &options, &instance()).expect("a plan")
    }

    fn kinds(plan: &TargetPlan) -> Vec<&str> {
        plan.operations.iter().map(|op| op.kind.as_str()).collect()
    }

    #[test]
    fn tags_by_default() {
        let plan = plan_with(json!({ "incident": "INC-1" }));
        assert!(kinds(&plan).contains(&TAGS), "operations: {:?}", kinds(&plan));
    }

    #[test]
    fn tag_false_skips_tags() {
        let plan = plan_with(json!({ "tag": false, "protect": false, "sever_tracked_connections": false }));
        assert_eq!(kinds(&plan), [ENSURE_GROUP, INTERFACE_GROUPS], "only the group swap is left");
        assert!(plan.notes.iter().any(|n| n.contains("not tagged") && n.contains("journal is the only record")), "notes: {:?}", plan.notes);
    }

    #[test]
    fn tag_must_be_boolean() {
        let options = json!({ "tag": "no" });
        let problems = check_options(options.as_object().expect("an object"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].message, "`tag` must be true or false, found \"no\"");
    }
}
