//! `block` for `aws.ec2.vpc` and `aws.ec2.subnet`: deny entries for the listed addresses in the
//! network ACLs of the target subnets. ACLs are stateless, so the deny also cuts established
//! connections.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, PortRange, RuleAction};
use contain_core::{Action, ActionError, ActionKind, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};

use super::acl::{Acl, AclEntry, DEFAULT_DENY_RULES, blast_radius, describe_acl, describe_acls, target_subnets};
use super::rules::{BlockRules, Direction, is_ipv6, parse_block_rules};
use crate::clients::ClientFactory;
use crate::errors::map_sdk_error;

const ACL_ENTRY: &str = "ec2.acl_entry";
/// AWS's default quota: entries per ACL, per direction and per IP family, the default deny
/// included.
const DEFAULT_ENTRY_QUOTA: u64 = 20;
const EXTRA_OPTIONS: &[&str] = &["entry_quota"];

pub(crate) struct BlockAddresses {
    factory: Arc<ClientFactory>,
    resource_type: &'static str,
}

impl BlockAddresses {
    pub(crate) fn new(factory: Arc<ClientFactory>, resource_type: &'static str) -> Self {
        BlockAddresses { factory, resource_type }
    }
}

fn entry_quota(options: &Map<String, Value>) -> u64 {
    options.get("entry_quota").and_then(Value::as_u64).unwrap_or(DEFAULT_ENTRY_QUOTA)
}

fn matches(entry: &AclEntry, direction: Direction, cidr: &str, protocol: &str, ports: Option<(i32, i32)>) -> bool {
    entry.egress == direction.egress()
        && entry.cidr == cidr
        && entry.protocol == protocol
        && (protocol == "-1" || (entry.from_port, entry.to_port) == (ports.map(|p| p.0), ports.map(|p| p.1)))
}

/// Plans the deny entries of one ACL in one direction, or returns why none can be placed.
fn plan_direction(acl: &Acl, direction: Direction, rules: &BlockRules, quota: u64, operations: &mut Vec<Operation>, notes: &mut Vec<String>) -> Result<(), String> {
    let entries: Vec<&AclEntry> = acl.entries.iter().filter(|e| e.egress == direction.egress()).collect();
    let lowest_allow = entries.iter().filter(|e| e.action == "allow").map(|e| e.rule_number).min();
    let ceiling = lowest_allow.unwrap_or(DEFAULT_DENY_RULES[0]);
    let mut used: BTreeSet<i32> = entries.iter().map(|e| e.rule_number).collect();
    let port_ranges: Vec<Option<(i32, i32)>> = if rules.ports.is_empty() { vec![None] } else { rules.ports.iter().map(|p| Some((p.from, p.to))).collect() };

    let mut added_per_family = [0u64; 2];
    for cidr in &rules.addresses {
        for ports in &port_ranges {
            let existing = entries.iter().find(|e| e.action == "deny" && e.rule_number < ceiling && matches(e, direction, cidr, &rules.protocol, *ports));
            if let Some(existing) = existing {
                notes.push(format!("{} already denies {cidr} {} at rule {}", acl.id, direction.as_str(), existing.rule_number));
                continue;
            }
            // The highest free number below the lowest allow, so the deny is evaluated first.
            let Some(number) = (1..ceiling).rev().find(|n| !used.contains(n)) else {
                return Err(format!(
                    "no rule number is free below {ceiling}, the lowest allow entry of {} ({}): free a number below it, then plan again",
                    acl.id,
                    direction.as_str()
                ));
            };
            used.insert(number);
            added_per_family[usize::from(is_ipv6(cidr))] += 1;
            let port_text = ports.map(|(from, to)| if from == to { format!(" port {from}") } else { format!(" ports {from}-{to}") }).unwrap_or_default();
            operations.push(Operation {
                id: format!("acl:{}:{}:{number}", acl.id, direction.as_str()),
                kind: ACL_ENTRY.into(),
                subject: acl.id.clone(),
                description: format!("deny {} {cidr}{port_text} in {} at rule {number} (subnets: {})", direction.as_str(), acl.id, acl.associations.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(", ")),
                prior: json!({ "entry": null }),
                desired: json!({ "entry": {
                    "rule_number": number, "egress": direction.egress(), "action": "deny", "cidr": cidr,
                    "protocol": rules.protocol, "from_port": ports.map(|p| p.0), "to_port": ports.map(|p| p.1),
                }}),
                reversible: true,
            });
        }
    }

    for (family, added) in ["IPv4", "IPv6"].iter().zip(added_per_family) {
        if added == 0 {
            continue;
        }
        let ipv6 = *family == "IPv6";
        let existing = entries.iter().filter(|e| is_ipv6(&e.cidr) == ipv6 && !DEFAULT_DENY_RULES.contains(&e.rule_number)).count() as u64;
        // The default deny entry counts against the quota, whether or not it is listed.
        let total = existing + 1 + added;
        if total > quota {
            return Err(format!(
                "{} would hold {total} {family} {} entries, over the quota of {quota}: nothing was changed; remove entries, or set entry_quota if the account has a raised quota",
                acl.id,
                direction.as_str()
            ));
        }
    }
    Ok(())
}

