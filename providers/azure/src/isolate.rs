//! `isolate` for `azure.compute.vm` and `azure.network.nic`: a deny-all network security group,
//! one per region and resource group and reused, associated with every interface of the target.
//!
//! Each interface is read whole and written back whole with `If-Match`, with only its
//! `networkSecurityGroup` changed, so that no IP configuration or other setting is lost. The
//! journal keeps each interface's prior group (or none); rollback restores it and deletes the
//! isolation group once nothing uses it.

use std::sync::Arc;

use async_trait::async_trait;
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};

use crate::http::Http;
use crate::ids::{ArmId, COMPUTE_API, NETWORK_API, VM, same_id, short};
use crate::isolation_group::{STATEFUL_NOTE, apply_operation, assess_operation, foreign_group, group_operation, inspect_group, read_operation, revert_operation};

/// Sets one interface's group.
pub(crate) const INTERFACE: &str = "azure.nic_nsg";

pub(crate) struct Isolate {
    http: Arc<Http>,
    resource_type: &'static str,
}

impl Isolate {
    pub(crate) fn new(http: Arc<Http>, resource_type: &'static str) -> Self {
        Isolate { http, resource_type }
    }
}

fn nsg_of(nic: &Value) -> Value {
    nic.pointer("/properties/networkSecurityGroup/id").cloned().unwrap_or(Value::Null)
}

fn location_of(resource: &Value, id: &str) -> Result<String, ActionError> {
    resource.get("location").and_then(Value::as_str).map(str::to_string).ok_or_else(|| ActionError::new(ErrorKind::Other, format!("{id} has no location")).with_resource(id))
}

fn arm_id(target: &Target) -> Result<ArmId, ActionError> {
    ArmId::parse(&target.id).ok_or_else(|| ActionError::new(ErrorKind::Invalid, format!("{} is not an ARM resource id", target.id)))
}


#[async_trait]
impl Action for Isolate {
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
        let id = arm_id(target)?;
        let (location, nic_ids) = if self.resource_type == VM {
            let vm = self.http.require_resource(context, &target.id, COMPUTE_API).await?.body;
            let nics: Vec<String> = vm
                .pointer("/properties/networkProfile/networkInterfaces")
                .and_then(Value::as_array)
                .map(|nics| nics.iter().filter_map(|nic| nic.get("id").and_then(Value::as_str).map(str::to_string)).collect())
                .unwrap_or_default();
            (location_of(&vm, &target.id)?, nics)
        } else {
            let nic = self.http.require_resource(context, &target.id, NETWORK_API).await?.body;
            (location_of(&nic, &target.id)?, vec![target.id.clone()])
        };

        let mut interfaces = Vec::new();
        for nic_id in &nic_ids {
            let nic = self.http.require_resource(context, nic_id, NETWORK_API).await?.body;
            let configurations = nic.pointer("/properties/ipConfigurations").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
            interfaces.push(json!({ "id": nic.get("id").cloned().unwrap_or(json!(nic_id)), "nsg": nsg_of(&nic), "ip_configurations": configurations }));
        }

        let group = inspect_group(&self.http, context, &id, &location).await?;
        Ok(json!({ "location": location, "interfaces": interfaces, "isolation_group": group }))
    }

    fn plan(&self, target: &Target, _options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let group = &state["isolation_group"];
        let group_id = group["id"].as_str().unwrap_or_default().to_string();
        let interfaces = state["interfaces"].as_array().cloned().unwrap_or_default();
        let mut plan = TargetPlan { state: state.clone(), ..TargetPlan::default() };

        if interfaces.is_empty() {
            plan.uncontainable = Some(format!("{} has no network interface to isolate", target.id));
            return Ok(plan);
        }
        if let Some(reason) = foreign_group(group) {
            plan.uncontainable = Some(reason);
            return Ok(plan);
        }

        if group["exists"] != true {
            plan.operations.push(group_operation(&group_id));
        }
        for interface in &interfaces {
            let nic = interface["id"].as_str().unwrap_or_default();
            if interface["nsg"].as_str().is_some_and(|nsg| same_id(nsg, &group_id)) {
                continue;
            }
            let before = interface["nsg"].as_str().map(|nsg| format!("from NSG {}", short(nsg))).unwrap_or_else(|| "from no NSG".to_string());
            plan.operations.push(Operation {
                id: format!("interface:{}", nic.rsplit('/').next().unwrap_or_default()),
                kind: INTERFACE.to_string(),
                subject: nic.to_string(),
                description: format!(
                    "move NIC {} {before} to the isolation group {}, keeping its {} IP configuration(s) and every other setting",
                    short(nic),
                    short(&group_id),
                    interface["ip_configurations"]
                ),
                prior: json!({ "nsg": interface["nsg"] }),
                desired: json!({ "nsg": group_id }),
                reversible: true,
            });
        }

        if plan.operations.is_empty() {
            plan.notes.push(format!("already isolated: every interface of {} is in {group_id}", target.id));
        } else {
            plan.notes.push(STATEFUL_NOTE.to_string());
            plan.notes.push("a group on the interface's subnet still applies too; an allow there cannot open what the isolation group denies".to_string());
        }
        plan.outputs.insert("isolation_group".to_string(), json!(group_id));
        Ok(plan)
    }

    async fn read(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        read_operation(&self.http, context, operation).await
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        assess_operation(operation, current, applied)
    }

    async fn apply(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        apply_operation(&self.http, context, operation).await
    }

    async fn revert(&self, context: &CallContext, _target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        revert_operation(&self.http, context, operation).await
    }
}
