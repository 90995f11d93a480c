//! `block` for `azure.network.nsg` and `azure.compute.vm`: deny rules for a list of addresses in
//! a network security group (or in every group on a VM's interfaces and their subnets).
//!
//! Each rule goes below, in number, every allow rule that would admit the addresses. Its name
//! is derived from what it blocks, so that a second run recognises its own rule and writes
//! nothing. All rules of one group go in one write of the whole group with `If-Match`: the group
//! gets all of them or none. Rollback deletes exactly the rules the run added, and puts back
//! verbatim any allow rule it turned into a deny.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::assess::same_value;
use crate::block_options::{self, BlockOptions};
use crate::http::Http;
use crate::ids::{COMPUTE_API, NETWORK_API, VM, short};
use crate::nsg_model::{Direction, deny_rule};
use crate::priority::{Placement, RuleView, place, rules_of, unexpanded_tags};

pub(crate) const RULES: &str = "azure.nsg_rules";

/// Azure's limits: rules per group, and address prefixes and ports per rule and per group.
pub(crate) const RULES_PER_GROUP: usize = 1000;
pub(crate) const PREFIXES_PER_RULE: usize = 4000;
pub(crate) const PREFIXES_PER_GROUP: usize = 4000;

pub(crate) struct Block {
    http: Arc<Http>,
    resource_type: &'static str,
}

impl Block {
    pub(crate) fn new(http: Arc<Http>, resource_type: &'static str) -> Self {
        Block { http, resource_type }
    }

    /// Lists the groups that filter a VM's traffic: those on its interfaces and on their subnets.
    async fn groups_of_vm(&self, context: &CallContext, vm: &str) -> Result<Vec<String>, ActionError> {
        let body = self.http.require_resource(context, vm, COMPUTE_API).await?.body;
        let mut groups = Vec::new();
        let nics = body.pointer("/properties/networkProfile/networkInterfaces").and_then(Value::as_array).cloned().unwrap_or_default();
        for nic in nics.iter().filter_map(|nic| nic["id"].as_str()) {
            let nic = self.http.require_resource(context, nic, NETWORK_API).await?.body;
            groups.extend(nic.pointer("/properties/networkSecurityGroup/id").and_then(Value::as_str).map(str::to_string));
            let configurations = nic.pointer("/properties/ipConfigurations").and_then(Value::as_array).cloned().unwrap_or_default();
            for subnet in configurations.iter().filter_map(|c| c.pointer("/properties/subnet/id").and_then(Value::as_str)) {
                let subnet = self.http.require_resource(context, subnet, NETWORK_API).await?.body;
                groups.extend(subnet.pointer("/properties/networkSecurityGroup/id").and_then(Value::as_str).map(str::to_string));
            }
        }
        let mut seen = BTreeSet::new();
        groups.retain(|group| seen.insert(group.to_ascii_lowercase()));
        Ok(groups)
    }
}

/// Derives the name of contain's rule for one direction and address family of a block, so that
/// the same block always gets the same name.
fn rule_name(options: &BlockOptions, direction: Direction, addresses: &[String], v6: bool) -> String {
    let mut hash = Sha256::new();
    hash.update(format!("{addresses:?}|{:?}|{}", options.ports, options.protocol));
    let digest = hex::encode(hash.finalize());
    let way = match direction {
        Direction::Inbound => "in",
        Direction::Outbound => "out",
    };
    format!("contain-block-{way}{}-{}", if v6 { "-v6" } else { "" }, &digest[..12])
}

/// Describes what a rule admits, for the reviewer: `web (priority 100: Tcp ports 443, 22 from
/// Internet, inbound)`.
fn rule_summary(rule: &Value) -> String {
    let properties = &rule["properties"];
    let list = |single: &str, plural: &str| {
        let mut values: Vec<String> = properties[plural].as_array().map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
        values.extend(properties[single].as_str().map(str::to_string));
        if values.is_empty() { "*".to_string() } else { values.join(", ") }
    };
    let inbound = properties["direction"].as_str().is_none_or(|d| d.eq_ignore_ascii_case("Inbound"));
    let remote = if inbound { list("sourceAddressPrefix", "sourceAddressPrefixes") } else { list("destinationAddressPrefix", "destinationAddressPrefixes") };
    format!(
        "{} (priority {}: {} ports {} {} {remote}, {})",
        rule["name"].as_str().unwrap_or_default(),
        properties["priority"],
        properties["protocol"].as_str().unwrap_or("*"),
        list("destinationPortRange", "destinationPortRanges"),
        if inbound { "from" } else { "to" },
        if inbound { "inbound" } else { "outbound" }
    )
}

