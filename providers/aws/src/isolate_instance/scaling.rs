//! Auto Scaling and load balancer handling for an isolated instance. An instance whose health
//! checks fail after isolation would be terminated and replaced by its Auto Scaling group, and
//! its evidence lost, so it is put in Standby (or detached) first. It is also taken out of every
//! ELBv2 target group, so the load balancer stops sending it traffic.

use aws_sdk_autoscaling::Client as AutoScaling;
use aws_sdk_elasticloadbalancingv2::Client as LoadBalancing;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use contain_core::{ActionError, ErrorKind, Operation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clients::Clients;
use crate::errors::map_sdk_error;

pub(crate) const ASG_SIZES: &str = "autoscaling.sizes";
pub(crate) const ASG_MEMBERSHIP: &str = "autoscaling.membership";
pub(crate) const TARGET_REGISTRATION: &str = "elbv2.registration";

/// The instance's Auto Scaling group and the group's sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AutoScalingState {
    pub group: String,
    pub lifecycle: String,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
}

/// One registration of the instance in a target group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Registration {
    pub target_group: String,
    pub port: Option<i32>,
}

/// How an instance leaves its Auto Scaling group's care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AutoScalingMode {
    Standby,
    Detach,
}

pub(crate) async fn inspect_auto_scaling(autoscaling: &AutoScaling, instance_id: &str) -> Result<Option<AutoScalingState>, ActionError> {
    let output = autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| map_sdk_error("DescribeAutoScalingInstances", instance_id, e))?;
    match output.auto_scaling_instances().first() {
        Some(membership) => group_state(autoscaling, membership).await.map(Some),
        None => Ok(None),
    }
}

/// Reads the instance's Auto Scaling membership as [`inspect_auto_scaling`] does, in a call
/// shared with the plan's other targets.
pub(crate) async fn inspect_auto_scaling_shared(clients: &Clients, instance_id: &str) -> Result<Option<AutoScalingState>, ActionError> {
    match clients.reads.scaling.get(instance_id).await? {
        Some(membership) => group_state(&clients.autoscaling, &membership).await.map(Some),
        None => Ok(None),
    }
}

async fn group_state(autoscaling: &AutoScaling, membership: &aws_sdk_autoscaling::types::AutoScalingInstanceDetails) -> Result<AutoScalingState, ActionError> {
    let group = membership.auto_scaling_group_name().unwrap_or_default().to_string();
    let groups = autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .map_err(|e| map_sdk_error("DescribeAutoScalingGroups", &group, e))?;
    let details = groups
        .auto_scaling_groups()
        .first()
        .ok_or_else(|| ActionError::new(ErrorKind::NotFound, format!("Auto Scaling group {group} not found")).with_resource(&group))?;
    Ok(AutoScalingState {
        lifecycle: membership.lifecycle_state().unwrap_or_default().to_string(),
        min: details.min_size().unwrap_or_default(),
        max: details.max_size().unwrap_or_default(),
        desired: details.desired_capacity().unwrap_or_default(),
        group,
    })
}

/// Reads the instance's target group registrations. Every target group's registrations are read
/// once for all the targets of a plan or run.
pub(crate) async fn inspect_registrations(clients: &Clients, instance_id: &str) -> Result<Vec<Registration>, ActionError> {
    let all = clients.reads.registrations.get_or_try_init(|| crate::reads::read_registrations(&clients.elbv2)).await?;
    let mut registrations: Vec<Registration> =
        all.get(instance_id).into_iter().flatten().map(|(arn, port)| Registration { target_group: arn.clone(), port: *port }).collect();
    registrations.sort_by(|a, b| (&a.target_group, a.port).cmp(&(&b.target_group, b.port)));
    Ok(registrations)
}

