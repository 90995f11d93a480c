//! `block` for `aws.ec2.security_group`: remove exactly the listed address ranges from the
//! group's rules, keeping every other range, and confirm by reading the group back.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range};
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Reconciliation, Target, TargetPlan};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::SECURITY_GROUP;
use super::rules::{Direction, is_ipv6, parse_block_rules};
use crate::clients::ClientFactory;
use crate::errors::map_sdk_error;

const GROUP_RANGE: &str = "ec2.group_range";
/// Replaces one range of a rule by narrower ranges inside it.
const GROUP_NARROW: &str = "ec2.group_narrow";
/// The option that requests narrowing instead of removal.
const NARROW_TO: &str = "narrow_to";

/// One address range of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RangeRule {
    egress: bool,
    protocol: String,
    from_port: Option<i32>,
    to_port: Option<i32>,
    cidr: String,
    description: Option<String>,
}

pub(crate) struct BlockInGroup {
    factory: Arc<ClientFactory>,
}

impl BlockInGroup {
    pub(crate) fn new(factory: Arc<ClientFactory>) -> Self {
        BlockInGroup { factory }
    }
}

async fn read_ranges(ec2: &Client, group_id: &str) -> Result<Vec<RangeRule>, ActionError> {
    let output = ec2.describe_security_groups().group_ids(group_id).send().await.map_err(|e| map_sdk_error("DescribeSecurityGroups", group_id, e))?;
    let group = output.security_groups().first().ok_or_else(|| ActionError::new(ErrorKind::NotFound, format!("security group {group_id} not found")).with_resource(group_id))?;
    let mut ranges = Vec::new();
    for (egress, permissions) in [(false, group.ip_permissions()), (true, group.ip_permissions_egress())] {
        for permission in permissions {
            let rule = |cidr: &str, description: Option<&str>| RangeRule {
                egress,
                protocol: permission.ip_protocol().unwrap_or("-1").to_string(),
                from_port: permission.from_port(),
                to_port: permission.to_port(),
                cidr: cidr.to_string(),
                description: description.map(str::to_string),
            };
            ranges.extend(permission.ip_ranges().iter().map(|r| rule(r.cidr_ip().unwrap_or_default(), r.description())));
            ranges.extend(permission.ipv6_ranges().iter().map(|r| rule(r.cidr_ipv6().unwrap_or_default(), r.description())));
        }
    }
    Ok(ranges)
}

/// True when the network `outer` contains the network `inner` (same IP family).
fn contains(outer: &str, inner: &str) -> bool {
    fn parse(cidr: &str) -> Option<(u128, u32, bool)> {
        let (address, prefix) = cidr.split_once('/')?;
        let prefix: u32 = prefix.parse().ok()?;
        match address.parse::<std::net::IpAddr>().ok()? {
            std::net::IpAddr::V4(v4) => Some((u128::from(u32::from(v4)) << 96, prefix, false)),
            std::net::IpAddr::V6(v6) => Some((u128::from(v6), prefix, true)),
        }
    }
    let (Some((outer_net, outer_prefix, outer_v6)), Some((inner_net, inner_prefix, inner_v6))) = (parse(outer), parse(inner)) else {
        return false;
    };
    if outer_v6 != inner_v6 || outer_prefix > inner_prefix {
        return false;
    }
    let mask = if outer_prefix == 0 { 0 } else { u128::MAX << (128 - outer_prefix) };
    outer_net & mask == inner_net & mask
}

fn same_rule(a: &RangeRule, b: &RangeRule) -> bool {
    a.egress == b.egress && a.protocol == b.protocol && a.from_port == b.from_port && a.to_port == b.to_port && a.cidr == b.cidr
}

