//! The reads that the targets of one run (or plan) in one region share: look-ups by id batched
//! into describe calls of many ids, and what the run learned once and may reuse.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_autoscaling::types::AutoScalingInstanceDetails;
use aws_sdk_ec2::types::{Filter, Instance, NetworkInterface, SecurityGroup};
use contain_core::ActionError;
use tokio::sync::OnceCell;

use crate::batch::Batcher;
use crate::errors::map_sdk_error;
use crate::groups::GroupRole;

/// EC2 takes up to 200 values in one filter, and Auto Scaling 50 instance ids in one call.
const EC2_IDS_PER_CALL: usize = 200;
const SCALING_IDS_PER_CALL: usize = 50;

pub(crate) struct SharedReads {
    pub(crate) instances: Batcher<Instance>,
    pub(crate) interfaces: Batcher<NetworkInterface>,
    /// Security groups by id.
    pub(crate) groups: Batcher<SecurityGroup>,
    /// The groups named as contain's groups of a VPC, by VPC id; their tags are checked by the
    /// caller.
    pub(crate) contain_groups: Batcher<Vec<SecurityGroup>>,
    pub(crate) scaling: Batcher<AutoScalingInstanceDetails>,
    /// Target group registrations by instance id, read once for every target of a plan.
    pub(crate) registrations: OnceCell<HashMap<String, Vec<(String, Option<i32>)>>>,
    /// The contain groups this run has ensured (found or created, rules set), by VPC and role.
    ensured: Mutex<HashMap<(String, GroupRole), String>>,
    /// The results of the permission pre-flight's dry runs, by API and VPC.
    dry_runs: Mutex<HashMap<String, Arc<OnceCell<Option<String>>>>>,
}

impl std::fmt::Debug for SharedReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedReads").finish_non_exhaustive()
    }
}

impl SharedReads {
    pub(crate) fn new(ec2: &aws_sdk_ec2::Client, autoscaling: &aws_sdk_autoscaling::Client) -> Self {
        SharedReads {
            instances: describe_instances(ec2.clone()),
            interfaces: describe_interfaces(ec2.clone()),
            groups: describe_groups(ec2.clone()),
            contain_groups: describe_contain_groups(ec2.clone()),
            scaling: describe_scaling(autoscaling.clone()),
            registrations: OnceCell::new(),
            ensured: Mutex::new(HashMap::new()),
            dry_runs: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the group this run already ensured for the VPC and role, if any.
    pub(crate) fn ensured(&self, vpc_id: &str, role: GroupRole) -> Option<String> {
        self.ensured.lock().expect("ensured groups lock").get(&(vpc_id.to_string(), role)).cloned()
    }

    pub(crate) fn remember_ensured(&self, vpc_id: &str, role: GroupRole, group_id: &str) {
        self.ensured.lock().expect("ensured groups lock").insert((vpc_id.to_string(), role), group_id.to_string());
    }

    /// Returns the missing permission a dry run of `api` in `vpc_id` found, sending the dry run
    /// only for the first target of the plan that requests it.
    ///
    /// NOTE: a policy that allows the call on some resources of a VPC and not on others (by tag
    /// or id) is checked on the first target only. The run then fails on the others when it
    /// tries to change them.
    pub(crate) async fn dry_run<F>(&self, api: &str, vpc_id: &str, send: F) -> Option<String>
    where
        F: Future<Output = Option<String>>,
    {
        let cell = self.dry_runs.lock().expect("dry run lock").entry(format!("{api}/{vpc_id}")).or_default().clone();
        cell.get_or_init(|| send).await.clone()
    }

    /// Forgets an ensured group, once the run deletes it or finds it gone.
    pub(crate) fn forget_ensured(&self, group_id: &str) {
        self.ensured.lock().expect("ensured groups lock").retain(|_, id| id != group_id);
    }
}

/// Names the ids of a batch in an error: the first, and how many more.
fn batch_name(ids: &[String]) -> String {
    match ids {
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} and {} more", rest.len()),
        [] => String::new(),
    }
}

fn describe_instances(ec2: aws_sdk_ec2::Client) -> Batcher<Instance> {
    Batcher::new(EC2_IDS_PER_CALL, move |ids: Vec<String>| {
        let ec2 = ec2.clone();
        async move {
            // A filter, not InstanceIds, because an id that does not exist is then left out of
            // the response, where InstanceIds would fail the whole call.
            let filter = Filter::builder().name("instance-id").set_values(Some(ids.clone())).build();
            let mut found = HashMap::new();
            let mut pages = ec2.describe_instances().filters(filter).max_results(1000).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| map_sdk_error("DescribeInstances", &batch_name(&ids), e))?;
                for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                    if let Some(id) = instance.instance_id() {
                        found.insert(id.to_string(), instance.clone());
                    }
                }
            }
            Ok(found)
        }
    })
}

