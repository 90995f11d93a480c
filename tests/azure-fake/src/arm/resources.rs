//! How the fake fills, validates and shows the ARM resource types it models.
//!
//! Stored bodies are what the client sent, plus the fields ARM fills in. Read-only
//! back-references (an NSG's `networkInterfaces` and `subnets`, a subnet's
//! `ipConfigurations`) are never stored: `view` computes them on every read.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::http::{Reply, arm_error};

pub(crate) const NSG_TYPE: &str = "Microsoft.Network/networkSecurityGroups";
pub(crate) const RULE_TYPE: &str = "Microsoft.Network/networkSecurityGroups/securityRules";
pub(crate) const DEFAULT_RULE_TYPE: &str =
    "Microsoft.Network/networkSecurityGroups/defaultSecurityRules";
pub(crate) const VNET_TYPE: &str = "Microsoft.Network/virtualNetworks";
pub(crate) const SUBNET_TYPE: &str = "Microsoft.Network/virtualNetworks/subnets";
pub(crate) const NIC_TYPE: &str = "Microsoft.Network/networkInterfaces";
pub(crate) const IP_CONFIGURATION_TYPE: &str =
    "Microsoft.Network/networkInterfaces/ipConfigurations";
pub(crate) const IP_GROUP_TYPE: &str = "Microsoft.Network/ipGroups";
pub(crate) const FIREWALL_TYPE: &str = "Microsoft.Network/azureFirewalls";
pub(crate) const VM_TYPE: &str = "Microsoft.Compute/virtualMachines";

/// A top-level resource type that the fake models beyond storing the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    NetworkSecurityGroup,
    VirtualNetwork,
    NetworkInterface,
    IpGroup,
    VirtualMachine,
    Other,
}

/// Returns the kind and the canonical `type` of `{namespace}/{type}` from a path.
pub(crate) fn kind_of(namespace: &str, type_name: &str) -> (Kind, String) {
    let full = format!("{namespace}/{type_name}");
    let known = [
        (Kind::NetworkSecurityGroup, NSG_TYPE),
        (Kind::VirtualNetwork, VNET_TYPE),
        (Kind::NetworkInterface, NIC_TYPE),
        (Kind::IpGroup, IP_GROUP_TYPE),
        (Kind::VirtualMachine, VM_TYPE),
    ];
    for (kind, canonical) in known {
        if canonical.eq_ignore_ascii_case(&full) {
            return (kind, canonical.to_string());
        }
    }
    (Kind::Other, full)
}

pub(crate) fn kind_of_type(type_name: &str) -> Kind {
    match type_name.split_once('/') {
        Some((namespace, name)) => kind_of(namespace, name).0,
        None => Kind::Other,
    }
}

/// Returns the `properties` object of a body, creating it when it is missing or not an object.
pub(crate) fn properties_mut(body: &mut Value) -> &mut Map<String, Value> {
    let object = body
        .as_object_mut()
        .expect("resource bodies are JSON objects");
    let properties = object.entry("properties").or_insert_with(|| json!({}));
    if !properties.is_object() {
        *properties = json!({});
    }
    properties
        .as_object_mut()
        .expect("properties was just made an object")
}

pub(crate) fn array_of<'a>(body: &'a Value, name: &str) -> &'a [Value] {
    body.pointer(&format!("/properties/{name}"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn id_of(value: &Value) -> Option<&str> {
    value.get("id").and_then(Value::as_str)
}

fn reference_id<'a>(body: &'a Value, pointer: &str) -> Option<&'a str> {
    body.pointer(pointer).and_then(Value::as_str)
}

