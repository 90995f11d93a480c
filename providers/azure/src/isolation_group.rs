//! The deny-all isolation group that the isolate actions share: one per region and resource
//! group, created by the first run that needs it, reused by the others, and deleted by the
//! rollback that finds it unused.

use contain_core::{ActionError, Assessment, CallContext, ErrorKind, Operation};
use serde_json::{Value, json};

use crate::assess::{assess_field, same_value};
use crate::http::Http;
use crate::ids::{ArmId, NETWORK_API, short};
use crate::nsg_model::{is_isolation_group, isolation_group};

/// The operation kind that creates the isolation group.
pub(crate) const GROUP: &str = "azure.isolation_nsg";

/// The plan's note on NSG statefulness.
pub(crate) const STATEFUL_NOTE: &str = "NSGs are stateful: the isolation group sets flushConnection, so flows are evaluated again when its rules change. \
     A flow established before the association may live on until Azure evaluates it again, and traffic of Azure's platform (DHCP, DNS to 168.63.129.16, \
     health probes) is not filtered by NSGs";

const NAME_PREFIX: &str = "contain-isolation-";

/// Reads whether the isolation group of `location` exists in the resource group of `scope`,
/// and whether contain created it.
pub(crate) async fn inspect_group(http: &Http, context: &CallContext, scope: &ArmId, location: &str) -> Result<Value, ActionError> {
    let id = scope.sibling("Microsoft.Network/networkSecurityGroups", &format!("{NAME_PREFIX}{}", location.to_ascii_lowercase()));
    let group = http.read_resource(context, &id, NETWORK_API).await?;
    Ok(json!({
        "id": id,
        "exists": group.is_some(),
        "managed": group.as_ref().is_some_and(|g| is_isolation_group(&g.body)),
    }))
}

/// Says why the target cannot be isolated when a group of the isolation group's name exists that
/// contain did not create.
pub(crate) fn foreign_group(group: &Value) -> Option<String> {
    (group["exists"] == true && group["managed"] != true).then(|| {
        format!(
            "a network security group {} exists that contain did not create (it lacks the contain:managed tag): rename or tag it, then plan again",
            group["id"].as_str().unwrap_or_default()
        )
    })
}

/// Builds the operation that creates the group.
pub(crate) fn group_operation(id: &str) -> Operation {
    Operation {
        id: format!("group:{}", id.rsplit('/').next().unwrap_or_default()),
        kind: GROUP.to_string(),
        subject: id.to_string(),
        description: format!(
            "create the deny-all NSG {} in resource group {} (inbound and outbound denied at priority 100, flushConnection on)",
            short(id),
            ArmId::parse(id).map(|parsed| parsed.resource_group).unwrap_or_default()
        ),
        prior: json!({ "exists": false }),
        desired: json!({ "exists": true }),
        reversible: true,
    }
}

async fn read_group(http: &Http, context: &CallContext, id: &str) -> Result<Value, ActionError> {
    Ok(match http.read_resource(context, id, NETWORK_API).await? {
        None => json!({ "exists": false }),
        Some(group) if is_isolation_group(&group.body) => json!({ "exists": true }),
        Some(_) => json!({ "exists": true, "managed": false }),
    })
}

fn assess_group(operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
    if current.get("managed") == Some(&Value::Bool(false)) {
        return Assessment::Diverged { detail: format!("{} exists but contain did not create it", operation.subject) };
    }
    assess_field(operation, current, applied, "exists")
}

/// Creates the group, unless another target or run created it meanwhile.
async fn create_group(http: &Http, context: &CallContext, id: &str) -> Result<Value, ActionError> {
    let location = ArmId::parse(id)
        .and_then(|parsed| parsed.name.strip_prefix(NAME_PREFIX).map(str::to_string))
        .ok_or_else(|| ActionError::new(ErrorKind::Invalid, format!("{id} is not an isolation group id")))?;
    let body = isolation_group(&location, &context.run_id);
    let finished = http.create_once(context, id, NETWORK_API, &body, is_isolation_group, &format!("creating {id}")).await?;
    Ok(json!({ "exists": true, "operation": finished.and_then(|f| f.operation) }))
}