fn describe_interfaces(ec2: aws_sdk_ec2::Client) -> Batcher<NetworkInterface> {
    Batcher::new(EC2_IDS_PER_CALL, move |ids: Vec<String>| {
        let ec2 = ec2.clone();
        async move {
            let filter = Filter::builder().name("network-interface-id").set_values(Some(ids.clone())).build();
            let mut found = HashMap::new();
            let mut pages = ec2.describe_network_interfaces().filters(filter).max_results(1000).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| map_sdk_error("DescribeNetworkInterfaces", &batch_name(&ids), e))?;
                for interface in page.network_interfaces() {
                    if let Some(id) = interface.network_interface_id() {
                        found.insert(id.to_string(), interface.clone());
                    }
                }
            }
            Ok(found)
        }
    })
}

fn describe_groups(ec2: aws_sdk_ec2::Client) -> Batcher<SecurityGroup> {
    Batcher::new(EC2_IDS_PER_CALL, move |ids: Vec<String>| {
        let ec2 = ec2.clone();
        async move {
            let filter = Filter::builder().name("group-id").set_values(Some(ids.clone())).build();
            let mut found = HashMap::new();
            let mut pages = ec2.describe_security_groups().filters(filter).max_results(1000).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| map_sdk_error("DescribeSecurityGroups", &batch_name(&ids), e))?;
                for group in page.security_groups() {
                    if let Some(id) = group.group_id() {
                        found.insert(id.to_string(), group.clone());
                    }
                }
            }
            Ok(found)
        }
    })
}

fn describe_contain_groups(ec2: aws_sdk_ec2::Client) -> Batcher<Vec<SecurityGroup>> {
    // Two names per VPC, so half as many VPCs as filter values.
    Batcher::new(EC2_IDS_PER_CALL / 2, move |vpcs: Vec<String>| {
        let ec2 = ec2.clone();
        async move {
            let names: Vec<String> = vpcs.iter().flat_map(|vpc| [GroupRole::Isolation.group_name(vpc), GroupRole::AllowAll.group_name(vpc)]).collect();
            let mut pages = ec2
                .describe_security_groups()
                .filters(Filter::builder().name("vpc-id").set_values(Some(vpcs.clone())).build())
                .filters(Filter::builder().name("group-name").set_values(Some(names)).build())
                .max_results(1000)
                .into_paginator()
                .send();
            let mut found: HashMap<String, Vec<SecurityGroup>> = vpcs.iter().map(|vpc| (vpc.clone(), Vec::new())).collect();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| map_sdk_error("DescribeSecurityGroups", &batch_name(&vpcs), e))?;
                for group in page.security_groups() {
                    if let Some(list) = group.vpc_id().and_then(|vpc| found.get_mut(vpc)) {
                        list.push(group.clone());
                    }
                }
            }
            Ok(found)
        }
    })
}

fn describe_scaling(autoscaling: aws_sdk_autoscaling::Client) -> Batcher<AutoScalingInstanceDetails> {
    Batcher::new(SCALING_IDS_PER_CALL, move |ids: Vec<String>| {
        let autoscaling = autoscaling.clone();
        async move {
            let mut found = HashMap::new();
            let mut pages = autoscaling.describe_auto_scaling_instances().set_instance_ids(Some(ids.clone())).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| map_sdk_error("DescribeAutoScalingInstances", &batch_name(&ids), e))?;
                for membership in page.auto_scaling_instances() {
                    if let Some(id) = membership.instance_id() {
                        found.insert(id.to_string(), membership.clone());
                    }
                }
            }
            Ok(found)
        }
    })
}

/// Reads every target group's registrations once: instance id to (target group ARN, port).
pub(crate) async fn read_registrations(elbv2: &aws_sdk_elasticloadbalancingv2::Client) -> Result<HashMap<String, Vec<(String, Option<i32>)>>, ActionError> {
    let mut registrations: HashMap<String, Vec<(String, Option<i32>)>> = HashMap::new();
    let mut pages = elbv2.describe_target_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| map_sdk_error("DescribeTargetGroups", "the region's target groups", e))?;
        for group in page.target_groups() {
            let arn = group.target_group_arn().unwrap_or_default();
            let health = elbv2.describe_target_health().target_group_arn(arn).send().await.map_err(|e| map_sdk_error("DescribeTargetHealth", arn, e))?;
            for description in health.target_health_descriptions() {
                if let Some(target) = description.target() {
                    registrations.entry(target.id().unwrap_or_default().to_string()).or_default().push((arn.to_string(), target.port()));
                }
            }
        }
    }
    Ok(registrations)
}
