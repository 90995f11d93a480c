//! The bodies of the network security groups and rules contain writes, built with
//! azure_mgmt_network's models so that they follow the published schema.

use azure_mgmt_network::package_2024_03::models::{
    NetworkSecurityGroup, NetworkSecurityGroupPropertiesFormat, SecurityRule, SecurityRuleAccess, SecurityRuleDirection, SecurityRulePropertiesFormat, security_rule_properties_format::Protocol,
};
use serde_json::{Value, json};

/// The tag key on resources contain created, and its value on isolation groups.
pub(crate) const MANAGED_TAG: &str = "contain:managed";
pub(crate) const ISOLATION: &str = "isolation";

/// The names of the two rules of an isolation group.
pub(crate) const DENY_ALL_INBOUND: &str = "contain-deny-all-inbound";
pub(crate) const DENY_ALL_OUTBOUND: &str = "contain-deny-all-outbound";

/// The direction of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "Inbound",
            Direction::Outbound => "Outbound",
        }
    }

    fn model(self) -> SecurityRuleDirection {
        match self {
            Direction::Inbound => SecurityRuleDirection::Inbound,
            Direction::Outbound => SecurityRuleDirection::Outbound,
        }
    }
}

/// Converts a protocol as ARM names it (`*`, `Tcp`, `Udp`) to the model's.
pub(crate) fn protocol_model(protocol: &str) -> Protocol {
    match protocol {
        "Tcp" => Protocol::Tcp,
        "Udp" => Protocol::Udp,
        "Icmp" => Protocol::Icmp,
        _ => Protocol::U2a,
    }
}

/// Builds a deny rule for `prefixes` on the remote side (the source of an inbound rule, the destination
/// of an outbound one), over `ports` (empty means all).
pub(crate) fn deny_rule(name: &str, direction: Direction, priority: i32, protocol: &str, prefixes: &[String], ports: &[String], description: &str) -> Value {
    let mut properties = SecurityRulePropertiesFormat::new(protocol_model(protocol), SecurityRuleAccess::Deny, priority, direction.model());
    properties.description = Some(description.to_string());
    properties.source_port_range = Some("*".to_string());
    let (remote, local) = match direction {
        Direction::Inbound => (&mut properties.source_address_prefixes, &mut properties.destination_address_prefix),
        Direction::Outbound => (&mut properties.destination_address_prefixes, &mut properties.source_address_prefix),
    };
    remote.extend(prefixes.iter().cloned());
    *local = Some("*".to_string());
    if ports.is_empty() {
        properties.destination_port_range = Some("*".to_string());
    } else {
        properties.destination_port_ranges = ports.to_vec();
    }
    let mut rule = SecurityRule::new();
    rule.name = Some(name.to_string());
    rule.properties = Some(properties);
    serde_json::to_value(rule).unwrap_or(Value::Null)
}

/// Builds the deny-all group that isolates an interface: every flow in and out denied at priority
/// 100, with flows re-evaluated when the rules change.
pub(crate) fn isolation_group(location: &str, run_id: &str) -> Value {
    let all = vec!["*".to_string()];
    let rules = [
        deny_rule(DENY_ALL_INBOUND, Direction::Inbound, 100, "*", &all, &[], "contain isolation: deny every inbound flow"),
        deny_rule(DENY_ALL_OUTBOUND, Direction::Outbound, 100, "*", &all, &[], "contain isolation: deny every outbound flow"),
    ];
    let mut properties = NetworkSecurityGroupPropertiesFormat::new();
    properties.flush_connection = Some(true);
    properties.security_rules = rules.iter().filter_map(|rule| serde_json::from_value(rule.clone()).ok()).collect();
    let mut group = NetworkSecurityGroup::new();
    group.resource.location = Some(location.to_string());
    group.resource.tags = Some(json!({ MANAGED_TAG: ISOLATION, "contain:run": run_id }));
    group.properties = Some(properties);
    serde_json::to_value(group).unwrap_or(Value::Null)
}

/// True when a group carries contain's isolation tag.
pub(crate) fn is_isolation_group(group: &Value) -> bool {
    group.pointer(&format!("/tags/{}", MANAGED_TAG.replace('/', "~1"))).and_then(Value::as_str) == Some(ISOLATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_group_denies_both_directions_and_flushes() {
        let group = isolation_group("westeurope", "run-1");
        assert_eq!(group["location"], "westeurope");
        assert_eq!(group["properties"]["flushConnection"], true);
        let rules = group["properties"]["securityRules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["properties"]["access"], "Deny");
        assert_eq!(rules[0]["properties"]["protocol"], "*");
        assert_eq!(rules[1]["properties"]["direction"], "Outbound");
        assert!(is_isolation_group(&group));
    }

    #[test]
    fn deny_rule_puts_addresses_on_the_remote_side() {
        let rule = deny_rule("r", Direction::Outbound, 120, "Tcp", &["203.0.113.7/32".into()], &["443".into()], "d");
        assert_eq!(rule["properties"]["destinationAddressPrefixes"][0], "203.0.113.7/32");
        assert_eq!(rule["properties"]["sourceAddressPrefix"], "*");
        assert_eq!(rule["properties"]["destinationPortRanges"][0], "443");
        assert_eq!(rule["properties"]["priority"], 120);
    }
}