/// Returns the default rules ARM adds to every network security group, as the
/// 2024-05-01 NetworkSecurityGroupCreate example shows them.
pub(crate) fn default_security_rules(nsg_id: &str) -> Value {
    let rules = [
        (
            "AllowVnetInBound",
            "Allow inbound traffic from all VMs in VNET",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow",
            65000,
            "Inbound",
        ),
        (
            "AllowAzureLoadBalancerInBound",
            "Allow inbound traffic from azure load balancer",
            "AzureLoadBalancer",
            "*",
            "Allow",
            65001,
            "Inbound",
        ),
        (
            "DenyAllInBound",
            "Deny all inbound traffic",
            "*",
            "*",
            "Deny",
            65500,
            "Inbound",
        ),
        (
            "AllowVnetOutBound",
            "Allow outbound traffic from all VMs to all VMs in VNET",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow",
            65000,
            "Outbound",
        ),
        (
            "AllowInternetOutBound",
            "Allow outbound traffic from all VMs to Internet",
            "*",
            "Internet",
            "Allow",
            65001,
            "Outbound",
        ),
        (
            "DenyAllOutBound",
            "Deny all outbound traffic",
            "*",
            "*",
            "Deny",
            65500,
            "Outbound",
        ),
    ];
    let rules: Vec<Value> = rules
        .iter()
        .map(
            |(name, description, source, destination, access, priority, direction)| {
                json!({
                    "name": name,
                    "id": format!("{nsg_id}/defaultSecurityRules/{name}"),
                    "properties": {
                        "provisioningState": "Succeeded",
                        "description": description,
                        "protocol": "*",
                        "sourcePortRange": "*",
                        "destinationPortRange": "*",
                        "sourceAddressPrefix": source,
                        "destinationAddressPrefix": destination,
                        "access": access,
                        "priority": priority,
                        "direction": direction
                    }
                })
            },
        )
        .collect();
    Value::Array(rules)
}

/// What `normalize` needs besides the body.
pub(crate) struct Context<'a> {
    /// Every stored resource, for reference checks and address allocation.
    pub arm: &'a BTreeMap<String, Value>,
    /// Maximum number of security rules in one NSG.
    pub rule_limit: usize,
    /// Whether a reference to a missing NSG is an error. Seeding turns it off,
    /// so that seeds may list resources in any order.
    pub check_references: bool,
}

/// What a PUT body may become: the body to store, or the error reply.
pub(crate) type Normalized = Result<Value, Reply>;

/// Fills a top-level body the way ARM does on PUT, and validates it.
///
/// `existing` is the stored body when the PUT replaces a resource; its
/// `resourceGuid` is kept.
pub(crate) fn normalize(
    kind: Kind,
    id: &str,
    type_name: &str,
    mut body: Value,
    existing: Option<&Value>,
    context: &Context,
) -> Normalized {
    if !body.is_object() {
        return Err(arm_error(
            400,
            "InvalidRequestFormat",
            "Cannot parse the request: the body must be a JSON object.",
        ));
    }
    let name = id.rsplit('/').next().unwrap_or_default().to_string();
    {
        let object = body.as_object_mut().expect("checked above");
        object.insert("id".into(), json!(id));
        object.insert("name".into(), json!(name));
        object.insert("type".into(), json!(type_name));
        object.remove("etag");
    }
    let needs_location = matches!(
        kind,
        Kind::NetworkSecurityGroup | Kind::VirtualNetwork | Kind::NetworkInterface | Kind::IpGroup
    );
    if needs_location && body.get("location").and_then(Value::as_str).is_none() {
        return Err(arm_error(
            400,
            "LocationRequired",
            format!("The location property is required for resource {id}."),
        ));
    }
    if matches!(
        kind,
        Kind::NetworkSecurityGroup | Kind::VirtualNetwork | Kind::NetworkInterface
    ) {
        let guid = existing
            .and_then(|existing| existing.pointer("/properties/resourceGuid").cloned())
            .unwrap_or_else(|| json!(uuid::Uuid::new_v4().to_string()));
        properties_mut(&mut body).insert("resourceGuid".into(), guid);
    }
    match kind {
        Kind::NetworkSecurityGroup => normalize_nsg(id, body, context.rule_limit),
        Kind::VirtualNetwork => normalize_vnet(id, body, context),
        Kind::NetworkInterface => normalize_nic(id, body, existing, context),
        Kind::IpGroup => {
            let properties = properties_mut(&mut body);
            properties.remove("firewalls");
            // NOTE: firewallPolicies is stored as given, not computed from the
            // rule collection groups of firewall policies, which the fake does not model.
            properties
                .entry("firewallPolicies")
                .or_insert_with(|| json!([]));
            Ok(body)
        }
        Kind::VirtualMachine | Kind::Other => Ok(body),
    }
}

