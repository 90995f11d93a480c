use std::sync::Arc;

use async_trait::async_trait;
use contain_core::{Action, ActionError, ActionKind, CallContext, CallerIdentity, Provider, ResourceTypeInfo, Target, TargetParseError};

use crate::clients::{AccountRole, ClientFactory};
use crate::errors::map_sdk_error;
use crate::iam::{
    DisableFederation, DisablePermissionSet, IDENTITY_PROVIDER, PERMISSION_SET, ROLE, RevokeRole, RevokeUser, USER, parse_identity_provider, parse_permission_set, parse_role, parse_user,
};
use crate::isolate_instance::IsolateInstance;
use crate::snapshot::SnapshotVolumes;
use crate::network::{BlockAddresses, BlockInGroup, IsolateSubnets, SECURITY_GROUP, SUBNET, VPC, parse_ec2_resource};
use crate::target::{INSTANCE, parse_instance};

/// The AWS provider. Credentials and region come from the standard AWS configuration when the
/// first client is built.
pub struct AwsProvider {
    factory: Arc<ClientFactory>,
    isolate_instance: Arc<IsolateInstance>,
    revoke_user: Arc<RevokeUser>,
    revoke_role: Arc<RevokeRole>,
    disable_federation: Arc<DisableFederation>,
    block_vpc: Arc<BlockAddresses>,
    block_subnet: Arc<BlockAddresses>,
    isolate_vpc: Arc<IsolateSubnets>,
    isolate_subnet: Arc<IsolateSubnets>,
    block_group: Arc<BlockInGroup>,
    snapshot: Arc<SnapshotVolumes>,
    disable_permission_set: Arc<DisablePermissionSet>,
}

impl AwsProvider {
    pub fn new() -> Self {
        Self::with_accounts(std::collections::BTreeMap::new(), None)
    }

    /// Creates a provider that assumes the given role for targets in each listed account, and gives one
    /// attempt of a call at most `attempt_timeout` while applying.
    pub fn with_accounts(accounts: std::collections::BTreeMap<String, AccountRole>, attempt_timeout: Option<std::time::Duration>) -> Self {
        let factory = Arc::new(ClientFactory::with_accounts(accounts, attempt_timeout));
        AwsProvider {
            isolate_instance: Arc::new(IsolateInstance::new(factory.clone())),
            revoke_user: Arc::new(RevokeUser::new(factory.clone())),
            revoke_role: Arc::new(RevokeRole::new(factory.clone())),
            disable_federation: Arc::new(DisableFederation::new(factory.clone())),
            block_vpc: Arc::new(BlockAddresses::new(factory.clone(), VPC)),
            block_subnet: Arc::new(BlockAddresses::new(factory.clone(), SUBNET)),
            isolate_vpc: Arc::new(IsolateSubnets::new(factory.clone(), VPC)),
            isolate_subnet: Arc::new(IsolateSubnets::new(factory.clone(), SUBNET)),
            block_group: Arc::new(BlockInGroup::new(factory.clone())),
            snapshot: Arc::new(SnapshotVolumes::new(factory.clone())),
            disable_permission_set: Arc::new(DisablePermissionSet::new(factory.clone())),
            factory,
        }
    }
}

impl Default for AwsProvider {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn rate_bucket(&self, operation_kind: &str, call: contain_core::CallKind) -> Option<(&'static str, contain_core::RateLimit)> {
        crate::pacing::bucket(operation_kind, call)
    }

    fn call_cost(&self, operation: &contain_core::Operation, call: contain_core::CallKind) -> f64 {
        crate::pacing::cost(operation, call)
    }

    fn inspect_bucket(&self, resource_type: &str) -> Option<(&'static str, contain_core::RateLimit, f64)> {
        crate::pacing::inspect_bucket(resource_type)
    }

    fn resource_types(&self) -> Vec<ResourceTypeInfo> {
        vec![
            ResourceTypeInfo { name: INSTANCE, expected: "an instance id (i-0123456789abcdef0) or an instance ARN", actions: vec![ActionKind::Isolate, ActionKind::Snapshot] },
            ResourceTypeInfo { name: USER, expected: "an IAM user name or user ARN", actions: vec![ActionKind::Revoke] },
            ResourceTypeInfo { name: ROLE, expected: "an IAM role name, role ARN or instance profile ARN", actions: vec![ActionKind::Revoke] },
            ResourceTypeInfo { name: IDENTITY_PROVIDER, expected: "an IAM SAML or OIDC provider ARN", actions: vec![ActionKind::DisableSso] },
            ResourceTypeInfo { name: VPC, expected: "a VPC id (vpc-…) or ARN", actions: vec![ActionKind::Isolate, ActionKind::Block] },
            ResourceTypeInfo { name: SUBNET, expected: "a subnet id (subnet-…) or ARN", actions: vec![ActionKind::Isolate, ActionKind::Block] },
            ResourceTypeInfo { name: PERMISSION_SET, expected: "an IAM Identity Center permission set ARN", actions: vec![ActionKind::DisableSso] },
            ResourceTypeInfo { name: SECURITY_GROUP, expected: "a security group id (sg-…) or ARN", actions: vec![ActionKind::Block] },
        ]
    }