/// Plans the operations that take the instance out of its group's and load balancers' care.
pub(crate) fn plan_scaling(
    instance_id: &str,
    auto_scaling: Option<&AutoScalingState>,
    registrations: &[Registration],
    mode: AutoScalingMode,
    deregister: bool,
    operations: &mut Vec<Operation>,
) -> Result<(), ActionError> {
    if let Some(state) = auto_scaling {
        if state.lifecycle != "InService" {
            return Err(ActionError::new(
                ErrorKind::Precondition,
                format!(
                    "instance {instance_id} is in Auto Scaling group {} in lifecycle state {}, not InService: contain moves only InService instances out of a group; nothing was changed",
                    state.group, state.lifecycle
                ),
            )
            .with_resource(instance_id));
        }
        // Leaving the group lowers its desired capacity by one; the minimum must allow that.
        if state.desired - 1 < state.min {
            operations.push(Operation {
                id: "asg:sizes".into(),
                kind: ASG_SIZES.into(),
                subject: state.group.clone(),
                description: format!("lower the minimum size of Auto Scaling group {} from {} to {}, so the instance can leave it without a replacement", state.group, state.min, state.desired - 1),
                prior: json!({ "min": state.min, "max": state.max, "desired": state.desired }),
                desired: json!({ "min": state.desired - 1, "max": state.max, "desired": state.desired }),
                reversible: true,
            });
        }
        let (verb, after) = match mode {
            AutoScalingMode::Standby => ("put {instance} in Standby in", "Standby"),
            AutoScalingMode::Detach => ("detach {instance} from", "Detached"),
        };
        operations.push(Operation {
            id: "asg:membership".into(),
            kind: ASG_MEMBERSHIP.into(),
            subject: instance_id.to_string(),
            description: format!(
                "{} Auto Scaling group {} (desired capacity {} to {}), so failing health checks do not get it replaced and its evidence destroyed",
                verb.replace("{instance}", instance_id),
                state.group,
                state.desired,
                state.desired - 1
            ),
            prior: json!({ "lifecycle": "InService" }),
            desired: json!({ "lifecycle": after, "group": state.group }),
            reversible: true,
        });
    }
    if deregister {
        for registration in registrations {
            let port = registration.port.map(|p| format!(" port {p}")).unwrap_or_default();
            operations.push(Operation {
                id: format!("target_group:{}:{}", registration.target_group, registration.port.unwrap_or_default()),
                kind: TARGET_REGISTRATION.into(),
                subject: registration.target_group.clone(),
                description: format!("deregister {instance_id}{port} from target group {}", registration.target_group),
                prior: json!({ "registered": true }),
                desired: json!({ "registered": false, "port": registration.port }),
                reversible: true,
            });
        }
    }
    Ok(())
}

async fn lifecycle(autoscaling: &AutoScaling, instance_id: &str) -> Result<String, ActionError> {
    Ok(inspect_auto_scaling(autoscaling, instance_id).await?.map(|s| s.lifecycle).unwrap_or_else(|| "Detached".to_string()))
}

pub(crate) async fn read(autoscaling: &AutoScaling, elbv2: &LoadBalancing, instance_id: &str, operation: &Operation) -> Result<Value, ActionError> {
    match operation.kind.as_str() {
        ASG_SIZES => {
            let groups = autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(&operation.subject)
                .send()
                .await
                .map_err(|e| map_sdk_error("DescribeAutoScalingGroups", &operation.subject, e))?;
            let group = groups.auto_scaling_groups().first();
            Ok(json!({
                "min": group.and_then(|g| g.min_size()), "max": group.and_then(|g| g.max_size()), "desired": group.and_then(|g| g.desired_capacity()),
            }))
        }
        ASG_MEMBERSHIP => Ok(json!({ "lifecycle": lifecycle(autoscaling, instance_id).await? })),
        _ => {
            let registered = inspect_registrations_of(elbv2, &operation.subject, instance_id).await?;
            Ok(json!({ "registered": registered }))
        }
    }
}

async fn inspect_registrations_of(elbv2: &LoadBalancing, target_group: &str, instance_id: &str) -> Result<bool, ActionError> {
    let health = elbv2.describe_target_health().target_group_arn(target_group).send().await.map_err(|e| map_sdk_error("DescribeTargetHealth", target_group, e))?;
    Ok(health.target_health_descriptions().iter().any(|d| d.target().and_then(|t| t.id()) == Some(instance_id)))
}

fn target(instance_id: &str, operation: &Operation) -> TargetDescription {
    TargetDescription::builder().id(instance_id).set_port(operation.desired["port"].as_i64().map(|p| p as i32)).build()
}

