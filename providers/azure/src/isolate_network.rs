//! `isolate` for `azure.network.vnet` and `azure.network.subnet`: the deny-all isolation group
//! associated with every subnet, each prior association journaled.
//!
//! Subnets that cannot take a group or need special care (the gateway, firewall, bastion and
//! route server subnets, and subnets delegated to a service) are reported in the plan and
//! skipped, not failed half-way. The plan shows the blast radius: the IP configurations (NICs)
//! in each subnet.

use std::sync::Arc;

use async_trait::async_trait;
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};

use crate::http::Http;
use crate::ids::{ArmId, NETWORK_API, SUBNET, same_id, short};
use crate::assess::same_value;
use crate::isolation_group::{STATEFUL_NOTE, delete_if_freed, apply_operation, assess_operation, foreign_group, group_operation, inspect_group, read_operation, revert_operation};

/// Sets one subnet's group.
pub(crate) const SUBNET_GROUP: &str = "azure.subnet_nsg";
/// Sets the groups of several subnets of a VNet in one write of the VNet.
pub(crate) const NETWORK_SUBNETS: &str = "azure.vnet_subnet_nsgs";

/// Subnets Azure reserves for a service, which must not be isolated by a group.
const RESERVED_SUBNETS: &[&str] = &["GatewaySubnet", "AzureFirewallSubnet", "AzureFirewallManagementSubnet", "AzureBastionSubnet", "RouteServerSubnet"];

pub(crate) struct IsolateNetwork {
    http: Arc<Http>,
    resource_type: &'static str,
}

impl IsolateNetwork {
    pub(crate) fn new(http: Arc<Http>, resource_type: &'static str) -> Self {
        IsolateNetwork { http, resource_type }
    }
}

/// Returns the reason a subnet is skipped, if it is.
fn skip_reason(subnet: &Value) -> Option<String> {
    let name = subnet["name"].as_str().unwrap_or_default();
    if RESERVED_SUBNETS.iter().any(|reserved| reserved.eq_ignore_ascii_case(name)) {
        return Some(format!("{name} is reserved for an Azure service, which a deny-all group would break"));
    }
    let delegations = subnet.pointer("/properties/delegations").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(service) = delegations.first().and_then(|d| d.pointer("/properties/serviceName")).and_then(Value::as_str) {
        return Some(format!("{name} is delegated to {service}, whose own rules a deny-all group would break"));
    }
    None
}

fn subnet_view(subnet: &Value) -> Value {
    let configurations = subnet.pointer("/properties/ipConfigurations").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
    json!({
        "id": subnet["id"],
        "name": subnet["name"],
        "nsg": subnet.pointer("/properties/networkSecurityGroup/id").cloned().unwrap_or(Value::Null),
        "ip_configurations": configurations,
        "skip": skip_reason(subnet),
    })
}

/// Gathers the subnet changes of a VNet into one write of the VNet: ARM runs one write at a
/// time per VNet, so one write with every subnet's group set takes one operation instead of one
/// per subnet. The prior group of each subnet is journaled in the operation.
fn one_network_write(network: &str, group_id: &str, changes: &[Operation]) -> Operation {
    let name = |change: &Operation| change.id.trim_start_matches("subnet:").to_string();
    let prior: Map<String, Value> = changes.iter().map(|change| (name(change), change.prior["nsg"].clone())).collect();
    let desired: Map<String, Value> = changes.iter().map(|change| (name(change), json!(group_id))).collect();
    let moves: Vec<String> = changes.iter().map(|change| change.description.trim_start_matches("move ").to_string()).collect();
    Operation {
        id: format!("subnets:{}", short(network)),
        kind: NETWORK_SUBNETS.to_string(),
        subject: network.to_string(),
        description: format!("in one write of VNet {}, move {}", short(network), moves.join("; ")),
        prior: json!({ "subnets": prior }),
        desired: json!({ "subnets": desired }),
        reversible: true,
    }
}

