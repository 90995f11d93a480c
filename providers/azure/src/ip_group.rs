//! `block` for `azure.network.ip_group`: add addresses to an Azure Firewall IP group that a deny
//! rule of the firewall references. The group is written whole with `If-Match`, so a concurrent
//! update cannot lose another writer's entries, and rollback removes exactly the added addresses.

use std::sync::Arc;

use async_trait::async_trait;
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, Operation, OptionProblem, Target, TargetPlan, is_template};
use serde_json::{Map, Value, json};

use crate::assess::same_value;
use crate::block_options::address;
use crate::http::Http;
use crate::ids::{IP_GROUP, NETWORK_API, short};
use crate::options::{invalid, unknown_keys};

pub(crate) const ADDRESSES: &str = "azure.ip_group_addresses";

pub(crate) struct BlockInIpGroup {
    http: Arc<Http>,
}

impl BlockInIpGroup {
    pub(crate) fn new(http: Arc<Http>) -> Self {
        BlockInIpGroup { http }
    }
}

fn parse(options: &Map<String, Value>) -> Result<Vec<String>, Vec<OptionProblem>> {
    let mut problems = unknown_keys(options, &["addresses"]);
    let mut addresses = Vec::new();
    match options.get("addresses") {
        None => problems.push(OptionProblem { key: Some("addresses".into()), message: "`addresses` is required: a list of addresses or CIDRs to block".into() }),
        Some(value) if is_template(value) => {}
        Some(Value::Array(items)) if !items.is_empty() => {
            for item in items {
                match address(item) {
                    Ok(cidr) => addresses.push(cidr),
                    Err(message) => problems.push(OptionProblem { key: Some("addresses".into()), message }),
                }
            }
        }
        Some(other) => problems.push(OptionProblem { key: Some("addresses".into()), message: format!("invalid addresses {other}: expected a non-empty list such as [\"203.0.113.7\"]") }),
    }
    if problems.is_empty() { Ok(addresses) } else { Err(problems) }
}

/// Lists the addresses of a group as ARM writes them: a single address may lack its `/32`.
fn entries(group: &Value) -> Vec<String> {
    group.pointer("/properties/ipAddresses").and_then(Value::as_array).map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

/// Returns true when `entries` already contains `cidr`, written with or without its host prefix
/// length.
fn holds(entries: &[String], cidr: &str) -> bool {
    let bare = cidr.strip_suffix("/32").or_else(|| cidr.strip_suffix("/128")).unwrap_or(cidr);
    entries.iter().any(|entry| entry == cidr || entry == bare)
}

fn listed(value: &Value, key: &str) -> Vec<String> {
    value[key].as_array().map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

#[async_trait]
impl Action for BlockInIpGroup {
    fn kind(&self) -> ActionKind {
        ActionKind::Block
    }

    fn resource_type(&self) -> &'static str {
        IP_GROUP
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        parse(options).err().unwrap_or_default()
    }

    fn option_names(&self) -> Vec<&'static str> {
        vec!["addresses"]
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let group = self.http.require_resource(context, &target.id, NETWORK_API).await?.body;
        Ok(json!({ "ipAddresses": entries(&group), "firewalls": group.pointer("/properties/firewalls").cloned().unwrap_or(json!([])) }))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let addresses = parse(options).map_err(invalid)?;
        let present = listed(state, "ipAddresses");
        let missing: Vec<String> = addresses.iter().filter(|cidr| !holds(&present, cidr)).cloned().collect();
        let mut plan = TargetPlan { state: state.clone(), ..TargetPlan::default() };
        let firewalls = state["firewalls"].as_array().map(Vec::len).unwrap_or(0);
        plan.notes.push(format!(
            "an IP group blocks only where a deny rule of a firewall or firewall policy references it; {} firewall(s) use {}",
            firewalls,
            short(&target.id)
        ));
        if missing.is_empty() {
            plan.notes.push(format!("already blocked: {} holds {}", short(&target.id), addresses.join(", ")));
            return Ok(plan);
        }
        plan.operations.push(Operation {
            id: format!("addresses:{}", short(&target.id)),
            kind: ADDRESSES.to_string(),
            subject: target.id.clone(),
            description: format!("add {} to IP group {}, keeping its {} other entries", missing.join(", "), short(&target.id), present.len()),
            prior: json!({ "added": [] }),
            desired: json!({ "added": missing }),
            reversible: true,
        });
        Ok(plan)
    }

    async fn read(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let group = self.http.require_resource(context, &operation.subject, NETWORK_API).await?.body;
        let present = entries(&group);
        let added: Vec<String> = listed(&operation.desired, "added").into_iter().filter(|cidr| holds(&present, cidr)).collect();
        Ok(json!({ "added": added }))
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        let field = |value: &Value| json!(listed(value, "added"));
        let now = field(current);
        if same_value(&now, &field(&operation.prior)) {
            return Assessment::Prior;
        }
        if same_value(&now, &field(applied.unwrap_or(&operation.desired))) {
            return Assessment::Applied;
        }
        Assessment::Diverged { detail: format!("{} holds {now} of the addresses the run adds", operation.subject) }
    }

    async fn apply(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let added = listed(&operation.desired, "added");
        let finished = self
            .http
            .update_resource(context, &operation.subject, NETWORK_API, &format!("adding addresses to {}", operation.subject), |group| {
                let mut present = entries(group);
                let missing: Vec<String> = added.iter().filter(|cidr| !holds(&present, cidr)).cloned().collect();
                if missing.is_empty() {
                    return Ok(false);
                }
                present.extend(missing);
                group["properties"]["ipAddresses"] = json!(present);
                Ok(true)
            })
            .await?;
        Ok(json!({ "added": added, "operation": finished.and_then(|f| f.operation) }))
    }

    async fn revert(&self, context: &CallContext, _target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        let added = listed(&operation.desired, "added");
        self.http
            .update_resource(context, &operation.subject, NETWORK_API, &format!("removing contain's addresses from {}", operation.subject), |group| {
                let present = entries(group);
                let remaining: Vec<String> = present.iter().filter(|entry| !added.iter().any(|cidr| holds(std::slice::from_ref(entry), cidr))).cloned().collect();
                if remaining.len() == present.len() {
                    return Ok(false);
                }
                group["properties"]["ipAddresses"] = json!(remaining);
                Ok(true)
            })
            .await?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_addresses_match_with_or_without_prefix() {
        let present = vec!["203.0.113.7".to_string(), "10.0.0.0/8".to_string()];
        assert!(holds(&present, "203.0.113.7/32"));
        assert!(holds(&present, "10.0.0.0/8"));
        assert!(!holds(&present, "10.0.0.0/16"));
    }
}
