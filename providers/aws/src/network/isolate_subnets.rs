//! `isolate` for `aws.ec2.vpc` and `aws.ec2.subnet`: associate the target subnets (every subnet
//! of a VPC) with a deny-all network ACL that contain creates once per VPC.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, ResourceType, RuleAction, Tag, TagSpecification};
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};

use super::acl::{Acl, blast_radius, describe_acl, describe_acls, target_subnets};
use crate::clients::ClientFactory;
use crate::errors::map_sdk_error;
use crate::tags;

const ENSURE_ACL: &str = "ec2.ensure_isolation_acl";
const SUBNET_ACL: &str = "ec2.subnet_acl";
const ACL_OP: &str = "acl:isolation";
const ACL_PLACEHOLDER: &str = "<the isolation network ACL>";
const MANAGED_VALUE: &str = "isolation-acl";

pub(crate) struct IsolateSubnets {
    factory: Arc<ClientFactory>,
    resource_type: &'static str,
}

impl IsolateSubnets {
    pub(crate) fn new(factory: Arc<ClientFactory>, resource_type: &'static str) -> Self {
        IsolateSubnets { factory, resource_type }
    }

    async fn ec2(&self, context: &CallContext, target: &Target) -> Result<Client, ActionError> {
        Ok(self.factory.for_target(context, target).await?.ec2.clone())
    }
}

async fn find_isolation_acl(ec2: &Client, vpc_id: &str) -> Result<Option<Acl>, ActionError> {
    let acls = describe_acls(ec2, Filter::builder().name("vpc-id").values(vpc_id).build(), vpc_id).await?;
    let tagged = describe_acls(ec2, Filter::builder().name(format!("tag:{}", tags::MANAGED)).values(MANAGED_VALUE).build(), vpc_id).await?;
    Ok(acls.into_iter().find(|acl| tagged.iter().any(|t| t.id == acl.id)))
}

/// Reads the subnet's current ACL and association id.
async fn subnet_association(ec2: &Client, subnet_id: &str) -> Result<(String, String), ActionError> {
    let acls = describe_acls(ec2, Filter::builder().name("association.subnet-id").values(subnet_id).build(), subnet_id).await?;
    acls.iter()
        .find_map(|acl| acl.associations.iter().find(|(s, _)| s == subnet_id).map(|(_, association)| (acl.id.clone(), association.clone())))
        .ok_or_else(|| ActionError::new(ErrorKind::NotFound, format!("subnet {subnet_id} has no network ACL association")).with_resource(subnet_id))
}

async fn create_isolation_acl(ec2: &Client, vpc_id: &str) -> Result<String, ActionError> {
    let created = ec2
        .create_network_acl()
        .vpc_id(vpc_id)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::NetworkAcl)
                .tags(Tag::builder().key(tags::MANAGED).value(MANAGED_VALUE).build())
                .tags(Tag::builder().key("Name").value(format!("contain-isolation-{vpc_id}")).build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| map_sdk_error("CreateNetworkAcl", vpc_id, e))?;
    let acl_id = created.network_acl().and_then(|a| a.network_acl_id()).unwrap_or_default().to_string();

    // A new ACL denies everything through its default entries already; explicit deny entries make
    // that visible in the ACL itself.
    for egress in [false, true] {
        for (number, cidr) in [(1, "0.0.0.0/0"), (2, "::/0")] {
            let mut request = ec2.create_network_acl_entry().network_acl_id(&acl_id).rule_number(number).egress(egress).rule_action(RuleAction::Deny).protocol("-1");
            request = if cidr.contains(':') { request.ipv6_cidr_block(cidr) } else { request.cidr_block(cidr) };
            request.send().await.map_err(|e| map_sdk_error("CreateNetworkAclEntry", &acl_id, e))?;
        }
    }
    tracing::info!(acl_id = %acl_id, vpc_id, "created the isolation network ACL");
    Ok(acl_id)
}

#[async_trait]
impl Action for IsolateSubnets {
    fn kind(&self) -> ActionKind {
        ActionKind::Isolate
    }