/// Sets the groups of the named subnets of a VNet in one write of the VNet, keeping the rest of
/// it, and returns the value it left.
async fn set_subnet_groups(http: &Http, context: &CallContext, network: &str, groups: &Map<String, Value>) -> Result<Value, ActionError> {
    let finished = http
        .update_resource(context, network, NETWORK_API, &format!("setting the network security groups of subnets of {network}"), |body| {
            let subnets = body.pointer_mut("/properties/subnets").and_then(Value::as_array_mut).ok_or_else(|| ActionError::new(ErrorKind::Other, format!("{network} has no subnets")))?;
            let mut changed = false;
            for subnet in subnets.iter_mut() {
                let Some(group) = subnet["name"].as_str().and_then(|name| groups.get(name)) else { continue };
                let current = subnet.pointer("/properties/networkSecurityGroup/id").cloned().unwrap_or(Value::Null);
                if same_value(&current, group) {
                    continue;
                }
                let properties = subnet.get_mut("properties").and_then(Value::as_object_mut).ok_or_else(|| ActionError::new(ErrorKind::Other, format!("a subnet of {network} has no properties")))?;
                match group {
                    Value::Null => properties.remove("networkSecurityGroup"),
                    id => properties.insert("networkSecurityGroup".to_string(), json!({ "id": id })),
                };
                changed = true;
            }
            Ok(changed)
        })
        .await?;
    Ok(json!({ "subnets": groups, "operation": finished.and_then(|f| f.operation) }))
}

/// Reads the groups of the named subnets of a VNet.
async fn read_subnet_groups(http: &Http, context: &CallContext, operation: &Operation) -> Result<Value, ActionError> {
    let network = http.require_resource(context, &operation.subject, NETWORK_API).await?.body;
    let names: Vec<String> = operation.desired["subnets"].as_object().map(|map| map.keys().cloned().collect()).unwrap_or_default();
    let subnets = network.pointer("/properties/subnets").and_then(Value::as_array).cloned().unwrap_or_default();
    let groups: Map<String, Value> = names
        .into_iter()
        .map(|name| {
            let subnet = subnets.iter().find(|subnet| subnet["name"] == name.as_str());
            let group = subnet.and_then(|subnet| subnet.pointer("/properties/networkSecurityGroup/id")).cloned().unwrap_or(Value::Null);
            (name, group)
        })
        .collect();
    Ok(json!({ "subnets": groups }))
}

#[async_trait]
impl Action for IsolateNetwork {
    fn kind(&self) -> ActionKind {
        ActionKind::Isolate
    }