#[async_trait]
impl Action for BlockAddresses {
    fn kind(&self) -> ActionKind {
        ActionKind::Block
    }

    fn resource_type(&self) -> &'static str {
        self.resource_type
    }

    fn option_names(&self) -> Vec<&'static str> {
        let mut names = crate::network::rules::OPTION_KEYS.to_vec();
        names.extend(EXTRA_OPTIONS);
        names
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        let mut problems = parse_block_rules(options, EXTRA_OPTIONS).err().unwrap_or_default();
        if let Some(quota) = options.get("entry_quota") {
            if !contain_core::is_template(quota) && quota.as_u64().is_none_or(|q| q < 2) {
                problems.push(OptionProblem { key: Some("entry_quota".into()), message: format!("`entry_quota` must be a whole number of at least 2, found {quota}") });
            }
        }
        problems
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        let (vpc_id, subnets) = target_subnets(ec2, target).await?;
        let acls = describe_acls(ec2, Filter::builder().name("vpc-id").values(&vpc_id).build(), &vpc_id).await?;
        let acls: Vec<Acl> = acls.into_iter().filter(|acl| acl.associations.iter().any(|(s, _)| subnets.contains(s))).collect();
        let (interfaces, instances) = blast_radius(ec2, &subnets).await?;
        Ok(json!({ "vpc_id": vpc_id, "subnets": subnets, "acls": acls, "interfaces": interfaces, "instances": instances }))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let rules = parse_block_rules(options, EXTRA_OPTIONS).map_err(|problems| ActionError::new(ErrorKind::Invalid, problems[0].message.clone()))?;
        let acls: Vec<Acl> = serde_json::from_value(state["acls"].clone()).map_err(|e| ActionError::new(ErrorKind::Invalid, format!("unreadable state of {target}: {e}")))?;
        let quota = entry_quota(options);

        let mut operations = Vec::new();
        let mut notes = vec![format!(
            "blast radius: {} instance(s) and {} network interface(s) in {} subnet(s); network ACLs are stateless, so established connections from the addresses are cut too",
            state["instances"], state["interfaces"], state["subnets"].as_array().map(Vec::len).unwrap_or(0)
        )];
        let mut problems = Vec::new();
        for acl in &acls {
            for direction in &rules.directions {
                if let Err(problem) = plan_direction(acl, *direction, &rules, quota, &mut operations, &mut notes) {
                    problems.push(problem);
                }
            }
        }
        if !problems.is_empty() {
            return Err(ActionError::new(ErrorKind::Precondition, problems.join("; ")));
        }
        if operations.is_empty() {
            notes.insert(0, format!("already contained: the ACLs of {target} deny every listed address"));
        }
        let mut outputs = Map::new();
        outputs.insert("subnets".into(), state["subnets"].clone());
        Ok(TargetPlan { state: state.clone(), operations, notes, outputs, uncontainable: None, missing_permissions: Vec::new() })
    }

    async fn read(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        read_entry(ec2, operation).await
    }

    async fn apply(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        let entry: AclEntry = serde_json::from_value(operation.desired["entry"].clone()).map_err(|e| ActionError::new(ErrorKind::Invalid, format!("operation {}: {e}", operation.id)))?;
        let mut request = ec2
            .create_network_acl_entry()
            .network_acl_id(&operation.subject)
            .rule_number(entry.rule_number)
            .egress(entry.egress)
            .rule_action(RuleAction::Deny)
            .protocol(&entry.protocol);
        request = if is_ipv6(&entry.cidr) { request.ipv6_cidr_block(&entry.cidr) } else { request.cidr_block(&entry.cidr) };
        if let (Some(from), Some(to)) = (entry.from_port, entry.to_port) {
            request = request.port_range(PortRange::builder().from(from).to(to).build());
        }
        request.send().await.map_err(|e| map_sdk_error("CreateNetworkAclEntry", &operation.subject, e))?;
        Ok(json!({ "entry": entry }))
    }

    async fn revert(&self, context: &CallContext, target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        // Delete only the entry this run added: the same ACL, number, direction and CIDR.
        let current = read_entry(ec2, operation).await?;
        if current["entry"].is_null() {
            return Ok(Vec::new());
        }
        if current["entry"]["cidr"] != operation.desired["entry"]["cidr"] {
            return Err(ActionError::new(
                ErrorKind::Precondition,
                format!("rule {} of {} is now {}, not the entry this run added: left it", operation.desired["entry"]["rule_number"], operation.subject, current["entry"]),
            ));
        }
        let number = operation.desired["entry"]["rule_number"].as_i64().unwrap_or_default() as i32;
        let egress = operation.desired["entry"]["egress"].as_bool().unwrap_or(false);
        ec2.delete_network_acl_entry()
            .network_acl_id(&operation.subject)
            .rule_number(number)
            .egress(egress)
            .send()
            .await
            .map_err(|e| map_sdk_error("DeleteNetworkAclEntry", &operation.subject, e))?;
        Ok(Vec::new())
    }
}