/// Counts the address prefixes and ports of a group's rules, as Azure counts them against its limit.
fn prefixes_and_ports(rules: &[Value]) -> usize {
    let count = |rule: &Value, key: &str| rule["properties"][key].as_array().map(Vec::len).unwrap_or(0);
    rules.iter().map(|rule| ["sourceAddressPrefixes", "destinationAddressPrefixes", "sourcePortRanges", "destinationPortRanges"].iter().map(|key| count(rule, key)).sum::<usize>()).sum()
}

/// Checks Azure's limits for a group that gets `new_rules`. Returns what would be exceeded.
pub(crate) fn check_limits(existing: &[Value], new_rules: &[Value], rule_limit: usize) -> Option<String> {
    if existing.len() + new_rules.len() > rule_limit {
        return Some(format!("the group would hold {} rules, over Azure's limit of {rule_limit}", existing.len() + new_rules.len()));
    }
    if let Some(rule) = new_rules.iter().find(|rule| prefixes_and_ports(std::slice::from_ref(rule)) > PREFIXES_PER_RULE) {
        return Some(format!("rule {} would hold over {PREFIXES_PER_RULE} address prefixes and ports", rule["name"]));
    }
    let total = prefixes_and_ports(existing) + prefixes_and_ports(new_rules);
    if total > PREFIXES_PER_GROUP {
        return Some(format!("the group's rules would hold {total} address prefixes and ports, over Azure's limit of {PREFIXES_PER_GROUP}"));
    }
    None
}

/// The fields that decide what a rule lets through.
const RULE_FIELDS: &[&str] = &[
    "priority",
    "access",
    "direction",
    "protocol",
    "sourceAddressPrefix",
    "sourceAddressPrefixes",
    "destinationAddressPrefix",
    "destinationAddressPrefixes",
    "sourcePortRange",
    "sourcePortRanges",
    "destinationPortRange",
    "destinationPortRanges",
];

/// Returns true when two rules let the same traffic through: an absent list equals an empty one.
fn same_rule(a: &Value, b: &Value) -> bool {
    let field = |rule: &Value, key: &str| match &rule["properties"][key] {
        Value::Array(items) if items.is_empty() => Value::Null,
        other => other.clone(),
    };
    RULE_FIELDS.iter().all(|key| same_value(&field(a, key), &field(b, key)))
}

