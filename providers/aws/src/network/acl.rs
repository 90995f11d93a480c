//! Reading network ACLs, their entries and the subnets they serve.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Filter;
use contain_core::{ActionError, ErrorKind, Target};
use serde::{Deserialize, Serialize};

use super::target::VPC;
use crate::errors::map_sdk_error;

/// The rule numbers of the default deny entries (IPv4 and IPv6), which every ACL has and which
/// cannot be changed.
pub(crate) const DEFAULT_DENY_RULES: [i32; 2] = [32767, 32768];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AclEntry {
    pub(crate) rule_number: i32,
    pub(crate) egress: bool,
    pub(crate) action: String,
    pub(crate) cidr: String,
    pub(crate) protocol: String,
    pub(crate) from_port: Option<i32>,
    pub(crate) to_port: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Acl {
    pub(crate) id: String,
    pub(crate) is_default: bool,
    pub(crate) entries: Vec<AclEntry>,
    /// The subnets associated with the ACL, with their association ids.
    pub(crate) associations: Vec<(String, String)>,
    pub(crate) managed_by_contain: bool,
}

/// Reads one ACL by id, or `None` when it does not exist. It requests it by `NetworkAclIds` because
/// moto 5.2.5 does not implement the `network-acl-id` filter.
pub(crate) async fn describe_acl(ec2: &Client, acl_id: &str) -> Result<Option<Acl>, ActionError> {
    match ec2.describe_network_acls().network_acl_ids(acl_id).send().await {
        Ok(output) => Ok(to_acls(&output).into_iter().next()),
        Err(error) => {
            let error = map_sdk_error("DescribeNetworkAcls", acl_id, error);
            if error.kind == ErrorKind::NotFound { Ok(None) } else { Err(error) }
        }
    }
}

pub(crate) async fn describe_acls(ec2: &Client, filter: Filter, what: &str) -> Result<Vec<Acl>, ActionError> {
    let output = ec2.describe_network_acls().filters(filter).send().await.map_err(|e| map_sdk_error("DescribeNetworkAcls", what, e))?;
    Ok(to_acls(&output))
}

fn to_acls(output: &aws_sdk_ec2::operation::describe_network_acls::DescribeNetworkAclsOutput) -> Vec<Acl> {
    output
        .network_acls()
        .iter()
        .map(|acl| Acl {
            id: acl.network_acl_id().unwrap_or_default().to_string(),
            is_default: acl.is_default().unwrap_or(false),
            entries: acl
                .entries()
                .iter()
                .map(|e| AclEntry {
                    rule_number: e.rule_number().unwrap_or_default(),
                    egress: e.egress().unwrap_or(false),
                    action: e.rule_action().map(|a| a.as_str().to_string()).unwrap_or_default(),
                    cidr: e.cidr_block().or(e.ipv6_cidr_block()).unwrap_or_default().to_string(),
                    protocol: e.protocol().unwrap_or("-1").to_string(),
                    from_port: e.port_range().and_then(|p| p.from()),
                    to_port: e.port_range().and_then(|p| p.to()),
                })
                .collect(),
            associations: acl
                .associations()
                .iter()
                .map(|a| (a.subnet_id().unwrap_or_default().to_string(), a.network_acl_association_id().unwrap_or_default().to_string()))
                .collect(),
            managed_by_contain: acl.tags().iter().any(|t| t.key() == Some(crate::tags::MANAGED)),
        })
        .collect()
}

/// Lists the subnets a VPC or subnet target covers, and the VPC they are in.
pub(crate) async fn target_subnets(ec2: &Client, target: &Target) -> Result<(String, Vec<String>), ActionError> {
    let filter = if target.resource_type == VPC {
        Filter::builder().name("vpc-id").values(&target.id).build()
    } else {
        Filter::builder().name("subnet-id").values(&target.id).build()
    };
    let output = ec2.describe_subnets().filters(filter).send().await.map_err(|e| map_sdk_error("DescribeSubnets", &target.id, e))?;
    let mut subnets: Vec<String> = output.subnets().iter().filter_map(|s| s.subnet_id().map(str::to_string)).collect();
    subnets.sort();
    let vpc_id = output.subnets().first().and_then(|s| s.vpc_id()).map(str::to_string);
    match vpc_id {
        Some(vpc_id) => Ok((vpc_id, subnets)),
        None if target.resource_type == VPC => {
            ec2.describe_vpcs().vpc_ids(&target.id).send().await.map_err(|e| map_sdk_error("DescribeVpcs", &target.id, e))?;
            Ok((target.id.clone(), Vec::new()))
        }
        None => Err(ActionError::new(ErrorKind::NotFound, format!("subnet {} not found", target.id)).with_resource(&target.id)),
    }
}

/// Counts the network interfaces and the distinct instances in the subnets, the blast radius of
/// a change to their ACLs.
pub(crate) async fn blast_radius(ec2: &Client, subnets: &[String]) -> Result<(usize, usize), ActionError> {
    if subnets.is_empty() {
        return Ok((0, 0));
    }
    let output = ec2
        .describe_network_interfaces()
        .filters(Filter::builder().name("subnet-id").set_values(Some(subnets.to_vec())).build())
        .send()
        .await
        .map_err(|e| map_sdk_error("DescribeNetworkInterfaces", "the target subnets", e))?;
    let interfaces = output.network_interfaces();
    let mut instances: Vec<&str> = interfaces.iter().filter_map(|n| n.attachment().and_then(|a| a.instance_id())).collect();
    instances.sort();
    instances.dedup();
    Ok((interfaces.len(), instances.len()))
}