async fn read_entry(ec2: &aws_sdk_ec2::Client, operation: &Operation) -> Result<Value, ActionError> {
    let number = operation.desired["entry"]["rule_number"].as_i64().unwrap_or_default() as i32;
    let egress = operation.desired["entry"]["egress"].as_bool().unwrap_or(false);
    let acl = describe_acl(ec2, &operation.subject).await?;
    let acl = acl.ok_or_else(|| ActionError::new(ErrorKind::NotFound, format!("network ACL {} not found", operation.subject)).with_resource(&operation.subject))?;
    let entry = acl.entries.iter().find(|e| e.rule_number == number && e.egress == egress);
    Ok(json!({ "entry": entry }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::rules::Ports;

    fn entry(rule_number: i32, action: &str) -> AclEntry {
        AclEntry { rule_number, egress: false, action: action.into(), cidr: "0.0.0.0/0".into(), protocol: "-1".into(), from_port: None, to_port: None }
    }

    fn rules(addresses: &[&str]) -> BlockRules {
        BlockRules { addresses: addresses.iter().map(|a| a.to_string()).collect(), ports: Vec::<Ports>::new(), protocol: "-1".into(), directions: vec![Direction::Inbound] }
    }

    #[test]
    fn deny_takes_highest_free_number_below_allow() {
        let acl = Acl { id: "acl-1".into(), is_default: true, entries: vec![entry(100, "allow"), entry(99, "deny"), entry(32767, "deny")], associations: Vec::new(), managed_by_contain: false };
        let (mut operations, mut notes) = (Vec::new(), Vec::new());
        plan_direction(&acl, Direction::Inbound, &rules(&["198.51.100.0/24"]), 20, &mut operations, &mut notes).unwrap();
        assert_eq!(operations[0].desired["entry"]["rule_number"], 98);
    }

    #[test]
    fn no_free_number_fails_clearly() {
        let acl = Acl { id: "acl-1".into(), is_default: true, entries: vec![entry(2, "allow"), entry(1, "deny")], associations: Vec::new(), managed_by_contain: false };
        let (mut operations, mut notes) = (Vec::new(), Vec::new());
        let error = plan_direction(&acl, Direction::Inbound, &rules(&["198.51.100.0/24"]), 20, &mut operations, &mut notes).unwrap_err();
        assert!(error.contains("no rule number is free below 2"), "{error}");
        assert!(error.contains("acl-1"), "{error}");
    }
}
