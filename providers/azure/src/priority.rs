//! The placement of a deny rule in a network security group: below, in number, every allow rule
//! that would admit the blocked addresses, within 100..=4096.

use std::net::IpAddr;

use serde_json::Value;

use crate::nsg_model::Direction;

pub(crate) const LOWEST_PRIORITY: i64 = 100;
pub(crate) const HIGHEST_PRIORITY: i64 = 4096;

/// A security rule as the placement needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RuleView {
    pub(crate) name: String,
    pub(crate) priority: i64,
    pub(crate) allow: bool,
    pub(crate) direction: Direction,
    pub(crate) protocol: String,
    /// The address prefixes on the far side: the source of an inbound rule, the destination of
    /// an outbound one.
    pub(crate) remote: Vec<String>,
    pub(crate) ports: Vec<String>,
}

fn strings(rule: &Value, single: &str, plural: &str) -> Vec<String> {
    let properties = &rule["properties"];
    let mut values: Vec<String> = properties[plural].as_array().map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
    if let Some(value) = properties[single].as_str() {
        values.push(value.to_string());
    }
    values
}

/// Lists the custom rules of a group, as read.
pub(crate) fn rules_of(group: &Value) -> Vec<RuleView> {
    let rules = group.pointer("/properties/securityRules").and_then(Value::as_array).cloned().unwrap_or_default();
    rules
        .iter()
        .map(|rule| {
            let properties = &rule["properties"];
            let direction = if properties["direction"].as_str().is_some_and(|d| d.eq_ignore_ascii_case("Outbound")) { Direction::Outbound } else { Direction::Inbound };
            let remote = match direction {
                Direction::Inbound => strings(rule, "sourceAddressPrefix", "sourceAddressPrefixes"),
                Direction::Outbound => strings(rule, "destinationAddressPrefix", "destinationAddressPrefixes"),
            };
            RuleView {
                name: rule["name"].as_str().unwrap_or_default().to_string(),
                priority: properties["priority"].as_i64().unwrap_or(0),
                allow: properties["access"].as_str().is_some_and(|a| a.eq_ignore_ascii_case("Allow")),
                direction,
                protocol: properties["protocol"].as_str().unwrap_or("*").to_string(),
                remote,
                ports: strings(rule, "destinationPortRange", "destinationPortRanges"),
            }
        })
        .collect()
}

/// Converts a network to a range of 128-bit numbers, IPv4 kept apart from IPv6.
fn network(text: &str) -> Option<(bool, u128, u128)> {
    let (address, bits) = text.split_once('/').map(|(a, b)| (a, b.parse::<u32>().ok())).unwrap_or((text, None));
    let address: IpAddr = address.trim().parse().ok()?;
    let (v4, value, width) = match address {
        IpAddr::V4(v4) => (true, u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (false, u128::from(v6), 128),
    };
    let bits = bits.unwrap_or(width).min(width);
    let host = if bits == width { 0 } else { (1u128 << (width - bits)) - 1 };
    Some((v4, value & !host, value | host))
}

/// Returns whether a rule's prefix admits part of `cidr`. Service tags other than the ones that mean
/// "everything" are taken to admit it: contain cannot expand them offline.
fn prefix_admits(prefix: &str, cidr: &str) -> bool {
    if ["*", "any", "internet", "0.0.0.0/0", "::/0"].iter().any(|all| prefix.eq_ignore_ascii_case(all)) {
        return true;
    }
    match (network(prefix), network(cidr)) {
        (Some((v4a, low_a, high_a)), Some((v4b, low_b, high_b))) => v4a == v4b && low_a <= high_b && low_b <= high_a,
        (None, _) => true,
        _ => false,
    }
}

fn port_range(text: &str) -> Option<(u32, u32)> {
    if text == "*" {
        return Some((0, 65535));
    }
    let (from, to) = text.split_once('-').unwrap_or((text, text));
    Some((from.trim().parse().ok()?, to.trim().parse().ok()?))
}

fn ports_overlap(rule: &[String], ours: &[String]) -> bool {
    if rule.is_empty() || ours.is_empty() {
        return true;
    }
    rule.iter().filter_map(|r| port_range(r)).any(|(a, b)| ours.iter().filter_map(|o| port_range(o)).any(|(c, d)| a <= d && c <= b))
}

fn protocols_overlap(rule: &str, ours: &str) -> bool {
    rule == "*" || ours == "*" || rule.eq_ignore_ascii_case(ours)
}

/// The place of the deny rule of one direction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Placement {
    /// At this priority, below every admitting allow rule.
    At(i64),
    /// Only after these allow rules (name, priority) are turned into denies, at this priority.
    AfterConverting { allow_rules: Vec<(String, i64)>, priority: i64 },
    /// Every priority from 100 to 4096 is taken.
    NoRoom,
}