fn normalize_nsg(id: &str, mut body: Value, rule_limit: usize) -> Normalized {
    let properties = properties_mut(&mut body);
    properties.remove("networkInterfaces");
    properties.remove("subnets");
    properties.entry("flushConnection").or_insert(json!(false));
    properties.insert("defaultSecurityRules".into(), default_security_rules(id));
    let rules = properties
        .entry("securityRules")
        .or_insert_with(|| json!([]));
    let Some(rules) = rules.as_array_mut() else {
        return Err(arm_error(
            400,
            "InvalidRequestFormat",
            "properties.securityRules must be an array.",
        ));
    };
    for rule in rules.iter_mut() {
        let Some(rule_name) = rule.get("name").and_then(Value::as_str).map(str::to_string) else {
            return Err(arm_error(
                400,
                "InvalidRequestFormat",
                format!("A security rule of {id} has no name."),
            ));
        };
        fill_child(
            rule,
            &format!("{id}/securityRules/{rule_name}"),
            &rule_name,
            RULE_TYPE,
        );
    }
    validate_rules(id, rules, rule_limit)?;
    Ok(body)
}

/// Sets the id, name and type of a child resource such as a rule or subnet.
pub(crate) fn fill_child(child: &mut Value, id: &str, name: &str, type_name: &str) {
    if !child.is_object() {
        *child = json!({});
    }
    let object = child.as_object_mut().expect("made an object above");
    object.insert("name".into(), json!(name));
    object.insert("id".into(), json!(id));
    object.insert("type".into(), json!(type_name));
    object.remove("etag");
    if !object.get("properties").is_some_and(Value::is_object) {
        object.insert("properties".into(), json!({}));
    }
}

/// Checks the rules of one NSG as ARM does: the count limit, priorities in
/// 100..=4096, and one priority per direction.
pub(crate) fn validate_rules(
    nsg_id: &str,
    rules: &[Value],
    rule_limit: usize,
) -> Result<(), Reply> {
    if rules.len() > rule_limit {
        return Err(arm_error(
            400,
            "SecurityRulesLimitReached",
            format!(
                "Network security group {nsg_id} has {} security rules, which exceeds the limit of {rule_limit}.",
                rules.len()
            ),
        ));
    }
    let mut seen: BTreeMap<(String, i64), String> = BTreeMap::new();
    for rule in rules {
        let name = rule.get("name").and_then(Value::as_str).unwrap_or_default();
        let priority = rule.pointer("/properties/priority").and_then(Value::as_i64);
        let Some(priority) = priority.filter(|priority| (100..=4096).contains(priority)) else {
            let provided = rule
                .pointer("/properties/priority")
                .cloned()
                .unwrap_or(Value::Null);
            return Err(arm_error(
                400,
                "SecurityRuleInvalidPriority",
                format!(
                    "Security rule {name} has invalid Priority. Value provided: {provided}. Allowed range 100-4096."
                ),
            ));
        };
        let direction = rule
            .pointer("/properties/direction")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !direction.eq_ignore_ascii_case("Inbound") && !direction.eq_ignore_ascii_case("Outbound")
        {
            return Err(arm_error(
                400,
                "SecurityRuleInvalidDirection",
                format!(
                    "Security rule {name} has invalid direction '{direction}'. Allowed values are Inbound and Outbound."
                ),
            ));
        }
        let key = (direction.to_ascii_lowercase(), priority);
        if let Some(other) = seen.get(&key) {
            return Err(arm_error(
                400,
                "SecurityRuleConflict",
                format!(
                    "Security rule {other} conflicts with rule {name}. Rules cannot have the same Priority and Direction. \
                     Priority: {priority}, direction: {direction}."
                ),
            ));
        }
        seen.insert(key, name.to_string());
    }
    Ok(())
}

fn check_nsg_reference(owner_id: &str, body: &Value, context: &Context) -> Result<(), Reply> {
    if context.check_references
        && let Some(nsg_id) = reference_id(body, "/properties/networkSecurityGroup/id")
        && !context.arm.contains_key(&nsg_id.to_ascii_lowercase())
    {
        return Err(arm_error(
            400,
            "InvalidResourceReference",
            format!("Resource {nsg_id} referenced by resource {owner_id} was not found."),
        ));
    }
    Ok(())
}

fn normalize_vnet(id: &str, mut body: Value, context: &Context) -> Normalized {
    let properties = properties_mut(&mut body);
    properties
        .entry("virtualNetworkPeerings")
        .or_insert_with(|| json!([]));
    let subnets = properties.entry("subnets").or_insert_with(|| json!([]));
    let Some(subnets) = subnets.as_array_mut() else {
        return Err(arm_error(
            400,
            "InvalidRequestFormat",
            "properties.subnets must be an array.",
        ));
    };
    for subnet in subnets.iter_mut() {
        let Some(subnet_name) = subnet
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Err(arm_error(
                400,
                "InvalidRequestFormat",
                format!("A subnet of {id} has no name."),
            ));
        };
        let subnet_id = format!("{id}/subnets/{subnet_name}");
        fill_child(subnet, &subnet_id, &subnet_name, SUBNET_TYPE);
        properties_mut(subnet).remove("ipConfigurations");
        check_nsg_reference(&subnet_id, subnet, context)?;
    }
    Ok(body)
}