    fn resource_type(&self) -> &'static str {
        self.resource_type
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        options
            .keys()
            .map(|key| OptionProblem { key: Some(key.clone()), message: format!("unknown option `{key}`: isolate on {} takes no options", self.resource_type) })
            .collect()
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let ec2 = self.ec2(context, target).await?;
        let (vpc_id, subnets) = target_subnets(&ec2, target).await?;
        let isolation = find_isolation_acl(&ec2, &vpc_id).await?;
        let mut current = Map::new();
        for subnet in &subnets {
            current.insert(subnet.clone(), json!(subnet_association(&ec2, subnet).await?.0));
        }
        let (interfaces, instances) = blast_radius(&ec2, &subnets).await?;
        Ok(json!({ "vpc_id": vpc_id, "subnet_acls": current, "isolation_acl": isolation.map(|a| a.id), "interfaces": interfaces, "instances": instances }))
    }

    fn plan(&self, target: &Target, _options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let vpc_id = state["vpc_id"].as_str().unwrap_or_default();
        let isolation = state["isolation_acl"].as_str();
        let subnets = state["subnet_acls"].as_object().cloned().unwrap_or_default();
        let notes = vec![
            format!(
                "blast radius: {} instance(s) and {} network interface(s) in {} subnet(s) lose all network traffic, including established connections (network ACLs are stateless)",
                state["instances"],
                state["interfaces"],
                subnets.len()
            ),
        ];
        let outputs: Map<String, Value> = [("subnets".to_string(), json!(subnets.keys().collect::<Vec<_>>()))].into_iter().collect();

        let pending: Vec<(&String, &Value)> = subnets.iter().filter(|(_, acl)| isolation.is_none_or(|i| acl.as_str() != Some(i))).collect();
        if pending.is_empty() {
            let mut notes = notes;
            notes.insert(0, format!("already isolated: every subnet of {target} uses the isolation network ACL"));
            return Ok(TargetPlan { state: state.clone(), operations: Vec::new(), notes, outputs, uncontainable: None, missing_permissions: Vec::new() });
        }

        let acl_ref = isolation.map(str::to_string).unwrap_or_else(|| ACL_PLACEHOLDER.to_string());
        let mut operations = vec![Operation {
            id: ACL_OP.into(),
            kind: ENSURE_ACL.into(),
            subject: format!("contain-isolation-{vpc_id}"),
            description: match isolation {
                Some(acl) => format!("use the existing isolation network ACL {acl}"),
                None => format!("create a deny-all network ACL in {vpc_id}"),
            },
            prior: json!({ "id": isolation }),
            desired: json!({ "id": acl_ref, "vpc_id": vpc_id }),
            reversible: true,
        }];
        for (subnet, acl) in pending {
            operations.push(Operation {
                id: format!("subnet:{subnet}"),
                kind: SUBNET_ACL.into(),
                subject: subnet.clone(),
                description: format!("associate {subnet} with the isolation network ACL instead of {}", acl.as_str().unwrap_or("?")),
                prior: json!({ "acl": acl }),
                desired: json!({ "acl": acl_ref }),
                reversible: true,
            });
        }
        Ok(TargetPlan { state: state.clone(), operations, notes, outputs, uncontainable: None, missing_permissions: Vec::new() })
    }

    fn bind(&self, _context: &CallContext, operation: &Operation, earlier: &[(Operation, Value)]) -> Operation {
        let mut bound = operation.clone();
        if operation.kind == SUBNET_ACL && operation.desired["acl"] == ACL_PLACEHOLDER {
            if let Some((_, applied)) = earlier.iter().find(|(op, _)| op.id == ACL_OP) {
                bound.desired["acl"] = applied["id"].clone();
            }
        }
        bound
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        match (operation.kind.as_str(), applied) {
            (ENSURE_ACL, None) => Assessment::Prior,
            (ENSURE_ACL, Some(_)) if current["id"].is_null() => Assessment::Prior,
            (ENSURE_ACL, Some(_)) => Assessment::Applied,
            _ => operation.assess_exact(current, applied),
        }
    }

    async fn read(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let ec2 = self.ec2(context, target).await?;
        match operation.kind.as_str() {
            ENSURE_ACL => {
                let vpc_id = operation.desired["vpc_id"].as_str().unwrap_or_default();
                Ok(json!({ "id": find_isolation_acl(&ec2, vpc_id).await?.map(|a| a.id) }))
            }
            _ => Ok(json!({ "acl": subnet_association(&ec2, &operation.subject).await?.0 })),
        }
    }

    async fn apply(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let ec2 = self.ec2(context, target).await?;
        match operation.kind.as_str() {
            ENSURE_ACL => {
                let vpc_id = operation.desired["vpc_id"].as_str().unwrap_or_default();
                match find_isolation_acl(&ec2, vpc_id).await? {
                    Some(acl) => Ok(json!({ "id": acl.id, "created": false })),
                    None => Ok(json!({ "id": create_isolation_acl(&ec2, vpc_id).await?, "created": true })),
                }
            }
            _ => {
                let acl = operation.desired["acl"].as_str().filter(|a| a.starts_with("acl-")).ok_or_else(|| {
                    ActionError::new(ErrorKind::Invalid, format!("operation {} was not bound to the isolation ACL's id", operation.id))
                })?;
                replace_association(&ec2, &operation.subject, acl).await?;
                Ok(json!({ "acl": acl }))
            }
        }
    }

    async fn revert(&self, context: &CallContext, target: &Target, operation: &Operation, applied: &Value) -> Result<Vec<String>, ActionError> {
        let ec2 = self.ec2(context, target).await?;
        match operation.kind.as_str() {
            ENSURE_ACL => {
                let Some(acl_id) = applied["id"].as_str() else {
                    return Ok(Vec::new());
                };
                match describe_acl(&ec2, acl_id).await? {
                    None => Ok(Vec::new()),
                    Some(acl) if !acl.associations.is_empty() => Ok(vec![format!(
                        "kept network ACL {acl_id}, which subnets {} still use; it is deleted when the run that isolated them is rolled back",
                        acl.associations.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(", ")
                    )]),
                    Some(_) => {
                        ec2.delete_network_acl().network_acl_id(acl_id).send().await.map_err(|e| map_sdk_error("DeleteNetworkAcl", acl_id, e))?;
                        Ok(Vec::new())
                    }
                }
            }
            _ => {
                let prior = operation.prior["acl"].as_str().unwrap_or_default();
                replace_association(&ec2, &operation.subject, prior).await?;
                Ok(Vec::new())
            }
        }
    }
}

/// Associates a subnet with an ACL. The association id changes with every association, so the
/// current one is read first.
async fn replace_association(ec2: &Client, subnet_id: &str, acl_id: &str) -> Result<(), ActionError> {
    let (current, association) = subnet_association(ec2, subnet_id).await?;
    if current == acl_id {
        return Ok(());
    }
    ec2.replace_network_acl_association()
        .association_id(association)
        .network_acl_id(acl_id)
        .send()
        .await
        .map_err(|e| map_sdk_error("ReplaceNetworkAclAssociation", subnet_id, e))?;
    Ok(())
}