    fn resource_type(&self) -> &'static str {
        self.resource_type
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        crate::options::unknown_keys(options, &[])
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let id = ArmId::parse(&target.id).ok_or_else(|| ActionError::new(ErrorKind::Invalid, format!("{} is not an ARM resource id", target.id)))?;
        let network = self.http.require_resource(context, &ArmId::top_level(&target.id), NETWORK_API).await?.body;
        let location = network["location"].as_str().unwrap_or_default().to_string();
        let subnets: Vec<Value> = if self.resource_type == SUBNET {
            vec![self.http.require_resource(context, &target.id, NETWORK_API).await?.body]
        } else {
            network.pointer("/properties/subnets").and_then(Value::as_array).cloned().unwrap_or_default()
        };
        let group = inspect_group(&self.http, context, &id, &location).await?;
        Ok(json!({ "location": location, "subnets": subnets.iter().map(subnet_view).collect::<Vec<_>>(), "isolation_group": group }))
    }

    fn plan(&self, target: &Target, _options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let group = &state["isolation_group"];
        let group_id = group["id"].as_str().unwrap_or_default().to_string();
        let subnets = state["subnets"].as_array().cloned().unwrap_or_default();
        let mut plan = TargetPlan { state: state.clone(), ..TargetPlan::default() };
        if let Some(reason) = foreign_group(group) {
            plan.uncontainable = Some(reason);
            return Ok(plan);
        }

        let mut changes = Vec::new();
        for subnet in &subnets {
            let name = subnet["name"].as_str().unwrap_or_default();
            if let Some(reason) = subnet["skip"].as_str() {
                plan.notes.push(format!("skipped: {reason}"));
                continue;
            }
            if subnet["nsg"].as_str().is_some_and(|nsg| same_id(nsg, &group_id)) {
                continue;
            }
            let before = subnet["nsg"].as_str().map(|nsg| format!("from NSG {}", short(nsg))).unwrap_or_else(|| "from no NSG".to_string());
            changes.push(Operation {
                id: format!("subnet:{name}"),
                kind: SUBNET_GROUP.to_string(),
                subject: subnet["id"].as_str().unwrap_or_default().to_string(),
                description: format!("move subnet {name} {before} to the isolation group {}: cuts {} IP configuration(s) (NICs) in it", short(&group_id), subnet["ip_configurations"]),
                prior: json!({ "nsg": subnet["nsg"] }),
                desired: json!({ "nsg": group_id }),
                reversible: true,
            });
        }

        if changes.is_empty() {
            let isolable = subnets.iter().filter(|s| s["skip"].is_null()).count();
            if isolable == 0 {
                plan.uncontainable = Some(format!("not contained: {} has no subnet that can take the isolation group", target.id));
            } else {
                plan.notes.push(format!("already isolated: every subnet of {} that can take a group is in {group_id}", target.id));
            }
            return Ok(plan);
        }
        if group["exists"] != true {
            plan.operations.push(group_operation(&group_id));
        }
        if self.resource_type == SUBNET {
            plan.operations.extend(changes);
        } else {
            plan.operations.push(one_network_write(&target.id, &group_id, &changes));
        }
        let radius: u64 = subnets.iter().filter(|s| s["skip"].is_null()).filter_map(|s| s["ip_configurations"].as_u64()).sum();
        plan.notes.push(format!("blast radius: {radius} IP configuration(s) in the subnets to isolate lose all traffic, peered networks included"));
        plan.notes.push(STATEFUL_NOTE.to_string());
        plan.notes.push("a group on each NIC still applies too; an allow there cannot open what the subnet's isolation group denies".to_string());
        plan.outputs.insert("isolation_group".to_string(), json!(group_id));
        Ok(plan)
    }

    async fn read(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        if operation.kind == NETWORK_SUBNETS {
            return read_subnet_groups(&self.http, context, operation).await;
        }
        read_operation(&self.http, context, operation).await
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        if operation.kind == NETWORK_SUBNETS {
            return crate::assess::assess_field(operation, current, applied, "subnets");
        }
        assess_operation(operation, current, applied)
    }

    async fn apply(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        if operation.kind == NETWORK_SUBNETS {
            let groups = operation.desired["subnets"].as_object().cloned().unwrap_or_default();
            return set_subnet_groups(&self.http, context, &operation.subject, &groups).await;
        }
        apply_operation(&self.http, context, operation).await
    }

    async fn revert(&self, context: &CallContext, _target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        if operation.kind == NETWORK_SUBNETS {
            let groups = operation.prior["subnets"].as_object().cloned().unwrap_or_default();
            set_subnet_groups(&self.http, context, &operation.subject, &groups).await?;
            let group = operation.desired["subnets"].as_object().and_then(|map| map.values().next()).and_then(Value::as_str).unwrap_or_default();
            return delete_if_freed(&self.http, context, group).await;
        }
        revert_operation(&self.http, context, operation).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_delegated_subnets_are_skipped() {
        assert!(skip_reason(&json!({ "name": "GatewaySubnet" })).unwrap().contains("reserved"));
        let delegated = json!({ "name": "web", "properties": { "delegations": [{ "properties": { "serviceName": "Microsoft.Web/serverFarms" } }] } });
        assert!(skip_reason(&delegated).unwrap().contains("Microsoft.Web/serverFarms"));
        assert_eq!(skip_reason(&json!({ "name": "app", "properties": {} })), None);
    }
}
