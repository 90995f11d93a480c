//! `isolate` for `aws.ec2.instance`.

mod operations;
mod plan;
mod scaling;
mod state;

use std::sync::Arc;

use async_trait::async_trait;
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Reconciliation, Target, TargetPlan};
use serde_json::{Map, Value, json};

use crate::clients::{ClientFactory, Clients};
use crate::tags;
use crate::target::INSTANCE;
use plan::{ALLOW_ALL_OP, ALLOW_ALL_PLACEHOLDER, ENSURE_GROUP, INTERFACE_GROUPS, ISOLATION_OP, ISOLATION_PLACEHOLDER, PROTECTION, RUN_PLACEHOLDER, TAGS};
use scaling::{ASG_MEMBERSHIP, ASG_SIZES, TARGET_REGISTRATION};
use state::InstanceState;

/// Isolates an EC2 instance, one network interface at a time, because the instance-level group
/// change fails on instances with several interfaces. Each interface goes through the allow-all
/// group when tracked connections are to be cut, then into the isolation group. Termination and
/// stop protection are turned on, and a tag names the incident and run.
pub(crate) struct IsolateInstance {
    factory: Arc<ClientFactory>,
}

impl IsolateInstance {
    pub(crate) fn new(factory: Arc<ClientFactory>) -> Self {
        IsolateInstance { factory }
    }

    async fn clients(&self, context: &CallContext, target: &Target) -> Result<Arc<Clients>, ActionError> {
        self.factory.for_target(context, target).await
    }
}

#[async_trait]
impl Action for IsolateInstance {
    fn kind(&self) -> ActionKind {
        ActionKind::Isolate
    }

