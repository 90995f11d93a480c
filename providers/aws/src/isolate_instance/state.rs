//! What inspect reads about an instance.

use std::collections::BTreeMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::InstanceAttributeName;
use contain_core::{ActionError, ErrorKind};
use serde::{Deserialize, Serialize};

use super::scaling::{AutoScalingState, Registration, inspect_auto_scaling_shared, inspect_registrations};
use crate::clients::Clients;
use crate::errors::map_sdk_error;
use crate::groups::{GroupRole, find_group_shared};
use crate::reads::SharedReads;
use crate::tags;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InstanceState {
    pub instance_id: String,
    pub state: String,
    pub vpc_id: String,
    pub interfaces: Vec<InterfaceState>,
    /// contain's own tags on the instance, `None` where absent.
    pub tags: BTreeMap<String, Option<String>>,
    pub isolation_group: Option<String>,
    pub allow_all_group: Option<String>,
    pub instance_profile: Option<String>,
    #[serde(default)]
    pub auto_scaling: Option<AutoScalingState>,
    #[serde(default)]
    pub target_groups: Vec<Registration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InterfaceState {
    pub id: String,
    pub device_index: i32,
    pub subnet_id: String,
    /// The interface's own security groups, sorted.
    pub groups: Vec<String>,
}

/// An instance's protection attributes, in the shape of the protection operation's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Protection {
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub shutdown_behavior: String,
}

/// Reads what the plan needs from calls shared with other targets. The protection attributes,
/// one call per attribute and instance, are read by the apply just before it changes them.
pub(crate) async fn inspect_instance(clients: &Clients, instance_id: &str) -> Result<InstanceState, ActionError> {
    let instance = clients.reads.instances.get(instance_id).await?.ok_or_else(|| not_found(instance_id))?;

    let vpc_id = instance.vpc_id().unwrap_or_default().to_string();
    let mut interfaces: Vec<InterfaceState> = instance
        .network_interfaces()
        .iter()
        .map(|eni| {
            let mut groups: Vec<String> = eni.groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect();
            groups.sort();
            InterfaceState {
                id: eni.network_interface_id().unwrap_or_default().to_string(),
                device_index: eni.attachment().and_then(|a| a.device_index()).unwrap_or_default(),
                subnet_id: eni.subnet_id().unwrap_or_default().to_string(),
                groups,
            }
        })
        .collect();
    interfaces.sort_by_key(|i| i.device_index);

    let mut contain_tags: BTreeMap<String, Option<String>> =
        [tags::INCIDENT, tags::RUN].iter().map(|k| (k.to_string(), None)).collect();
    for tag in instance.tags() {
        if let (Some(key), Some(value)) = (tag.key(), tag.value()) {
            if let Some(slot) = contain_tags.get_mut(key) {
                *slot = Some(value.to_string());
            }
        }
    }

    let (isolation_group, allow_all_group) = if vpc_id.is_empty() {
        (None, None)
    } else {
        (find_group_shared(&clients.reads, &vpc_id, GroupRole::Isolation).await?, find_group_shared(&clients.reads, &vpc_id, GroupRole::AllowAll).await?)
    };

    Ok(InstanceState {
        instance_id: instance_id.to_string(),
        state: instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
        vpc_id,
        interfaces,
        tags: contain_tags,
        isolation_group,
        allow_all_group,
        instance_profile: instance.iam_instance_profile().and_then(|p| p.arn()).map(str::to_string),
        auto_scaling: inspect_auto_scaling_shared(clients, instance_id).await?,
        target_groups: inspect_registrations(clients, instance_id).await?,
    })
}

pub(crate) async fn read_protection(ec2: &Client, instance_id: &str) -> Result<Protection, ActionError> {
    let read = |attribute: InstanceAttributeName| async move {
        ec2.describe_instance_attribute()
            .instance_id(instance_id)
            .attribute(attribute)
            .send()
            .await
            .map_err(|e| map_sdk_error("DescribeInstanceAttribute", instance_id, e))
    };

    let termination = read(InstanceAttributeName::DisableApiTermination).await?;
    let stop = read(InstanceAttributeName::DisableApiStop).await?;
    let shutdown = read(InstanceAttributeName::InstanceInitiatedShutdownBehavior).await?;
    Ok(Protection {
        disable_api_termination: termination.disable_api_termination().and_then(|v| v.value()).unwrap_or(false),
        disable_api_stop: stop.disable_api_stop().and_then(|v| v.value()).unwrap_or(false),
        shutdown_behavior: shutdown
            .instance_initiated_shutdown_behavior()
            .and_then(|v| v.value())
            .unwrap_or("stop")
            .to_string(),
    })
}

/// Reads one interface's own security groups, sorted.
pub(crate) async fn read_interface_groups(reads: &SharedReads, interface_id: &str) -> Result<Vec<String>, ActionError> {
    let eni = reads.interfaces.get(interface_id).await?.ok_or_else(|| {
        ActionError::new(ErrorKind::NotFound, format!("network interface {interface_id} not found")).with_resource(interface_id)
    })?;
    let mut groups: Vec<String> = eni.groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect();
    groups.sort();
    Ok(groups)
}

/// Reads contain's tags on an instance, `None` where absent.
pub(crate) async fn read_tags(reads: &SharedReads, instance_id: &str) -> Result<BTreeMap<String, Option<String>>, ActionError> {
    let instance = reads.instances.get(instance_id).await?.ok_or_else(|| not_found(instance_id))?;
    let mut found: BTreeMap<String, Option<String>> = [tags::INCIDENT, tags::RUN].iter().map(|k| (k.to_string(), None)).collect();
    for tag in instance.tags() {
        if let (Some(key), Some(value)) = (tag.key(), tag.value()) {
            if let Some(slot) = found.get_mut(key) {
                *slot = Some(value.to_string());
            }
        }
    }
    Ok(found)
}

fn not_found(instance_id: &str) -> ActionError {
    ActionError::new(
        ErrorKind::NotFound,
        format!("instance {instance_id} not found: check the id and the region (AWS_REGION or the ARN's region)"),
    )
    .with_resource(instance_id)
}