fn permission(rule: &RangeRule, with_description: bool) -> IpPermission {
    let description = rule.description.clone().filter(|_| with_description);
    let mut builder = IpPermission::builder().ip_protocol(&rule.protocol).set_from_port(rule.from_port).set_to_port(rule.to_port);
    builder = if is_ipv6(&rule.cidr) {
        builder.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(&rule.cidr).set_description(description).build())
    } else {
        builder.ip_ranges(IpRange::builder().cidr_ip(&rule.cidr).set_description(description).build())
    };
    builder.build()
}

async fn revoke(ec2: &Client, group_id: &str, rule: &RangeRule) -> Result<(), ActionError> {
    if rule.egress {
        ec2.revoke_security_group_egress().group_id(group_id).ip_permissions(permission(rule, false)).send().await.map(drop).map_err(|e| map_sdk_error("RevokeSecurityGroupEgress", group_id, e))
    } else {
        ec2.revoke_security_group_ingress().group_id(group_id).ip_permissions(permission(rule, false)).send().await.map(drop).map_err(|e| map_sdk_error("RevokeSecurityGroupIngress", group_id, e))
    }
}

async fn authorize(ec2: &Client, group_id: &str, rule: &RangeRule) -> Result<(), ActionError> {
    if rule.egress {
        ec2.authorize_security_group_egress().group_id(group_id).ip_permissions(permission(rule, true)).send().await.map(drop).map_err(|e| map_sdk_error("AuthorizeSecurityGroupEgress", group_id, e))
    } else {
        ec2.authorize_security_group_ingress().group_id(group_id).ip_permissions(permission(rule, true)).send().await.map(drop).map_err(|e| map_sdk_error("AuthorizeSecurityGroupIngress", group_id, e))
    }
}

fn rule_of(operation: &Operation) -> Result<RangeRule, ActionError> {
    serde_json::from_value(operation.desired["rule"].clone()).map_err(|e| ActionError::new(ErrorKind::Invalid, format!("operation {}: {e}", operation.id)))
}

#[async_trait]
impl Action for BlockInGroup {
    fn kind(&self) -> ActionKind {
        ActionKind::Block
    }