fn normalize_nic(
    id: &str,
    mut body: Value,
    existing: Option<&Value>,
    context: &Context,
) -> Normalized {
    let arm = context.arm;
    check_nsg_reference(id, &body, context)?;
    let properties = properties_mut(&mut body);
    let dns = properties.entry("dnsSettings").or_insert_with(|| json!({}));
    if let Some(dns) = dns.as_object_mut() {
        dns.entry("dnsServers").or_insert_with(|| json!([]));
        dns.entry("appliedDnsServers").or_insert_with(|| json!([]));
    }
    properties
        .entry("enableAcceleratedNetworking")
        .or_insert(json!(false));
    properties
        .entry("enableIPForwarding")
        .or_insert(json!(false));
    properties
        .entry("vnetEncryptionSupported")
        .or_insert(json!(false));

    let configurations = properties
        .entry("ipConfigurations")
        .or_insert_with(|| json!([]));
    let Some(configurations) = configurations.as_array_mut() else {
        return Err(arm_error(
            400,
            "InvalidRequestFormat",
            "properties.ipConfigurations must be an array.",
        ));
    };

    // ARM puts secondary ip configurations in the subnet of the first one when they name none.
    let first_subnet = configurations
        .first()
        .and_then(|configuration| configuration.pointer("/properties/subnet").cloned());
    let any_primary = configurations.iter().any(|configuration| {
        configuration
            .pointer("/properties/primary")
            .and_then(Value::as_bool)
            == Some(true)
    });
    for (index, configuration) in configurations.iter_mut().enumerate() {
        let Some(name) = configuration
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Err(arm_error(
                400,
                "InvalidRequestFormat",
                format!("An ip configuration of {id} has no name."),
            ));
        };
        fill_child(
            configuration,
            &format!("{id}/ipConfigurations/{name}"),
            &name,
            IP_CONFIGURATION_TYPE,
        );

        let earlier_address = existing.and_then(|existing| {
            array_of(existing, "ipConfigurations")
                .iter()
                .find(|old| {
                    old.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|old| old.eq_ignore_ascii_case(&name))
                })
                .and_then(|old| old.pointer("/properties/privateIPAddress").cloned())
        });
        let subnet_id = configuration
            .pointer("/properties/subnet/id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let address = earlier_address
            .unwrap_or_else(|| json!(allocate_address(subnet_id.as_deref(), arm, index)));

        let properties = properties_mut(configuration);
        if !properties.contains_key("subnet")
            && let Some(subnet) = &first_subnet
        {
            properties.insert("subnet".into(), subnet.clone());
        }
        properties.entry("privateIPAddress").or_insert(address);
        properties
            .entry("privateIPAllocationMethod")
            .or_insert(json!("Dynamic"));
        properties
            .entry("primary")
            .or_insert(json!(!any_primary && index == 0));
        properties
            .entry("privateIPAddressVersion")
            .or_insert(json!("IPv4"));
    }
    Ok(body)
}

/// Picks a private address for an ip configuration: host 4 + `offset` + the
/// number of NIC ip configurations already in the subnet, like Azure, which
/// reserves the first four addresses. Without a known subnet it uses 10.0.0.0/24.
fn allocate_address(
    subnet_id: Option<&str>,
    arm: &BTreeMap<String, Value>,
    offset: usize,
) -> String {
    let prefix = subnet_id
        .and_then(|subnet_id| find_subnet(arm, subnet_id))
        .and_then(|subnet| {
            subnet
                .pointer("/properties/addressPrefix")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let network = prefix
        .as_deref()
        .and_then(|prefix| prefix.split('/').next())
        .and_then(|address| address.parse::<std::net::Ipv4Addr>().ok())
        .unwrap_or(std::net::Ipv4Addr::new(10, 0, 0, 0));
    let used = subnet_id.map_or(0, |subnet_id| {
        ip_configurations_in_subnet(arm, subnet_id).len()
    });
    let host = u32::from(network) + 4 + used as u32 + offset as u32;
    std::net::Ipv4Addr::from(host).to_string()
}

/// Finds a stored subnet by its full id.
pub(crate) fn find_subnet<'a>(
    arm: &'a BTreeMap<String, Value>,
    subnet_id: &str,
) -> Option<&'a Value> {
    let lower = subnet_id.to_ascii_lowercase();
    let (vnet_key, _) = lower.split_once("/subnets/")?;
    let vnet = arm.get(vnet_key)?;
    array_of(vnet, "subnets")
        .iter()
        .find(|subnet| id_of(subnet).is_some_and(|id| id.eq_ignore_ascii_case(subnet_id)))
}