    fn resource_type(&self) -> &'static str {
        INSTANCE
    }

    fn option_names(&self) -> Vec<&'static str> {
        plan::OPTION_KEYS.to_vec()
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        plan::check_options(options)
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let clients = self.clients(context, target).await?;
        let state = state::inspect_instance(&clients, &target.id).await?;
        Ok(serde_json::to_value(state).expect("instance state serializes"))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let options = plan::parse_options(options)?;
        let state: InstanceState = serde_json::from_value(state.clone())
            .map_err(|e| ActionError::new(ErrorKind::Invalid, format!("unreadable state of {target}: {e}")))?;
        plan::plan(target, &options, &state)
    }

    async fn preflight(&self, context: &CallContext, target: &Target, plan: &TargetPlan) -> Result<Vec<String>, ActionError> {
        let clients = self.clients(context, target).await?;
        let ec2 = &clients.ec2;
        let vpc_id = plan.outputs.get("vpc_id").and_then(Value::as_str).unwrap_or_default();
        // One dry run per API and VPC stands for every target of the plan in that VPC.
        let mut missing = Vec::new();
        for operation in &plan.operations {
            let subject = operation.subject.as_str();
            let answer = match operation.kind.as_str() {
                ENSURE_GROUP if operation.prior["id"].is_null() => {
                    let request = ec2.create_security_group().group_name(subject).description("contain permission pre-flight").vpc_id(vpc_id).dry_run(true);
                    clients.reads.dry_run("CreateSecurityGroup", vpc_id, async { crate::preflight::dry_run_answer("CreateSecurityGroup", vpc_id, request.send().await) }).await
                }
                INTERFACE_GROUPS => {
                    let groups: Vec<String> = operation.prior["groups"].as_array().into_iter().flatten().filter_map(|g| g.as_str().map(str::to_string)).collect();
                    let request = ec2.modify_network_interface_attribute().network_interface_id(subject).set_groups(Some(groups)).dry_run(true);
                    clients.reads.dry_run("ModifyNetworkInterfaceAttribute", vpc_id, async { crate::preflight::dry_run_answer("ModifyNetworkInterfaceAttribute", subject, request.send().await) }).await
                }
                PROTECTION => {
                    let flag = aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build();
                    let request = ec2.modify_instance_attribute().instance_id(&target.id).disable_api_termination(flag).dry_run(true);
                    clients.reads.dry_run("ModifyInstanceAttribute", vpc_id, async { crate::preflight::dry_run_answer("ModifyInstanceAttribute", &target.id, request.send().await) }).await
                }
                TAGS => {
                    let tag = aws_sdk_ec2::types::Tag::builder().key(tags::RUN).value(&context.run_id).build();
                    let request = ec2.create_tags().resources(&target.id).tags(tag).dry_run(true);
                    clients.reads.dry_run("CreateTags", vpc_id, async { crate::preflight::dry_run_answer("CreateTags", &target.id, request.send().await) }).await
                }
                _ => None,
            };
            missing.extend(answer);
        }
        missing.dedup();
        Ok(missing)
    }

    async fn read(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let clients = self.clients(context, target).await?;
        match operation.kind.as_str() {
            ASG_SIZES | ASG_MEMBERSHIP | TARGET_REGISTRATION => scaling::read(&clients.autoscaling, &clients.elbv2, &target.id, operation).await,
            _ => operations::read(&clients, target, operation).await,
        }
    }

    fn bind(&self, context: &CallContext, operation: &Operation, earlier: &[(Operation, Value)]) -> Operation {
        let group_id = |op_id: &str| {
            earlier.iter().find(|(op, _)| op.id == op_id).and_then(|(_, applied)| applied["id"].as_str().map(str::to_string))
        };
        let mut bound = operation.clone();
        match operation.kind.as_str() {
            INTERFACE_GROUPS => {
                let replace = |value: &Value| match value.as_str() {
                    Some(ISOLATION_PLACEHOLDER) => group_id(ISOLATION_OP).map(Value::from).unwrap_or(value.clone()),
                    Some(ALLOW_ALL_PLACEHOLDER) => group_id(ALLOW_ALL_OP).map(Value::from).unwrap_or(value.clone()),
                    _ => value.clone(),
                };
                let groups: Vec<Value> = operation.desired["groups"].as_array().into_iter().flatten().map(replace).collect();
                bound.desired = json!({ "groups": groups, "via": replace(&operation.desired["via"]) });
            }
            TAGS => {
                if let Value::Object(desired) = &mut bound.desired {
                    for value in desired.values_mut() {
                        if value.as_str() == Some(RUN_PLACEHOLDER) {
                            *value = Value::from(context.run_id.clone());
                        }
                    }
                }
            }
            _ => {}
        }
        bound
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        match operation.kind.as_str() {
            // Finding or creating the group is idempotent, so before apply any state will do.
            // After apply, a group that is gone has been cleaned up already.
            ENSURE_GROUP => match applied {
                None => Assessment::Prior,
                Some(_) if current["id"].is_null() => Assessment::Prior,
                Some(_) => Assessment::Applied,
            },
            INTERFACE_GROUPS => operations::assess_interface(operation, current, applied),
            // The group's desired capacity follows the instance in and out of Standby, so only
            // the minimum and maximum tell whether someone else changed the sizes.
            ASG_SIZES => {
                let bounds = |v: &Value| (v["min"].clone(), v["max"].clone());
                if bounds(current) == bounds(&operation.prior) {
                    Assessment::Prior
                } else if bounds(current) == bounds(applied.unwrap_or(&operation.desired)) {
                    Assessment::Applied
                } else {
                    Assessment::Diverged { detail: format!("the sizes of Auto Scaling group {} are now {current}", operation.subject) }
                }
            }
            TARGET_REGISTRATION => {
                let registered = current["registered"] == true;
                if registered { Assessment::Prior } else { Assessment::Applied }
            }
            // Before the run binds its id, any run's tag counts as the one this run would set.
            TAGS if applied.is_none() && operation.desired[tags::RUN] == RUN_PLACEHOLDER => {
                let same_incident = operation.desired.get(tags::INCIDENT).is_none_or(|incident| current[tags::INCIDENT] == *incident);
                if current == &operation.prior {
                    Assessment::Prior
                } else if same_incident && current[tags::RUN].is_string() {
                    Assessment::Applied
                } else {
                    operation.assess_exact(current, applied)
                }
            }
            _ => operation.assess_exact(current, applied),
        }
    }

    fn reconcile(&self, operation: &Operation, current: &Value) -> Reconciliation {
        match operation.kind.as_str() {
            // Creating the group and setting its rules are separate calls: a group that exists may
            // still have the default egress rule of a new group, so resume sets its rules again.
            ENSURE_GROUP => match current["id"].as_str() {
                None => Reconciliation::NotApplied,
                Some(id) => Reconciliation::Partly { detail: format!("security group {id} exists; its rules are checked again on resume") },
            },
            INTERFACE_GROUPS => operations::reconcile_interface(operation, current),
            _ => operation.reconcile_from(self.assess(operation, current, None), current),
        }
    }

    async fn apply(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let clients = self.clients(context, target).await?;
        match operation.kind.as_str() {
            ASG_SIZES | ASG_MEMBERSHIP | TARGET_REGISTRATION => scaling::apply(&clients.autoscaling, &clients.elbv2, &target.id, operation).await,
            ENSURE_GROUP => operations::apply_ensure_group(&clients, operation).await,
            INTERFACE_GROUPS => operations::apply_interface(&clients.ec2, operation).await,
            PROTECTION => operations::apply_protection(&clients.ec2, &target.id, &operation.desired).await,
            TAGS => operations::apply_tags(&clients.ec2, &target.id, &operation.prior, &operation.desired).await,
            other => Err(unknown_operation(other)),
        }
    }

    async fn revert(&self, context: &CallContext, target: &Target, operation: &Operation, applied: &Value) -> Result<Vec<String>, ActionError> {
        let clients = self.clients(context, target).await?;
        match operation.kind.as_str() {
            ASG_SIZES | ASG_MEMBERSHIP | TARGET_REGISTRATION => scaling::revert(&clients.autoscaling, &clients.elbv2, &target.id, operation).await.map(|()| Vec::new()),
            ENSURE_GROUP => operations::revert_ensure_group(&clients, applied).await,
            INTERFACE_GROUPS => operations::set_interface_groups(&clients.ec2, &operation.subject, &operation.prior["groups"]).await.map(|()| Vec::new()),
            PROTECTION => operations::apply_protection(&clients.ec2, &target.id, &operation.prior).await.map(|_| Vec::new()),
            TAGS => operations::apply_tags(&clients.ec2, &target.id, applied, &operation.prior).await.map(|_| Vec::new()),
            other => Err(unknown_operation(other)),
        }
    }
}

fn unknown_operation(kind: &str) -> ActionError {
    ActionError::new(
        ErrorKind::Invalid,
        format!("operation kind {kind} is not one of aws.ec2.instance isolate's: was the journal written by another contain version?"),
    )
}