    fn resource_type(&self) -> &'static str {
        SECURITY_GROUP
    }

    fn option_names(&self) -> Vec<&'static str> {
        let mut names = crate::network::rules::OPTION_KEYS.to_vec();
        names.push(NARROW_TO);
        names
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        let mut problems = parse_block_rules(options, &[NARROW_TO]).err().unwrap_or_default();
        if let Err(problem) = narrow_to(options) {
            problems.push(problem);
        }
        problems
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        Ok(json!({ "group_id": target.id, "ranges": read_ranges(ec2, &target.id).await? }))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let rules = parse_block_rules(options, &[NARROW_TO]).map_err(|problems| ActionError::new(ErrorKind::Invalid, problems[0].message.clone()))?;
        let narrow = narrow_to(options).map_err(|problem| ActionError::new(ErrorKind::Invalid, problem.message))?;
        let ranges: Vec<RangeRule> = serde_json::from_value(state["ranges"].clone()).map_err(|e| ActionError::new(ErrorKind::Invalid, format!("unreadable state of {target}: {e}")))?;
        let directions: Vec<bool> = rules.directions.iter().map(|d| d.egress()).collect();
        let port_filter = |range: &RangeRule| {
            rules.ports.is_empty() || rules.ports.iter().any(|p| range.protocol == "-1" || (range.from_port.unwrap_or(0) <= p.to && p.from <= range.to_port.unwrap_or(65535)))
        };

        let mut operations = Vec::new();
        let mut notes = Vec::new();
        for range in ranges.iter().filter(|r| directions.contains(&r.egress) && rules.addresses.contains(&r.cidr) && port_filter(r)) {
            let direction = if range.egress { Direction::Outbound } else { Direction::Inbound };
            let ports = match (range.from_port, range.to_port) {
                (Some(from), Some(to)) if range.protocol != "-1" => format!(" {from}-{to}"),
                _ => String::new(),
            };
            let key = format!("{}:{}:{}{}:{}", direction.as_str(), range.protocol, range.from_port.unwrap_or(-1), range.to_port.map(|t| format!("-{t}")).unwrap_or_default(), range.cidr);
            let pieces: Vec<String> = narrow.iter().filter(|n| contains(&range.cidr, n) && **n != range.cidr).cloned().collect();
            if !pieces.is_empty() {
                let present = |cidr: &String| ranges.iter().any(|r| same_rule(r, &RangeRule { cidr: cidr.clone(), ..range.clone() }));
                let mut before: Vec<String> = pieces.iter().filter(|p| present(p)).cloned().collect();
                before.push(range.cidr.clone());
                before.sort();
                operations.push(Operation {
                    id: format!("narrow:{key}"),
                    kind: GROUP_NARROW.into(),
                    subject: target.id.clone(),
                    description: format!(
                        "narrow the {} rule (protocol {}{ports}) of {} from {} to {}, adding the new ranges before removing the old one",
                        direction.as_str(),
                        range.protocol,
                        target.id,
                        range.cidr,
                        pieces.join(", ")
                    ),
                    prior: json!({ "ranges": before }),
                    desired: json!({ "ranges": sorted(pieces.clone()), "rule": range, "to": pieces }),
                    reversible: true,
                });
                continue;
            }
            operations.push(Operation {
                id: format!("range:{key}"),
                kind: GROUP_RANGE.into(),
                subject: target.id.clone(),
                description: format!("remove {} from the {} rule (protocol {}{ports}) of {}", range.cidr, direction.as_str(), range.protocol, target.id),
                prior: json!({ "present": true }),
                desired: json!({ "present": false, "rule": range }),
                reversible: true,
            });
        }
        for address in &rules.addresses {
            if !ranges.iter().any(|r| &r.cidr == address) {
                notes.push(format!("no rule of {} names {address} exactly: nothing to remove for it", target.id));
            }
            let wider: Vec<&str> = ranges
                .iter()
                .filter(|r| directions.contains(&r.egress) && &r.cidr != address && contains(&r.cidr, address))
                .map(|r| r.cidr.as_str())
                .collect();
            if !wider.is_empty() {
                notes.push(format!(
                    "{} still admits {address} through the wider range(s) {}: a security group cannot deny part of a range, so use block on the VPC (network ACL) to deny it",
                    target.id,
                    wider.join(", ")
                ));
            }
        }
        let still_admitted = notes.iter().any(|n| n.contains("still admits"));
        if operations.is_empty() && !still_admitted {
            notes.insert(0, format!("already contained: no rule of {} names the listed ranges", target.id));
        }
        Ok(TargetPlan { state: state.clone(), operations, notes, outputs: Map::new(), uncontainable: None, missing_permissions: Vec::new() })
    }

    async fn preflight(&self, context: &CallContext, target: &Target, plan: &TargetPlan) -> Result<Vec<String>, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        let mut missing = Vec::new();
        for operation in &plan.operations {
            let rule = rule_of(operation)?;
            let answer = if rule.egress {
                let request = ec2.revoke_security_group_egress().group_id(&target.id).ip_permissions(permission(&rule, false)).dry_run(true);
                crate::preflight::dry_run_answer("RevokeSecurityGroupEgress", &target.id, request.send().await)
            } else {
                let request = ec2.revoke_security_group_ingress().group_id(&target.id).ip_permissions(permission(&rule, false)).dry_run(true);
                crate::preflight::dry_run_answer("RevokeSecurityGroupIngress", &target.id, request.send().await)
            };
            missing.extend(answer);
        }
        missing.dedup();
        Ok(missing)
    }

    /// Compares whether the range is present, or which of the old and new ranges are, which is
    /// all that read returns.
    fn assess(&self, operation: &Operation, current: &Value, _applied: Option<&Value>) -> Assessment {
        if operation.kind == GROUP_NARROW {
            return if current["ranges"] == operation.prior["ranges"] {
                Assessment::Prior
            } else if current["ranges"] == operation.desired["ranges"] {
                Assessment::Applied
            } else {
                Assessment::Diverged { detail: format!("{} admits {} of the ranges this run narrows", operation.subject, current["ranges"]) }
            };
        }
        if current["present"] == true { Assessment::Prior } else { Assessment::Applied }
    }

    /// Old and new ranges both present is the state between narrowing's two calls.
    fn reconcile(&self, operation: &Operation, current: &Value) -> Reconciliation {
        let assessment = self.assess(operation, current, None);
        let all = |v: &Value| v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>();
        let known: Vec<String> = all(&operation.prior["ranges"]).into_iter().chain(all(&operation.desired["ranges"])).collect();
        match assessment {
            Assessment::Diverged { detail } if operation.kind == GROUP_NARROW && all(&current["ranges"]).iter().all(|r| known.contains(r)) => Reconciliation::Partly { detail },
            other => operation.reconcile_from(other, current),
        }
    }

    async fn read(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        let rule = rule_of(operation)?;
        let ranges = read_ranges(ec2, &target.id).await?;
        if operation.kind == GROUP_NARROW {
            let candidates = std::iter::once(rule.cidr.clone()).chain(pieces_of(operation));
            let present: Vec<String> = candidates.filter(|cidr| ranges.iter().any(|r| same_rule(r, &RangeRule { cidr: cidr.clone(), ..rule.clone() }))).collect();
            return Ok(json!({ "ranges": sorted(present) }));
        }
        let present = ranges.iter().any(|r| same_rule(r, &rule));
        Ok(json!({ "present": present }))
    }

    async fn apply(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        let rule = rule_of(operation)?;
        if operation.kind == GROUP_NARROW {
            return narrow(ec2, &target.id, &rule, &pieces_of(operation)).await;
        }
        revoke(ec2, &target.id, &rule).await?;
        // AWS can answer success for a revoke that matched nothing, so the group is read back.
        if read_ranges(ec2, &target.id).await?.iter().any(|r| same_rule(r, &rule)) {
            return Err(ActionError::new(ErrorKind::Other, format!("{} still allows {} after the revoke returned success", target.id, rule.cidr)).with_resource(&target.id));
        }
        Ok(json!({ "present": false }))
    }

    async fn revert(&self, context: &CallContext, target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        let rule = rule_of(operation)?;
        if !read_ranges(ec2, &target.id).await?.iter().any(|r| same_rule(r, &rule)) {
            authorize(ec2, &target.id, &rule).await?;
        }
        if operation.kind == GROUP_NARROW {
            // The old range is back first; then the new ranges the run added go, so the group
            // never admits less than before the run.
            let before: Vec<String> = operation.prior["ranges"].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_string)).collect();
            let ranges = read_ranges(ec2, &target.id).await?;
            for piece in pieces_of(operation).into_iter().filter(|p| !before.contains(p)) {
                let added = RangeRule { cidr: piece, ..rule.clone() };
                if ranges.iter().any(|r| same_rule(r, &added)) {
                    revoke(ec2, &target.id, &added).await?;
                }
            }
        }
        Ok(Vec::new())
    }
}