pub(crate) async fn apply(autoscaling: &AutoScaling, elbv2: &LoadBalancing, instance_id: &str, operation: &Operation) -> Result<Value, ActionError> {
    match operation.kind.as_str() {
        ASG_SIZES => set_sizes(autoscaling, &operation.subject, &operation.desired).await.map(|()| operation.desired.clone()),
        ASG_MEMBERSHIP => {
            let group = operation.desired["group"].as_str().unwrap_or_default();
            // moto 5.2.5 accepts Auto Scaling calls that AWS rejects in the wrong lifecycle state,
            // so the state is checked before every call, as AWS would.
            let current = inspect_auto_scaling(autoscaling, instance_id).await?;
            let state = current.as_ref().map(|s| s.lifecycle.clone()).unwrap_or_else(|| "Detached".to_string());
            if state != "InService" {
                return Err(ActionError::new(ErrorKind::Precondition, format!("instance {instance_id} is {state} in {group}, not InService: left it")).with_resource(instance_id));
            }
            // Another instance of the group may have left it since the plan (two targets of one
            // group in one step): leaving it now would put the desired capacity under the minimum.
            if let Some(sizes) = current.filter(|s| s.desired - 1 < s.min) {
                return Err(ActionError::new(
                    ErrorKind::Precondition,
                    format!(
                        "instance {instance_id} cannot leave Auto Scaling group {group} now: its desired capacity {} would drop under its minimum {}; another instance of the group left it since the plan, so plan again",
                        sizes.desired, sizes.min
                    ),
                )
                .with_resource(instance_id));
            }
            if operation.desired["lifecycle"] == "Standby" {
                autoscaling
                    .enter_standby()
                    .auto_scaling_group_name(group)
                    .instance_ids(instance_id)
                    .should_decrement_desired_capacity(true)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("EnterStandby", instance_id, e))?;
            } else {
                autoscaling
                    .detach_instances()
                    .auto_scaling_group_name(group)
                    .instance_ids(instance_id)
                    .should_decrement_desired_capacity(true)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("DetachInstances", instance_id, e))?;
            }
            Ok(json!({ "lifecycle": operation.desired["lifecycle"] }))
        }
        _ => {
            elbv2
                .deregister_targets()
                .target_group_arn(&operation.subject)
                .targets(target(instance_id, operation))
                .send()
                .await
                .map_err(|e| map_sdk_error("DeregisterTargets", &operation.subject, e))?;
            Ok(json!({ "registered": false }))
        }
    }
}

pub(crate) async fn revert(autoscaling: &AutoScaling, elbv2: &LoadBalancing, instance_id: &str, operation: &Operation) -> Result<(), ActionError> {
    match operation.kind.as_str() {
        ASG_SIZES => set_sizes(autoscaling, &operation.subject, &operation.prior).await,
        ASG_MEMBERSHIP => {
            let group = operation.desired["group"].as_str().unwrap_or_default();
            let state = lifecycle(autoscaling, instance_id).await?;
            match (operation.desired["lifecycle"].as_str(), state.as_str()) {
                (_, "InService") => Ok(()),
                (Some("Standby"), "Standby") => autoscaling
                    .exit_standby()
                    .auto_scaling_group_name(group)
                    .instance_ids(instance_id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| map_sdk_error("ExitStandby", instance_id, e)),
                (Some("Detached"), "Detached") => autoscaling
                    .attach_instances()
                    .auto_scaling_group_name(group)
                    .instance_ids(instance_id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| map_sdk_error("AttachInstances", instance_id, e)),
                (_, other) => Err(ActionError::new(ErrorKind::Precondition, format!("instance {instance_id} is {other} in {group}: cannot return it to InService from there")).with_resource(instance_id)),
            }
        }
        _ => {
            elbv2
                .register_targets()
                .target_group_arn(&operation.subject)
                .targets(target(instance_id, operation))
                .send()
                .await
                .map_err(|e| map_sdk_error("RegisterTargets", &operation.subject, e))?;
            Ok(())
        }
    }
}

async fn set_sizes(autoscaling: &AutoScaling, group: &str, sizes: &Value) -> Result<(), ActionError> {
    let size = |key: &str| sizes[key].as_i64().map(|v| v as i32);
    autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .set_min_size(size("min"))
        .set_max_size(size("max"))
        .set_desired_capacity(size("desired"))
        .send()
        .await
        .map(drop)
        .map_err(|e| map_sdk_error("UpdateAutoScalingGroup", group, e))
}