fn security_rules(group: &Value) -> Vec<Value> {
    group.pointer("/properties/securityRules").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn names(value: &Value, key: &str) -> Vec<String> {
    value[key].as_array().map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

/// The changes of one group: the rules to add, the allow rules to turn into denies, and notes.
#[derive(Debug)]
struct GroupPlan {
    rules: Vec<Value>,
    converted: Vec<Value>,
    notes: Vec<String>,
}

/// Plans one group, or returns the reason it cannot be contained.
fn plan_group(id: &str, group: &Value, options: &BlockOptions) -> Result<GroupPlan, String> {
    let existing = security_rules(group);
    let mut views = rules_of(group);
    let mut plan = GroupPlan { rules: Vec::new(), converted: Vec::new(), notes: Vec::new() };
    let families: [(bool, Vec<String>); 2] = [
        (false, options.addresses.iter().filter(|a| !a.contains(':')).cloned().collect()),
        (true, options.addresses.iter().filter(|a| a.contains(':')).cloned().collect()),
    ];

    for direction in &options.directions {
        for (v6, addresses) in families.iter().filter(|(_, addresses)| !addresses.is_empty()) {
            let name = rule_name(options, *direction, addresses, *v6);
            if views.iter().any(|rule| rule.name == name) {
                plan.notes.push(format!("NSG {}: rule {name} from an earlier run already blocks these addresses {}", short(id), direction.as_str().to_lowercase()));
                continue;
            }
            let priority = match place(&views, *direction, &options.protocol, &options.ports, addresses) {
                Placement::At(priority) => priority,
                Placement::NoRoom => return Err(format!("{id}: every priority from 100 to 4096 is taken {}", direction.as_str().to_lowercase())),
                Placement::AfterConverting { allow_rules, priority } => {
                    let listed: Vec<String> = allow_rules.iter().map(|(name, p)| format!("{name} (priority {p})")).collect();
                    if !options.convert_allow {
                        let alone = match (options.directions.len(), direction) {
                            (2, Direction::Inbound) => "; the outbound direction alone can be blocked with `direction: outbound`",
                            (2, Direction::Outbound) => "; the inbound direction alone can be blocked with `direction: inbound`",
                            _ => "",
                        };
                        return Err(format!(
                            "not contained: in {id}, the allow rule(s) {} admit {} {} and no deny rule can be placed before them; \
                             set `convert_allow: true` to turn them into deny rules (journaled verbatim first, restored by rollback){alone}",
                            listed.join(", "),
                            addresses.join(", "),
                            direction.as_str().to_lowercase()
                        ));
                    }
                    for (name, _) in &allow_rules {
                        if let Some(rule) = existing.iter().find(|rule| rule["name"] == name.as_str())
                            && !plan.converted.contains(rule) {
                                plan.converted.push(rule.clone());
                            }
                    }
                    plan.notes.push(format!("{id}: turns {} into deny rules: every flow they admitted is denied, not only the blocked addresses", listed.join(", ")));
                    priority
                }
            };
            let tags = unexpanded_tags(&views, *direction);
            if !tags.is_empty() {
                plan.notes.push(format!("{id}: service tags {} were taken to admit the addresses, as contain cannot expand them", tags.join(", ")));
            }
            // The next rule of this direction must not take the same priority.
            views.push(RuleView { name: name.clone(), priority, allow: false, direction: *direction, protocol: options.protocol.clone(), remote: addresses.clone(), ports: options.ports.clone() });
            let description = format!("contain block of {}", addresses.join(" "));
            plan.rules.push(deny_rule(&name, *direction, priority as i32, &options.protocol, addresses, &options.ports, &description));
        }
    }
    if let Some(problem) = check_limits(&existing, &plan.rules, RULES_PER_GROUP) {
        return Err(format!("not contained: in {id}, {problem}; no rule was written"));
    }
    Ok(plan)
}

#[async_trait]
impl Action for Block {
    fn kind(&self) -> ActionKind {
        ActionKind::Block
    }

    fn resource_type(&self) -> &'static str {
        self.resource_type
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        block_options::parse(options).err().unwrap_or_default()
    }

    fn option_names(&self) -> Vec<&'static str> {
        block_options::OPTION_KEYS.to_vec()
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let ids = if self.resource_type == VM { self.groups_of_vm(context, &target.id).await? } else { vec![target.id.clone()] };
        let mut groups = Vec::new();
        for id in ids {
            let group = self.http.require_resource(context, &id, NETWORK_API).await?.body;
            groups.push(json!({ "id": group.get("id").cloned().unwrap_or(json!(id)), "properties": { "securityRules": security_rules(&group) } }));
        }
        Ok(json!({ "groups": groups }))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let options = block_options::parse(options).map_err(crate::options::invalid)?;
        let mut plan = TargetPlan { state: state.clone(), ..TargetPlan::default() };
        let groups = state["groups"].as_array().cloned().unwrap_or_default();
        if groups.is_empty() {
            plan.uncontainable = Some(format!("not contained: no network security group filters {}; isolate it instead, or add a group", target.id));
            return Ok(plan);
        }

        for group in &groups {
            let id = group["id"].as_str().unwrap_or_default();
            let planned = match plan_group(id, group, &options) {
                Ok(planned) => planned,
                Err(reason) => {
                    plan.operations.clear();
                    plan.uncontainable = Some(reason);
                    return Ok(plan);
                }
            };
            plan.notes.extend(planned.notes);
            if planned.rules.is_empty() && planned.converted.is_empty() {
                continue;
            }
            let rule_names: Vec<String> = planned.rules.iter().filter_map(|r| r["name"].as_str()).map(str::to_string).collect();
            let converted: Vec<String> = planned.converted.iter().filter_map(|r| r["name"].as_str()).map(str::to_string).collect();
            let summary: Vec<String> = planned
                .rules
                .iter()
                .map(|rule| format!("{} ({} at priority {})", rule["name"].as_str().unwrap_or_default(), rule["properties"]["direction"].as_str().unwrap_or_default().to_lowercase(), rule["properties"]["priority"]))
                .collect();
            let mut description = format!("add deny rules {} to NSG {} for {}", summary.join(", "), short(id), options.addresses.join(", "));
            if !converted.is_empty() {
                let admitted: Vec<String> = planned.converted.iter().map(rule_summary).collect();
                description = format!(
                    "TURN ALLOW RULE(S) {} INTO DENY, which cuts every flow they admitted, not only the blocked addresses; and {description}",
                    admitted.join(", ")
                );
            }
            plan.operations.push(Operation {
                id: format!("rules:{}", id.rsplit('/').next().unwrap_or_default()),
                kind: RULES.to_string(),
                subject: id.to_string(),
                description,
                prior: json!({ "rules": [], "converted": [], "originals": planned.converted }),
                desired: json!({ "rules": rule_names, "converted": converted, "bodies": planned.rules }),
                reversible: true,
            });
        }
        if plan.operations.is_empty() {
            plan.notes.push(format!("already blocked: {} are denied in every group of {}", options.addresses.join(", "), target.id));
        }
        Ok(plan)
    }

    async fn read(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let group = self.http.require_resource(context, &operation.subject, NETWORK_API).await?.body;
        let rules = security_rules(&group);
        let find = |name: &str| rules.iter().find(|rule| rule["name"] == name);
        let bodies = operation.desired["bodies"].as_array().cloned().unwrap_or_default();
        let originals = operation.prior["originals"].as_array().cloned().unwrap_or_default();

        // A rule of this run that someone edited since is reported apart, so that rollback detects
        // drift instead of deleting another person's rule.
        let mut added = Vec::new();
        let mut edited = Vec::new();
        for body in &bodies {
            let name = body["name"].as_str().unwrap_or_default();
            match find(name) {
                Some(rule) if same_rule(rule, body) => added.push(name.to_string()),
                Some(_) => edited.push(name.to_string()),
                None => {}
            }
        }
        let mut converted = Vec::new();
        for original in &originals {
            let name = original["name"].as_str().unwrap_or_default();
            let Some(rule) = find(name) else { continue };
            let mut denied = original.clone();
            denied["properties"]["access"] = json!("Deny");
            if same_rule(rule, &denied) {
                converted.push(name.to_string());
            } else if !same_rule(rule, original) {
                edited.push(name.to_string());
            }
        }
        Ok(json!({ "rules": added, "converted": converted, "edited": edited }))
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        let edited = names(current, "edited");
        if !edited.is_empty() {
            return Assessment::Diverged { detail: format!("rule(s) {} of {} were changed since the run", edited.join(", "), operation.subject) };
        }
        let fields = |value: &Value| json!({ "rules": names(value, "rules"), "converted": names(value, "converted") });
        let now = fields(current);
        if same_value(&now, &fields(&operation.prior)) {
            return Assessment::Prior;
        }
        if same_value(&now, &fields(applied.unwrap_or(&operation.desired))) {
            return Assessment::Applied;
        }
        Assessment::Diverged { detail: format!("{} holds contain rules {now}, but the run expected {} (before) or {} (after)", operation.subject, fields(&operation.prior), fields(&operation.desired)) }
    }

    async fn apply(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let bodies = operation.desired["bodies"].as_array().cloned().unwrap_or_default();
        let converted = names(&operation.desired, "converted");
        let subject = operation.subject.clone();
        let finished = self
            .http
            .update_resource(context, &operation.subject, NETWORK_API, &format!("adding deny rules to {subject}"), |group| {
                let mut rules = security_rules(group);
                let missing: Vec<Value> = bodies.iter().filter(|body| !rules.iter().any(|rule| rule["name"] == body["name"])).cloned().collect();
                if let Some(problem) = check_limits(&rules, &missing, RULES_PER_GROUP) {
                    return Err(ActionError::new(ErrorKind::Precondition, format!("{subject}: {problem}; no rule was written")).with_resource(subject.clone()));
                }
                let mut changed = !missing.is_empty();
                rules.extend(missing);
                for rule in rules.iter_mut().filter(|rule| rule["name"].as_str().is_some_and(|name| converted.iter().any(|c| c == name))) {
                    if rule["properties"]["access"] != "Deny" {
                        rule["properties"]["access"] = json!("Deny");
                        changed = true;
                    }
                }
                group["properties"]["securityRules"] = Value::Array(rules);
                Ok(changed)
            })
            .await?;
        Ok(json!({ "rules": names(&operation.desired, "rules"), "converted": converted, "operation": finished.and_then(|f| f.operation) }))
    }

    async fn revert(&self, context: &CallContext, _target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        let added = names(&operation.desired, "rules");
        let originals = operation.prior["originals"].as_array().cloned().unwrap_or_default();
        let subject = operation.subject.clone();
        self.http
            .update_resource(context, &operation.subject, NETWORK_API, &format!("removing contain's deny rules from {subject}"), |group| {
                let mut rules = security_rules(group);
                let before = rules.clone();
                rules.retain(|rule| !rule["name"].as_str().is_some_and(|name| added.iter().any(|a| a == name)));
                for original in &originals {
                    if let Some(rule) = rules.iter_mut().find(|rule| rule["name"] == original["name"]) {
                        *rule = original.clone();
                    }
                }
                let changed = !same_value(&Value::Array(rules.clone()), &Value::Array(before));
                group["properties"]["securityRules"] = Value::Array(rules);
                Ok(changed)
            })
            .await?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(value: Value) -> BlockOptions {
        block_options::parse(value.as_object().unwrap()).unwrap()
    }

    fn allow(name: &str, priority: i64, source: &str) -> Value {
        json!({ "name": name, "properties": { "priority": priority, "access": "Allow", "direction": "Inbound", "protocol": "*", "sourceAddressPrefix": source, "destinationPortRange": "*" } })
    }

    #[test]
    fn names_are_stable_and_recognised_on_a_rerun() {
        let opts = options(json!({ "addresses": ["203.0.113.7"], "direction": "inbound" }));
        let first = plan_group("g", &json!({ "properties": { "securityRules": [allow("web", 300, "*")] } }), &opts).unwrap();
        assert_eq!(first.rules.len(), 1);
        assert_eq!(first.rules[0]["properties"]["priority"], 100);
        let mut rules = vec![allow("web", 300, "*")];
        rules.push(first.rules[0].clone());
        let again = plan_group("g", &json!({ "properties": { "securityRules": rules } }), &opts).unwrap();
        assert!(again.rules.is_empty());
        assert!(again.notes[0].contains("already blocks"));
    }

    #[test]
    fn allow_at_100_fails_unless_conversion_is_allowed() {
        let group = json!({ "properties": { "securityRules": [allow("open", 100, "Internet")] } });
        let rejected = plan_group("g", &group, &options(json!({ "addresses": ["203.0.113.7"], "direction": "inbound" }))).unwrap_err();
        assert!(rejected.starts_with("not contained"), "{rejected}");
        assert!(rejected.contains("open (priority 100)"));
        let converted = plan_group("g", &group, &options(json!({ "addresses": ["203.0.113.7"], "direction": "inbound", "convert_allow": true }))).unwrap();
        assert_eq!(converted.converted[0]["name"], "open");
        assert_eq!(converted.rules[0]["properties"]["priority"], 101);
    }

    #[test]
    fn each_family_gets_its_own_priority() {
        let plan = plan_group("g", &json!({ "properties": { "securityRules": [] } }), &options(json!({ "addresses": ["203.0.113.7", "2001:db8::1"], "direction": "inbound" }))).unwrap();
        let priorities: Vec<&Value> = plan.rules.iter().map(|rule| &rule["properties"]["priority"]).collect();
        assert_eq!(priorities, [&json!(100), &json!(101)]);
    }

    #[test]
    fn limits_are_checked_before_any_write() {
        let existing: Vec<Value> = (0..999).map(|i| allow(&format!("r{i}"), 200 + i, "10.0.0.0/8")).collect();
        let group = json!({ "properties": { "securityRules": existing } });
        let rejected = plan_group("g", &group, &options(json!({ "addresses": ["203.0.113.7"] }))).unwrap_err();
        assert!(rejected.contains("over Azure's limit of 1000"), "{rejected}");
        let many: Vec<String> = (0..4001).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
        let rule = deny_rule("big", Direction::Inbound, 100, "*", &many, &[], "d");
        assert!(check_limits(&[], &[rule], RULES_PER_GROUP).unwrap().contains("4000"));
    }
}
