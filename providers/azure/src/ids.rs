//! ARM resource ids and the target types of the provider.

use contain_core::{Target, TargetParseError};

pub const VM: &str = "azure.compute.vm";
pub const NIC: &str = "azure.network.nic";
pub const NSG: &str = "azure.network.nsg";
pub const IP_GROUP: &str = "azure.network.ip_group";
pub const VNET: &str = "azure.network.vnet";
pub const SUBNET: &str = "azure.network.subnet";
pub const USER: &str = "azure.entra.user";
pub const SERVICE_PRINCIPAL: &str = "azure.entra.service_principal";
pub const APPLICATION: &str = "azure.entra.application";
pub const DOMAIN: &str = "azure.entra.domain";

/// The ARM API version of the Microsoft.Network calls, the one azure_mgmt_network's package
/// 2024-03 speaks.
pub(crate) const NETWORK_API: &str = "2024-03-01";
/// The API version of the Microsoft.Compute calls.
pub(crate) const COMPUTE_API: &str = "2024-07-01";

/// A parsed ARM resource id: `/subscriptions/S/resourceGroups/G/providers/NS/TYPE/NAME[/SUB/NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArmId {
    pub(crate) subscription: String,
    pub(crate) resource_group: String,
    /// `Microsoft.Network/networkInterfaces`, with child types appended: `…/virtualNetworks/subnets`.
    pub(crate) resource_type: String,
    pub(crate) name: String,
}

impl ArmId {
    pub(crate) fn parse(id: &str) -> Option<ArmId> {
        let parts: Vec<&str> = id.trim().trim_start_matches('/').split('/').collect();
        if parts.len() < 8 || !parts.len().is_multiple_of(2) {
            return None;
        }
        if !parts[0].eq_ignore_ascii_case("subscriptions") || !parts[2].eq_ignore_ascii_case("resourceGroups") || !parts[4].eq_ignore_ascii_case("providers") {
            return None;
        }
        if parts.iter().any(|part| part.is_empty()) {
            return None;
        }
        let mut resource_type = format!("{}/{}", parts[5], parts[6]);
        for pair in parts[8..].chunks(2) {
            resource_type.push('/');
            resource_type.push_str(pair[0]);
        }
        Some(ArmId { subscription: parts[1].to_string(), resource_group: parts[3].to_string(), resource_type, name: parts[parts.len() - 1].to_string() })
    }

    /// Returns the id of the top-level resource this id names or lies under: a subnet's VNet.
    pub(crate) fn top_level(id: &str) -> String {
        id.trim_start_matches('/').split('/').take(8).fold(String::new(), |mut path, part| {
            path.push('/');
            path.push_str(part);
            path
        })
    }

    /// Returns the id of a resource of `resource_type` named `name` in the same resource group.
    pub(crate) fn sibling(&self, resource_type: &str, name: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{}/providers/{resource_type}/{name}", self.subscription, self.resource_group)
    }
}

/// The ARM path of a resource id with its API version.
pub(crate) fn arm_path(id: &str, api_version: &str) -> String {
    format!("{id}?api-version={api_version}")
}