/// Returns the ids of the NIC ip configurations that name this subnet.
pub(crate) fn ip_configurations_in_subnet(
    arm: &BTreeMap<String, Value>,
    subnet_id: &str,
) -> Vec<String> {
    let mut ids = Vec::new();
    for body in arm.values().filter(|body| type_is(body, NIC_TYPE)) {
        for configuration in array_of(body, "ipConfigurations") {
            let in_subnet = reference_id(configuration, "/properties/subnet/id")
                .is_some_and(|id| id.eq_ignore_ascii_case(subnet_id));
            if in_subnet && let Some(id) = id_of(configuration) {
                ids.push(id.to_string());
            }
        }
    }
    ids
}

fn type_is(body: &Value, type_name: &str) -> bool {
    body.get("type")
        .and_then(Value::as_str)
        .is_some_and(|found| found.eq_ignore_ascii_case(type_name))
}

/// Returns the ids of the NICs and of the subnets that reference this NSG.
pub(crate) fn nsg_users(arm: &BTreeMap<String, Value>, nsg_id: &str) -> (Vec<String>, Vec<String>) {
    let mut nics = Vec::new();
    let mut subnets = Vec::new();
    for body in arm.values() {
        if type_is(body, NIC_TYPE)
            && reference_id(body, "/properties/networkSecurityGroup/id")
                .is_some_and(|id| id.eq_ignore_ascii_case(nsg_id))
            && let Some(id) = id_of(body)
        {
            nics.push(id.to_string());
        }
        if type_is(body, VNET_TYPE) {
            for subnet in array_of(body, "subnets") {
                let uses = reference_id(subnet, "/properties/networkSecurityGroup/id")
                    .is_some_and(|id| id.eq_ignore_ascii_case(nsg_id));
                if uses && let Some(id) = id_of(subnet) {
                    subnets.push(id.to_string());
                }
            }
        }
    }
    (nics, subnets)
}

/// Sets the etag and provisioning state of a resource and of its child
/// resources, which share the parent's etag as ARM returns them.
pub(crate) fn stamp(body: &mut Value, etag: &str, provisioning_state: &str) {
    let Some(object) = body.as_object_mut() else {
        return;
    };
    object.insert("etag".into(), json!(etag));
    let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    properties.insert("provisioningState".into(), json!(provisioning_state));
    for (name, with_etag) in [
        ("securityRules", true),
        ("subnets", true),
        ("ipConfigurations", true),
        ("defaultSecurityRules", false),
    ] {
        let Some(children) = properties.get_mut(name).and_then(Value::as_array_mut) else {
            continue;
        };
        for child in children.iter_mut().filter_map(Value::as_object_mut) {
            if with_etag {
                child.insert("etag".into(), json!(etag));
            }
            if let Some(child_properties) =
                child.get_mut("properties").and_then(Value::as_object_mut)
            {
                child_properties.insert("provisioningState".into(), json!(provisioning_state));
            }
        }
    }
}