/// Sets the network security group of a NIC or subnet to `group` (or none), keeping the rest of
/// the resource, and returns the value it left.
async fn set_nsg(http: &Http, context: &CallContext, id: &str, group: &Value) -> Result<Value, ActionError> {
    let finished = http
        .update_resource(context, id, NETWORK_API, &format!("setting the network security group of {id}"), |body| {
            let current = body.pointer("/properties/networkSecurityGroup/id").cloned().unwrap_or(Value::Null);
            if same_value(&current, group) {
                return Ok(false);
            }
            let properties = body.get_mut("properties").and_then(Value::as_object_mut).ok_or_else(|| ActionError::new(ErrorKind::Other, format!("{id} has no properties")))?;
            match group {
                Value::Null => properties.remove("networkSecurityGroup"),
                nsg => properties.insert("networkSecurityGroup".to_string(), json!({ "id": nsg })),
            };
            Ok(true)
        })
        .await?;
    Ok(json!({ "nsg": group, "operation": finished.and_then(|f| f.operation) }))
}

/// Deletes the group when no interface or subnet uses it any more.
async fn delete_group_if_unused(http: &Http, context: &CallContext, id: &str) -> Result<Vec<String>, ActionError> {
    let Some(group) = http.read_resource(context, id, NETWORK_API).await? else {
        return Ok(Vec::new());
    };
    if !is_isolation_group(&group.body) {
        return Ok(vec![format!("{id} no longer carries contain's tag: kept")]);
    }
    let users: usize = ["networkInterfaces", "subnets"].iter().map(|key| group.body.pointer(&format!("/properties/{key}")).and_then(Value::as_array).map(Vec::len).unwrap_or(0)).sum();
    if users > 0 {
        return Ok(vec![format!("{id} still isolates {users} interface(s) or subnet(s) of other targets or runs: kept, and the rollback that frees it deletes it")]);
    }
    http.delete_resource(context, id, NETWORK_API, group.etag.as_deref(), &format!("deleting {id}")).await?;
    Ok(Vec::new())
}

/// Reads an operation's subject: the isolation group, or the NSG of a NIC or subnet.
pub(crate) async fn read_operation(http: &Http, context: &CallContext, operation: &Operation) -> Result<Value, ActionError> {
    if operation.kind == GROUP {
        return read_group(http, context, &operation.subject).await;
    }
    let resource = http.require_resource(context, &operation.subject, NETWORK_API).await?.body;
    Ok(json!({ "nsg": resource.pointer("/properties/networkSecurityGroup/id").cloned().unwrap_or(Value::Null) }))
}

pub(crate) fn assess_operation(operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
    if operation.kind == GROUP {
        return assess_group(operation, current, applied);
    }
    assess_field(operation, current, applied, "nsg")
}

/// Applies an operation of an isolate action: creates the group, or sets a NIC's or subnet's NSG.
pub(crate) async fn apply_operation(http: &Http, context: &CallContext, operation: &Operation) -> Result<Value, ActionError> {
    if operation.kind == GROUP {
        return create_group(http, context, &operation.subject).await;
    }
    set_nsg(http, context, &operation.subject, &operation.desired["nsg"]).await
}

/// Reverts an operation of an isolate action.
pub(crate) async fn revert_operation(http: &Http, context: &CallContext, operation: &Operation) -> Result<Vec<String>, ActionError> {
    if operation.kind == GROUP {
        return delete_group_if_unused(http, context, &operation.subject).await;
    }
    set_nsg(http, context, &operation.subject, &operation.prior["nsg"]).await?;

    delete_if_freed(http, context, operation.desired["nsg"].as_str().unwrap_or_default()).await
}

/// Deletes an isolation group that a revert has just freed. The rollback that frees a shared
/// group deletes it, even when an earlier run created it: the run that created it may have been
/// rolled back while this one used it.
pub(crate) async fn delete_if_freed(http: &Http, context: &CallContext, group: &str) -> Result<Vec<String>, ActionError> {
    if !ArmId::parse(group).is_some_and(|id| id.name.starts_with(NAME_PREFIX)) {
        return Ok(Vec::new());
    }
    let before = http.read_resource(context, group, NETWORK_API).await?.is_some();
    let notes = delete_group_if_unused(http, context, group).await?;
    if notes.iter().any(|note| note.contains("still isolates")) {
        return Ok(Vec::new());
    }
    let deleted = before && http.read_resource(context, group, NETWORK_API).await?.is_none();
    Ok(if deleted { vec![format!("deleted the isolation group {group}, which nothing uses any more")] } else { notes })
}
