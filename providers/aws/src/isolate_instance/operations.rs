//! Reads, applies and reverts the operations of the isolate action.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{AttributeBooleanValue, AttributeValue, Tag};
use contain_core::{ActionError, Assessment, ErrorKind, Operation, Reconciliation, Target};
use serde_json::{Map, Value, json};

use super::plan::{ENSURE_GROUP, INTERFACE_GROUPS, PROTECTION, TAGS};
use super::state::{read_interface_groups, read_protection, read_tags};
use crate::errors::map_sdk_error;
use crate::clients::Clients;
use crate::groups::{Cleanup, GroupRole, delete_if_unused, ensure_group, find_group_shared};

pub(super) async fn read(clients: &Clients, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
    let ec2 = &clients.ec2;
    let reads = &clients.reads;
    match operation.kind.as_str() {
        ENSURE_GROUP => {
            let vpc_id = operation.desired["vpc_id"].as_str().unwrap_or_default();
            let id = find_group_shared(reads, vpc_id, group_role(operation)?).await?;
            Ok(json!({ "id": id }))
        }
        INTERFACE_GROUPS => {
            let groups = read_interface_groups(reads, &operation.subject).await?;
            let isolated = match groups.as_slice() {
                [only] => crate::groups::is_contain_group(reads, only, GroupRole::Isolation).await?,
                _ => false,
            };
            Ok(if isolated { json!({ "groups": groups, "isolated": true }) } else { json!({ "groups": groups }) })
        }
        PROTECTION => {
            // The desired value names the attributes also when the prior is left to the apply.
            let protection = serde_json::to_value(read_protection(ec2, &target.id).await?).expect("protection serializes");
            Ok(only_keys_of(&operation.desired, &protection))
        }
        TAGS => {
            let tags = serde_json::to_value(read_tags(reads, &target.id).await?).expect("tags serialize");
            Ok(only_keys_of(&operation.prior, &tags))
        }
        other => Err(ActionError::new(ErrorKind::Invalid, format!("unknown operation kind {other}"))),
    }
}

fn only_keys_of(shape: &Value, full: &Value) -> Value {
    let keys = shape.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    Value::Object(keys.into_iter().map(|k| { let v = full[&k].clone(); (k, v) }).collect())
}

fn group_role(operation: &Operation) -> Result<GroupRole, ActionError> {
    match operation.desired["role"].as_str() {
        Some(role) if role == GroupRole::Isolation.tag_value() => Ok(GroupRole::Isolation),
        Some(role) if role == GroupRole::AllowAll.tag_value() => Ok(GroupRole::AllowAll),
        other => Err(ActionError::new(ErrorKind::Invalid, format!("operation {} names no known group role: {other:?}", operation.id))),
    }
}

fn sorted_groups(value: &Value) -> Vec<String> {
    let mut groups: Vec<String> = value.as_array().into_iter().flatten().filter_map(|g| g.as_str().map(str::to_string)).collect();
    groups.sort();
    groups
}

/// Compares interface groups as sets. The interface counts as applied when it is in the
/// isolation group, or in the allow-all group, where a crash between the two moves leaves it.
pub(super) fn assess_interface(operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
    let current_groups = sorted_groups(&current["groups"]);
    if current_groups == sorted_groups(&operation.prior["groups"]) {
        return Assessment::Prior;
    }
    let left = applied.map(|a| &a["groups"]).unwrap_or(&operation.desired["groups"]);
    let via = operation.desired["via"].as_str().filter(|v| v.starts_with("sg-"));
    // Another run may have isolated the interface since the plan, into the same group.
    let isolated_by_contain = current["isolated"] == true;
    if current_groups == sorted_groups(left) || isolated_by_contain || via.is_some_and(|via| current_groups == [via.to_string()]) {
        return Assessment::Applied;
    }
    Assessment::Diverged {
        detail: format!(
            "{} is in [{}], but this run expected [{}] (before) or [{}] (after)",
            operation.subject,
            current_groups.join(", "),
            sorted_groups(&operation.prior["groups"]).join(", "),
            sorted_groups(left).join(", ")
        ),
    }
}