/// Adds the narrower ranges, then removes the old one, so that the group never admits less than
/// the new ranges nor more than the old one. When a call fails half-way, the ranges already added
/// are removed again (compensation), so that the group admits what it admitted before.
async fn narrow(ec2: &Client, group_id: &str, rule: &RangeRule, pieces: &[String]) -> Result<Value, ActionError> {
    let present = read_ranges(ec2, group_id).await?;
    let missing: Vec<RangeRule> = pieces.iter().map(|p| RangeRule { cidr: p.clone(), ..rule.clone() }).filter(|p| !present.iter().any(|r| same_rule(r, p))).collect();

    let mut added: Vec<&RangeRule> = Vec::new();
    for piece in &missing {
        if let Err(error) = authorize(ec2, group_id, piece).await {
            return Err(compensate(ec2, group_id, rule, &added, error).await);
        }
        added.push(piece);
    }
    if present.iter().any(|r| same_rule(r, rule)) {
        if let Err(error) = revoke(ec2, group_id, rule).await {
            return Err(compensate(ec2, group_id, rule, &added, error).await);
        }
    }
    Ok(json!({ "ranges": sorted(pieces.to_vec()) }))
}

/// Removes the ranges a failed narrowing added, and returns the error to report.
async fn compensate(ec2: &Client, group_id: &str, rule: &RangeRule, added: &[&RangeRule], error: ActionError) -> ActionError {
    if added.is_empty() {
        return error;
    }
    for piece in added {
        if let Err(undo) = revoke(ec2, group_id, piece).await {
            return ActionError {
                message: format!("{}; removing the added {} also failed ({}): {group_id} admits the old and some new ranges, no more than before", error.message, piece.cidr, undo.message),
                ..error
            };
        }
    }
    let ranges: Vec<&str> = added.iter().map(|p| p.cidr.as_str()).collect();
    tracing::warn!(group_id, added = %ranges.join(", "), "narrowing failed, compensated");
    let compensation = format!("removed the added range(s) {} again: {group_id} admits {} as before the step", ranges.join(", "), rule.cidr);
    error.with_compensation(compensation)
}

