//! A full description of the EC2 state that contain may change, ordered so two descriptions of
//! the same state are equal.

use anyhow::Context;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{InstanceAttributeName, IpPermission};
use serde_json::{Value, json};

fn tags(tags: &[aws_sdk_ec2::types::Tag]) -> Value {
    let mut pairs: Vec<(String, String)> =
        tags.iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect();
    pairs.sort();
    Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

fn rules(permissions: &[IpPermission]) -> Value {
    let mut rules: Vec<Value> = permissions
        .iter()
        .map(|p| {
            let mut v4: Vec<&str> = p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).collect();
            let mut v6: Vec<&str> = p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()).collect();
            let mut peers: Vec<&str> = p.user_id_group_pairs().iter().filter_map(|g| g.group_id()).collect();
            v4.sort();
            v6.sort();
            peers.sort();
            json!({ "protocol": p.ip_protocol(), "from": p.from_port(), "to": p.to_port(), "ipv4": v4, "ipv6": v6, "groups": peers })
        })
        .collect();
    rules.sort_by_key(|r| r.to_string());
    Value::Array(rules)
}

fn sorted_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut ids: Vec<String> = ids.map(str::to_string).collect();
    ids.sort();
    ids
}

/// Describes VPCs, subnets, network ACLs (entries and subnets), security groups (with rules and
/// tags), network interfaces (with groups) and instances (with groups per interface, tags, and termination, stop and shutdown
/// settings).
pub async fn describe(ec2: &Client) -> anyhow::Result<Value> {
    let vpcs = ec2.describe_vpcs().send().await.context("DescribeVpcs")?;
    let mut vpcs: Vec<Value> = vpcs
        .vpcs()
        .iter()
        .map(|v| json!({ "id": v.vpc_id(), "cidr": v.cidr_block(), "tags": tags(v.tags()) }))
        .collect();
    vpcs.sort_by_key(|v| v.to_string());

    let subnets = ec2.describe_subnets().send().await.context("DescribeSubnets")?;
    let mut subnets: Vec<Value> = subnets
        .subnets()
        .iter()
        .map(|s| json!({ "id": s.subnet_id(), "vpc": s.vpc_id(), "cidr": s.cidr_block(), "tags": tags(s.tags()) }))
        .collect();
    subnets.sort_by_key(|v| v.to_string());

    let groups = ec2.describe_security_groups().send().await.context("DescribeSecurityGroups")?;
    let mut groups: Vec<Value> = groups
        .security_groups()
        .iter()
        .map(|g| {
            json!({
                "id": g.group_id(), "name": g.group_name(), "vpc": g.vpc_id(), "description": g.description(),
                "ingress": rules(g.ip_permissions()), "egress": rules(g.ip_permissions_egress()), "tags": tags(g.tags()),
            })
        })
        .collect();
    groups.sort_by_key(|v| v.to_string());

    let interfaces = ec2.describe_network_interfaces().send().await.context("DescribeNetworkInterfaces")?;
    let mut interfaces: Vec<Value> = interfaces
        .network_interfaces()
        .iter()
        .map(|n| {
            json!({
                "id": n.network_interface_id(), "subnet": n.subnet_id(), "status": n.status().map(|s| s.as_str()),
                "groups": sorted_ids(n.groups().iter().filter_map(|g| g.group_id())),
                "instance": n.attachment().and_then(|a| a.instance_id()),
                "device_index": n.attachment().and_then(|a| a.device_index()),
                "tags": tags(n.tag_set()),
            })
        })
        .collect();
    interfaces.sort_by_key(|v| v.to_string());

    let reservations = ec2.describe_instances().send().await.context("DescribeInstances")?;
    let mut instances = Vec::new();
    for instance in reservations.reservations().iter().flat_map(|r| r.instances()) {
        let id = instance.instance_id().unwrap_or_default();
        let attribute = |name: InstanceAttributeName| {
            ec2.describe_instance_attribute().instance_id(id).attribute(name).send()
        };
        let termination = attribute(InstanceAttributeName::DisableApiTermination).await.context("DescribeInstanceAttribute")?;
        let stop = attribute(InstanceAttributeName::DisableApiStop).await.context("DescribeInstanceAttribute")?;
        let shutdown = attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior).await.context("DescribeInstanceAttribute")?;
        let mut enis: Vec<Value> = instance
            .network_interfaces()
            .iter()
            .map(|n| {
                json!({
                    "id": n.network_interface_id(),
                    "groups": sorted_ids(n.groups().iter().filter_map(|g| g.group_id())),
                    "device_index": n.attachment().and_then(|a| a.device_index()),
                })
            })
            .collect();
        enis.sort_by_key(|v| v.to_string());
        instances.push(json!({
            "id": id,
            "state": instance.state().and_then(|s| s.name()).map(|n| n.as_str()),
            "vpc": instance.vpc_id(),
            "tags": tags(instance.tags()),
            "interfaces": enis,
            "disable_api_termination": termination.disable_api_termination().and_then(|v| v.value()),
            "disable_api_stop": stop.disable_api_stop().and_then(|v| v.value()),
            "shutdown_behavior": shutdown.instance_initiated_shutdown_behavior().and_then(|v| v.value()),
        }));
    }
    instances.sort_by_key(|v| v.to_string());

    // Association ids are left out: AWS issues a new one on every association change.
    let acls = ec2.describe_network_acls().send().await.context("DescribeNetworkAcls")?;
    let mut acls: Vec<Value> = acls
        .network_acls()
        .iter()
        .map(|acl| {
            let mut entries: Vec<Value> = acl
                .entries()
                .iter()
                .map(|e| {
                    json!({
                        "rule": e.rule_number(), "egress": e.egress(), "action": e.rule_action().map(|a| a.as_str()),
                        "cidr": e.cidr_block().or(e.ipv6_cidr_block()), "protocol": e.protocol(),
                        "ports": e.port_range().map(|p| (p.from(), p.to())),
                    })
                })
                .collect();
            entries.sort_by_key(|v| v.to_string());
            json!({
                "id": acl.network_acl_id(), "vpc": acl.vpc_id(), "default": acl.is_default(), "entries": entries,
                "subnets": sorted_ids(acl.associations().iter().filter_map(|a| a.subnet_id())), "tags": tags(acl.tags()),
            })
        })
        .collect();
    acls.sort_by_key(|v| v.to_string());

    Ok(json!({ "vpcs": vpcs, "subnets": subnets, "security_groups": groups, "network_interfaces": interfaces, "instances": instances, "network_acls": acls }))
}