/// Like [`assess_interface`], but an interface left in the allow-all group between the two
/// moves is partly isolated: open to all traffic, so resume must finish the move.
pub(super) fn reconcile_interface(operation: &Operation, current: &Value) -> Reconciliation {
    let current_groups = sorted_groups(&current["groups"]);
    let via = operation.desired["via"].as_str().filter(|v| v.starts_with("sg-"));
    if via.is_some_and(|via| current_groups == [via.to_string()]) && current["isolated"] != true {
        return Reconciliation::Partly { detail: format!("{} is in the allow-all group {}, between its two moves", operation.subject, via.unwrap_or_default()) };
    }
    match assess_interface(operation, current, None) {
        Assessment::Diverged { detail } => Reconciliation::Unknown { detail },
        other => operation.reconcile_from(other, current),
    }
}

pub(super) async fn apply_ensure_group(clients: &Clients, operation: &Operation) -> Result<Value, ActionError> {
    let vpc_id = operation.desired["vpc_id"].as_str().unwrap_or_default();
    let (id, created) = ensure_group(clients, vpc_id, group_role(operation)?).await?;
    Ok(json!({ "id": id, "created": created }))
}

pub(super) async fn revert_ensure_group(clients: &Clients, applied: &Value) -> Result<Vec<String>, ActionError> {
    let Some(group_id) = applied["id"].as_str() else {
        return Ok(Vec::new());
    };
    match delete_if_unused(&clients.ec2, group_id).await? {
        Cleanup::Deleted | Cleanup::AlreadyGone => {
            clients.reads.forget_ensured(group_id);
            Ok(Vec::new())
        }
        Cleanup::InUse(interfaces) => {
            tracing::info!(group_id, interfaces = %interfaces.join(", "), "kept the contain group: other interfaces still use it");
            Ok(vec![format!("kept security group {group_id}, which {} still use; it is deleted when the run that isolated them is rolled back", interfaces.join(", "))])
        }
    }
}

pub(super) async fn set_interface_groups(ec2: &Client, interface_id: &str, groups: &Value) -> Result<(), ActionError> {
    let groups = sorted_groups(groups);
    ec2.modify_network_interface_attribute()
        .network_interface_id(interface_id)
        .set_groups(Some(groups))
        .send()
        .await
        .map_err(|e| map_sdk_error("ModifyNetworkInterfaceAttribute", interface_id, e))?;
    Ok(())
}

/// Moves the interface through the allow-all group (when `via` is set) into the isolation group.
/// When the second move fails, the interface goes straight back to its prior groups, because the
/// allow-all group would leave it open to all traffic.
pub(super) async fn apply_interface(ec2: &Client, operation: &Operation) -> Result<Value, ActionError> {
    let interface_id = operation.subject.as_str();
    let groups = &operation.desired["groups"];
    if sorted_groups(groups).iter().chain(operation.desired["via"].as_str().map(str::to_string).as_ref()).any(|g| !g.starts_with("sg-")) {
        return Err(ActionError::new(ErrorKind::Invalid, format!("operation {} was not bound to the isolation group's id", operation.id)));
    }

    if let Some(via) = operation.desired["via"].as_str() {
        set_interface_groups(ec2, interface_id, &json!([via])).await?;
        if let Err(error) = second_move(ec2, interface_id, groups).await {
            return match set_interface_groups(ec2, interface_id, &operation.prior["groups"]).await {
                Ok(()) => Err(ActionError {
                    message: format!("{}; {interface_id} was moved back to its prior groups", error.message),
                    compensation: Some(format!("moved {interface_id} back from the allow-all group {via} to its prior groups")),
                    ..error
                }),
                Err(back) => Err(ActionError {
                    message: format!(
                        "{}; moving {interface_id} back to its prior groups also failed ({}): it is in the allow-all group {via}, run `contain rollback` now",
                        error.message, back.message
                    ),
                    ..error
                }),
            };
        }
    } else {
        set_interface_groups(ec2, interface_id, groups).await?;
    }
    Ok(json!({ "groups": sorted_groups(groups) }))
}