fn pieces_of(operation: &Operation) -> Vec<String> {
    operation.desired["to"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(str::to_string)).collect()
}

fn sorted(mut ranges: Vec<String>) -> Vec<String> {
    ranges.sort();
    ranges.dedup();
    ranges
}

/// Reads `narrow_to`: the ranges a matching rule keeps, each inside one of the `addresses`.
fn narrow_to(options: &Map<String, Value>) -> Result<Vec<String>, OptionProblem> {
    let problem = |message: String| OptionProblem { key: Some(NARROW_TO.to_string()), message };
    let Some(value) = options.get(NARROW_TO) else {
        return Ok(Vec::new());
    };
    if contain_core::is_template(value) {
        return Ok(Vec::new());
    }
    let items = value.as_array().filter(|items| !items.is_empty()).ok_or_else(|| problem(format!("`{NARROW_TO}` must be a list of CIDRs inside the listed addresses, such as [10.1.5.0/24], not {value}")))?;
    let addresses: Vec<&str> = options.get("addresses").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let mut narrow = Vec::new();
    for item in items {
        let text = item.as_str().ok_or_else(|| problem(format!("invalid range {item} in `{NARROW_TO}`: expected a CIDR such as 10.1.5.0/24")))?;
        if text.contains("${{") {
            continue;
        }
        contain_core::check_cidr(text).map_err(problem)?;
        let templated = addresses.iter().any(|a| a.contains("${{"));
        if !templated && !addresses.iter().any(|a| contains(a, text) && *a != text) {
            return Err(problem(format!("{text} in `{NARROW_TO}` is not inside any of the addresses {}: narrowing keeps a part of a listed range", addresses.join(", "))));
        }
        narrow.push(text.to_string());
    }
    Ok(narrow)
}

#[cfg(test)]
mod tests {
    use super::contains;

    #[test]
    fn networks_contain_their_parts() {
        assert!(contains("0.0.0.0/0", "203.0.113.7/32"));
        assert!(contains("10.1.0.0/16", "10.1.5.0/24"));
        assert!(!contains("10.1.5.0/24", "10.1.0.0/16"));
        assert!(!contains("10.2.0.0/16", "10.1.5.0/24"));
        assert!(contains("::/0", "2001:db8::/32"));
        assert!(!contains("0.0.0.0/0", "2001:db8::/32"));
    }
}