    fn parse_target(&self, resource_type: &str, value: &str) -> Result<Target, TargetParseError> {
        match resource_type {
            INSTANCE => parse_instance(value),
            USER => parse_user(value),
            ROLE => parse_role(value),
            IDENTITY_PROVIDER => parse_identity_provider(value),
            PERMISSION_SET => parse_permission_set(value),
            VPC | SUBNET | SECURITY_GROUP => parse_ec2_resource(resource_type, value),
            other => Err(TargetParseError {
                resource_type: other.to_string(),
                value: value.to_string(),
                expected: format!("a resource type the AWS provider handles ({INSTANCE})"),
            }),
        }
    }

    fn action(&self, kind: ActionKind, resource_type: &str) -> Option<Arc<dyn Action>> {
        match (kind, resource_type) {
            (ActionKind::Isolate, INSTANCE) => Some(self.isolate_instance.clone()),
            (ActionKind::Snapshot, INSTANCE) => Some(self.snapshot.clone()),
            (ActionKind::Revoke, USER) => Some(self.revoke_user.clone()),
            (ActionKind::Revoke, ROLE) => Some(self.revoke_role.clone()),
            (ActionKind::DisableSso, IDENTITY_PROVIDER) => Some(self.disable_federation.clone()),
            (ActionKind::DisableSso, PERMISSION_SET) => Some(self.disable_permission_set.clone()),
            (ActionKind::Block, VPC) => Some(self.block_vpc.clone()),
            (ActionKind::Block, SUBNET) => Some(self.block_subnet.clone()),
            (ActionKind::Isolate, VPC) => Some(self.isolate_vpc.clone()),
            (ActionKind::Isolate, SUBNET) => Some(self.isolate_subnet.clone()),
            (ActionKind::Block, SECURITY_GROUP) => Some(self.block_group.clone()),
            _ => None,
        }
    }

    fn check_selector(&self, resource_type: &str, filters: &serde_json::Map<String, serde_json::Value>) -> Vec<contain_core::OptionProblem> {
        match resource_type {
            INSTANCE => crate::select::check_instance_selector(filters),
            other => vec![contain_core::OptionProblem { key: None, message: format!("{other} targets cannot be chosen by a selector: name them instead") }],
        }
    }

    async fn select(&self, context: &CallContext, resource_type: &str, filters: &serde_json::Map<String, serde_json::Value>) -> Result<Vec<Target>, ActionError> {
        if resource_type != INSTANCE {
            return Err(ActionError::new(contain_core::ErrorKind::Invalid, format!("{resource_type} targets cannot be chosen by a selector")));
        }
        let clients = self.factory.clients(context, None).await?;
        crate::select::select_instances(&clients.ec2, filters).await
    }

    fn own_resources(&self, identity: &CallerIdentity) -> Vec<Target> {
        own_resources(&identity.principal)
    }

    async fn caller_identity(&self, context: &CallContext) -> Result<CallerIdentity, ActionError> {
        let clients = self.factory.clients(context, None).await?;
        let identity = clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| map_sdk_error("GetCallerIdentity", "the configured credentials", e))?;
        Ok(CallerIdentity {
            provider: "aws".to_string(),
            account: identity.account().unwrap_or_default().to_string(),
            principal: identity.arn().unwrap_or_default().to_string(),
        })
    }
}

/// Returns the IAM user or role behind a caller ARN: `arn:aws:iam::ACCOUNT:user/PATH/NAME`, or
/// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
fn own_resources(principal: &str) -> Vec<Target> {
    let fields: Vec<&str> = principal.splitn(6, ':').collect();
    let [_, _, service, _, account, resource] = fields.as_slice() else {
        return Vec::new();
    };
    let own = |resource_type: &str, id: &str| vec![Target { resource_type: resource_type.into(), id: id.into(), region: None, account: Some(account.to_string()) }];
    match (*service, resource.split('/').collect::<Vec<_>>().as_slice()) {
        ("iam", ["user", .., name]) => own(crate::iam::USER, name),
        ("sts", ["assumed-role", role, _session]) => own(crate::iam::ROLE, role),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_resources_of_principals() {
        let user = own_resources("arn:aws:iam::123456789012:user/ops/alice");
        assert_eq!(user[0].resource_type, "aws.iam.user");
        assert_eq!(user[0].id, "alice");
        let role = own_resources("arn:aws:sts::123456789012:assumed-role/responder/session-1");
        assert_eq!((role[0].resource_type.as_str(), role[0].id.as_str(), role[0].account.as_deref()), ("aws.iam.role", "responder", Some("123456789012")));
        assert!(own_resources("arn:aws:iam::123456789012:root").is_empty());
    }
}