/// Tries the move out of the allow-all group again while EC2 throttles it, before giving up.
/// Moving back to the prior groups and retrying the whole operation would take three calls of
/// the ModifyNetworkInterfaceAttribute bucket where one does, in the bucket that was short of
/// tokens.
///
/// NOTE: these attempts wait on their own back-off, not on the engine's pacer, and the
/// interface stays in the allow-all group meanwhile (at most 0.7 s more).
async fn second_move(ec2: &Client, interface_id: &str, groups: &Value) -> Result<(), ActionError> {
    let mut delay = std::time::Duration::from_millis(100);
    for _ in 1..SECOND_MOVE_ATTEMPTS {
        match set_interface_groups(ec2, interface_id, groups).await {
            Err(error) if error.kind == ErrorKind::Throttled => {
                tracing::debug!(interface = interface_id, delay_ms = delay.as_millis() as u64, "throttled moving out of the allow-all group: trying again");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            result => return result,
        }
    }
    set_interface_groups(ec2, interface_id, groups).await
}

/// Attempts of the move out of the allow-all group while EC2 throttles it.
const SECOND_MOVE_ATTEMPTS: u32 = 4;

/// Sets each protection attribute named in `values`. One call per attribute, as EC2 requires.
pub(super) async fn apply_protection(ec2: &Client, instance_id: &str, values: &Value) -> Result<Value, ActionError> {
    let map_error = |e| map_sdk_error("ModifyInstanceAttribute", instance_id, e);
    if let Some(flag) = values["disable_api_termination"].as_bool() {
        ec2.modify_instance_attribute()
            .instance_id(instance_id)
            .disable_api_termination(AttributeBooleanValue::builder().value(flag).build())
            .send()
            .await
            .map_err(map_error)?;
    }
    if let Some(flag) = values["disable_api_stop"].as_bool() {
        ec2.modify_instance_attribute()
            .instance_id(instance_id)
            .disable_api_stop(AttributeBooleanValue::builder().value(flag).build())
            .send()
            .await
            .map_err(map_error)?;
    }
    if let Some(behavior) = values["shutdown_behavior"].as_str() {
        ec2.modify_instance_attribute()
            .instance_id(instance_id)
            .instance_initiated_shutdown_behavior(AttributeValue::builder().value(behavior).build())
            .send()
            .await
            .map_err(map_error)?;
    }
    Ok(values.clone())
}

/// Sets contain's tags to `values`: a key whose value is null is deleted. `from` is the current
/// value, so a key that is already right is left alone.
pub(super) async fn apply_tags(ec2: &Client, instance_id: &str, from: &Value, values: &Value) -> Result<Value, ActionError> {
    let empty = Map::new();
    let values_map = values.as_object().unwrap_or(&empty);
    let mut to_set = Vec::new();
    let mut to_delete = Vec::new();
    for (key, value) in values_map {
        match value.as_str() {
            Some(text) => to_set.push(Tag::builder().key(key).value(text).build()),
            None if !from[key].is_null() => to_delete.push(Tag::builder().key(key).build()),
            None => {}
        }
    }

    if !to_set.is_empty() {
        ec2.create_tags()
            .resources(instance_id)
            .set_tags(Some(to_set))
            .send()
            .await
            .map_err(|e| map_sdk_error("CreateTags", instance_id, e))?;
    }
    if !to_delete.is_empty() {
        ec2.delete_tags()
            .resources(instance_id)
            .set_tags(Some(to_delete))
            .send()
            .await
            .map_err(|e| map_sdk_error("DeleteTags", instance_id, e))?;
    }
    Ok(values.clone())
}