/// Places a deny rule for `addresses` over `protocol` and `ports` among `rules`, skipping the
/// rules named in `ignore` (contain's own rule of an earlier run of the same block).
pub(crate) fn place(rules: &[RuleView], direction: Direction, protocol: &str, ports: &[String], addresses: &[String]) -> Placement {
    let in_direction: Vec<&RuleView> = rules.iter().filter(|rule| rule.direction == direction).collect();
    let admitting: Vec<&RuleView> = in_direction
        .iter()
        .copied()
        .filter(|rule| rule.allow && protocols_overlap(&rule.protocol, protocol) && ports_overlap(&rule.ports, ports))
        .filter(|rule| rule.remote.iter().any(|prefix| addresses.iter().any(|address| prefix_admits(prefix, address))))
        .collect();
    let used = |priority: i64| in_direction.iter().any(|rule| rule.priority == priority);
    let ceiling = admitting.iter().map(|rule| rule.priority).min().unwrap_or(HIGHEST_PRIORITY + 1);

    if let Some(priority) = (LOWEST_PRIORITY..ceiling.min(HIGHEST_PRIORITY + 1)).find(|p| !used(*p)) {
        return Placement::At(priority);
    }
    let Some(priority) = (LOWEST_PRIORITY..=HIGHEST_PRIORITY).find(|p| !used(*p)) else {
        return Placement::NoRoom;
    };
    let allow_rules = admitting.iter().filter(|rule| rule.priority < priority).map(|rule| (rule.name.clone(), rule.priority)).collect();
    Placement::AfterConverting { allow_rules, priority }
}

/// Service tags among the admitting rules' prefixes, which contain could not expand.
pub(crate) fn unexpanded_tags(rules: &[RuleView], direction: Direction) -> Vec<String> {
    let mut tags: Vec<String> = rules
        .iter()
        .filter(|rule| rule.direction == direction && rule.allow)
        .flat_map(|rule| rule.remote.iter())
        .filter(|prefix| network(prefix).is_none() && !["*", "any", "internet"].iter().any(|all| prefix.eq_ignore_ascii_case(all)))
        .cloned()
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, priority: i64, allow: bool, remote: &str, ports: &str) -> RuleView {
        RuleView { name: name.into(), priority, allow, direction: Direction::Inbound, protocol: "Tcp".into(), remote: vec![remote.into()], ports: vec![ports.into()] }
    }

    #[test]
    fn deny_goes_below_the_admitting_allow() {
        let rules = [rule("ssh", 300, true, "*", "22"), rule("taken", 100, false, "10.0.0.0/8", "*")];
        assert_eq!(place(&rules, Direction::Inbound, "*", &[], &["203.0.113.7/32".into()]), Placement::At(101));
        assert_eq!(place(&rules, Direction::Outbound, "*", &[], &["203.0.113.7/32".into()]), Placement::At(100));
    }

    #[test]
    fn allow_at_100_cannot_be_outranked() {
        let rules = [rule("open", 100, true, "0.0.0.0/0", "*"), rule("web", 110, true, "203.0.113.0/24", "443")];
        let placement = place(&rules, Direction::Inbound, "*", &[], &["203.0.113.7/32".into()]);
        assert_eq!(placement, Placement::AfterConverting { allow_rules: vec![("open".into(), 100)], priority: 101 });
    }

    #[test]
    fn allow_rules_that_do_not_admit_are_ignored() {
        let rules = [rule("office", 100, true, "198.51.100.0/24", "*"), rule("udp-only", 100, true, "*", "53")];
        // The second rule admits only port 53; blocking port 22 is not affected by it.
        let placement = place(&rules[..1], Direction::Inbound, "*", &["22".into()], &["203.0.113.7/32".into()]);
        assert_eq!(placement, Placement::At(101));
        assert!(prefix_admits("VirtualNetwork", "203.0.113.7/32"));
        assert!(!prefix_admits("10.0.0.0/8", "2001:db8::1/128"));
        assert!(prefix_admits("203.0.113.0/24", "203.0.113.128/25"));
        assert!(!ports_overlap(&["53".into()], &["22".into()]));
        assert_eq!(unexpanded_tags(&[rule("t", 200, true, "AzureCloud", "*")], Direction::Inbound), ["AzureCloud"]);
    }
}