/// Returns the name at the end of an ARM id, for the text a reviewer reads.
pub(crate) fn short(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

/// True when two ARM ids name the same resource: ARM ids compare without regard to case.
pub(crate) fn same_id(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5 && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, length)| group.len() == length && group.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_domain(value: &str) -> bool {
    let labels: Vec<&str> = value.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| !label.is_empty() && label.len() <= 63 && !label.starts_with('-') && !label.ends_with('-') && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// Parses a target of one of the provider's types.
pub(crate) fn parse_target(resource_type: &str, value: &str) -> Result<Target, TargetParseError> {
    let value = value.trim();
    let error = |expected: &str| TargetParseError { resource_type: resource_type.to_string(), value: value.to_string(), expected: expected.to_string() };
    let arm = |expected_type: &str, expected: &str| {
        let id = ArmId::parse(value).filter(|id| id.resource_type.eq_ignore_ascii_case(expected_type)).ok_or_else(|| error(expected))?;
        Ok(Target { resource_type: resource_type.to_string(), id: value.trim_end_matches('/').to_string(), region: None, account: Some(id.subscription) })
    };
    match resource_type {
        VM => arm("Microsoft.Compute/virtualMachines", expected(VM)),
        NIC => arm("Microsoft.Network/networkInterfaces", expected(NIC)),
        NSG => arm("Microsoft.Network/networkSecurityGroups", expected(NSG)),
        VNET => arm("Microsoft.Network/virtualNetworks", expected(VNET)),
        IP_GROUP => arm("Microsoft.Network/ipGroups", expected(IP_GROUP)),
        SUBNET => arm("Microsoft.Network/virtualNetworks/subnets", expected(SUBNET)),
        USER if is_guid(value) || (value.contains('@') && !value.contains('/') && !value.starts_with('@') && !value.ends_with('@')) => {
            Ok(Target { resource_type: USER.to_string(), id: value.to_string(), region: None, account: None })
        }
        SERVICE_PRINCIPAL | APPLICATION if is_guid(value) || value.strip_prefix("appId:").is_some_and(is_guid) => {
            Ok(Target { resource_type: resource_type.to_string(), id: value.to_string(), region: None, account: None })
        }
        DOMAIN if is_domain(value) => Ok(Target { resource_type: DOMAIN.to_string(), id: value.to_ascii_lowercase(), region: None, account: None }),
        other => Err(error(expected(other))),
    }
}

/// Describes the valid forms of a target of `resource_type`.
pub(crate) fn expected(resource_type: &str) -> &'static str {
    match resource_type {
        VM => "a virtual machine resource id: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Compute/virtualMachines/<name>",
        NIC => "a network interface resource id: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/networkInterfaces/<name>",
        NSG => "a network security group resource id: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/networkSecurityGroups/<name>",
        IP_GROUP => "an IP group resource id: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/ipGroups/<name>",
        VNET => "a virtual network resource id: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<name>",
        SUBNET => "a subnet resource id: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<name>",
        USER => "an Entra ID user object id (a GUID) or user principal name (alice@contoso.com)",
        SERVICE_PRINCIPAL => "an enterprise application's service principal object id (a GUID), or appId:<application id>",
        APPLICATION => "an app registration's object id (a GUID), or appId:<application id>",
        DOMAIN => "a domain name verified in the tenant, such as contoso.com",
        _ => "a resource type the Azure provider handles",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arm_ids_with_child_types() {
        let id = ArmId::parse("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a").unwrap();
        assert_eq!(id.resource_type, "Microsoft.Network/virtualNetworks/subnets");
        assert_eq!((id.subscription.as_str(), id.resource_group.as_str(), id.name.as_str()), ("s1", "rg", "a"));
        assert!(ArmId::parse("/subscriptions/s1/resourceGroups/rg").is_none());
        assert_eq!(id.sibling("Microsoft.Network/networkSecurityGroups", "n"), "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n");
    }

    #[test]
    fn targets_name_their_valid_forms() {
        let vm = parse_target(VM, "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web").unwrap();
        assert_eq!(vm.account.as_deref(), Some("s1"));
        let wrong = parse_target(VM, "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n").unwrap_err();
        assert!(wrong.expected.contains("virtualMachines"));
        assert!(parse_target(USER, "alice@contoso.com").is_ok());
        assert!(parse_target(USER, "6e8e4b1d-1f0c-4b0a-9d55-1e6d3f0a9a11").is_ok());
        assert!(parse_target(USER, "alice").is_err());
        assert!(parse_target(SERVICE_PRINCIPAL, "appId:6e8e4b1d-1f0c-4b0a-9d55-1e6d3f0a9a11").is_ok());
        assert!(parse_target(SERVICE_PRINCIPAL, "web-app").is_err());
        assert_eq!(parse_target(DOMAIN, "Contoso.com").unwrap().id, "contoso.com");
        assert!(parse_target(DOMAIN, "contoso").is_err());
        assert!(same_id("/subscriptions/S/x", "/subscriptions/s/X"));
    }
}
