//! The one place that keeps a plan from changing anything: every client built for a plan carries
//! [`PlanModeGuard`], which refuses each operation that is not a read before it is sent.

use std::fmt;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Read-only operations whose names do not start with `Describe`, `Get` or `List`.
/// SimulatePrincipalPolicy evaluates policies and changes nothing.
const OTHER_READ_ONLY: &[&str] = &["SimulatePrincipalPolicy"];

/// EC2 operations a plan may send with `DryRun=true`, for the permission pre-flight: EC2 checks
/// the caller's permission and answers `DryRunOperation` without making the change.
///
/// The network ACL operations are left off on purpose: moto 5.2.5 ignores `DryRun` on every
/// network ACL call and makes the change, so a pre-flight there would change the test estate.
pub const DRY_RUN_OPERATIONS: &[&str] = &[
    "ModifyNetworkInterfaceAttribute",
    "ModifyInstanceAttribute",
    "CreateSecurityGroup",
    "CreateTags",
    "CreateSnapshot",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
];

/// True when the request is one of [`DRY_RUN_OPERATIONS`] and carries `DryRun=true`.
fn is_dry_run(operation: &str, input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> bool {
    use aws_sdk_ec2::operation as ec2;
    let flag = match operation {
        "ModifyNetworkInterfaceAttribute" => input.downcast_ref::<ec2::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeInput>().and_then(|i| i.dry_run()),
        "ModifyInstanceAttribute" => input.downcast_ref::<ec2::modify_instance_attribute::ModifyInstanceAttributeInput>().and_then(|i| i.dry_run()),
        "CreateSecurityGroup" => input.downcast_ref::<ec2::create_security_group::CreateSecurityGroupInput>().and_then(|i| i.dry_run()),
        "CreateTags" => input.downcast_ref::<ec2::create_tags::CreateTagsInput>().and_then(|i| i.dry_run()),
        "CreateSnapshot" => input.downcast_ref::<ec2::create_snapshot::CreateSnapshotInput>().and_then(|i| i.dry_run()),
        "RevokeSecurityGroupIngress" => input.downcast_ref::<ec2::revoke_security_group_ingress::RevokeSecurityGroupIngressInput>().and_then(|i| i.dry_run()),
        "RevokeSecurityGroupEgress" => input.downcast_ref::<ec2::revoke_security_group_egress::RevokeSecurityGroupEgressInput>().and_then(|i| i.dry_run()),
        _ => None,
    };
    flag == Some(true)
}

/// True when an AWS operation only reads.
pub fn is_read_only_operation(operation: &str) -> bool {
    ["Describe", "Get", "List"].iter().any(|prefix| operation.starts_with(prefix)) || OTHER_READ_ONLY.contains(&operation)
}

/// The error a plan-mode client returns instead of sending a request that is not a read.
#[derive(Debug)]
pub(crate) struct PlanModeRefusal {
    pub(crate) service: String,
    pub(crate) operation: String,
}

impl fmt::Display for PlanModeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused to send {} {} while planning: a plan sends read-only requests only",
            self.service, self.operation
        )
    }
}

impl std::error::Error for PlanModeRefusal {}

#[derive(Debug)]
pub(crate) struct PlanModeGuard;

impl Intercept for PlanModeGuard {
    fn name(&self) -> &'static str {
        "contain plan-mode guard"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Err(Box::new(PlanModeRefusal { service: "unknown".into(), operation: "unknown operation".into() }));
        };
        if is_read_only_operation(metadata.name()) {
            return Ok(());
        }
        if metadata.service() == "EC2" && DRY_RUN_OPERATIONS.contains(&metadata.name()) && is_dry_run(metadata.name(), context.input()) {
            return Ok(());
        }
        Err(Box::new(PlanModeRefusal { service: metadata.service().to_string(), operation: metadata.name().to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_read_only() {
        for operation in ["DescribeInstances", "GetCallerIdentity", "ListRoles", "DescribeInstanceAttribute"] {
            assert!(is_read_only_operation(operation), "{operation}");
        }
    }

    #[test]
    fn writes_are_not_read_only() {
        for operation in ["ModifyNetworkInterfaceAttribute", "CreateSecurityGroup", "CreateTags", "DeleteTags", "RevokeSecurityGroupEgress"] {
            assert!(!is_read_only_operation(operation), "{operation}");
        }
    }
}