/// Returns a stored body as a GET shows it, with the computed back-references.
pub(crate) fn view(arm: &BTreeMap<String, Value>, stored: &Value) -> Value {
    let mut body = stored.clone();
    let Some(type_name) = stored.get("type").and_then(Value::as_str) else {
        return body;
    };
    let id = id_of(stored).unwrap_or_default().to_string();
    match kind_of_type(type_name) {
        Kind::NetworkSecurityGroup => {
            let (nics, subnets) = nsg_users(arm, &id);
            let properties = properties_mut(&mut body);
            if !nics.is_empty() {
                properties.insert("networkInterfaces".into(), id_list(&nics));
            }
            if !subnets.is_empty() {
                properties.insert("subnets".into(), id_list(&subnets));
            }
        }
        Kind::VirtualNetwork => {
            if let Some(subnets) = body
                .pointer_mut("/properties/subnets")
                .and_then(Value::as_array_mut)
            {
                for subnet in subnets.iter_mut() {
                    let subnet_id = id_of(subnet).unwrap_or_default().to_string();
                    let configurations = ip_configurations_in_subnet(arm, &subnet_id);
                    if !configurations.is_empty() {
                        properties_mut(subnet)
                            .insert("ipConfigurations".into(), id_list(&configurations));
                    }
                }
            }
        }
        Kind::IpGroup => {
            let firewalls = firewalls_using(arm, &id);
            properties_mut(&mut body).insert("firewalls".into(), id_list(&firewalls));
        }
        _ => {}
    }
    body
}

/// Returns the ids of the stored Azure Firewalls whose body mentions the IP group id.
fn firewalls_using(arm: &BTreeMap<String, Value>, ip_group_id: &str) -> Vec<String> {
    let needle = ip_group_id.to_ascii_lowercase();
    arm.values()
        .filter(|body| type_is(body, FIREWALL_TYPE))
        .filter(|body| {
            body.get("properties").is_some_and(|properties| {
                properties
                    .to_string()
                    .to_ascii_lowercase()
                    .contains(&needle)
            })
        })
        .filter_map(|body| id_of(body).map(str::to_string))
        .collect()
}

fn id_list(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| json!({ "id": id })).collect())
}

/// Returns the effective security rules of one NSG in the shape of
/// `effectiveNetworkSecurityGroups`.
///
/// NOTE: service tags such as `Internet` are not expanded into address
/// prefixes (`expandedDestinationAddressPrefix`), because the fake has no service tag data.
pub(crate) fn effective_rules(nsg: &Value) -> Vec<Value> {
    let mut effective = Vec::new();
    for (collection, rules) in [
        ("securityRules", array_of(nsg, "securityRules")),
        (
            "defaultSecurityRules",
            array_of(nsg, "defaultSecurityRules"),
        ),
    ] {
        for rule in rules {
            let name = rule.get("name").and_then(Value::as_str).unwrap_or_default();
            let properties = rule.get("properties").cloned().unwrap_or_else(|| json!({}));
            let text = |key: &str| {
                properties
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("*")
                    .to_string()
            };
            let protocol = match text("protocol").as_str() {
                "*" => "All".to_string(),
                other => other.to_string(),
            };
            let mut entry = Map::new();
            entry.insert("name".into(), json!(format!("{collection}/{name}")));
            entry.insert("protocol".into(), json!(protocol));
            for (single, plural, convert) in [
                (
                    "sourcePortRange",
                    "sourcePortRanges",
                    port_range as fn(&str) -> String,
                ),
                ("destinationPortRange", "destinationPortRanges", port_range),
                (
                    "sourceAddressPrefix",
                    "sourceAddressPrefixes",
                    address_prefix,
                ),
                (
                    "destinationAddressPrefix",
                    "destinationAddressPrefixes",
                    address_prefix,
                ),
            ] {
                let many: Vec<String> = properties
                    .get(plural)
                    .and_then(Value::as_array)
                    .map(|values| {
                        values
                            .iter()
                            .filter_map(Value::as_str)
                            .map(convert)
                            .collect()
                    })
                    .unwrap_or_default();
                if many.is_empty() {
                    entry.insert(single.into(), json!(convert(&text(single))));
                } else {
                    entry.insert(plural.into(), json!(many));
                }
            }
            entry.insert(
                "access".into(),
                properties.get("access").cloned().unwrap_or(Value::Null),
            );
            entry.insert(
                "priority".into(),
                properties.get("priority").cloned().unwrap_or(Value::Null),
            );
            entry.insert(
                "direction".into(),
                properties.get("direction").cloned().unwrap_or(Value::Null),
            );
            effective.push(Value::Object(entry));
        }
    }
    effective
}

fn port_range(range: &str) -> String {
    match range {
        "*" => "0-65535".to_string(),
        single if !single.contains('-') => format!("{single}-{single}"),
        range => range.to_string(),
    }
}

fn address_prefix(prefix: &str) -> String {
    if prefix == "*" {
        return "0.0.0.0/0".to_string();
    }
    if prefix.parse::<std::net::Ipv4Addr>().is_ok() {
        return format!("{prefix}/32");
    }
    prefix.to_string()
}
