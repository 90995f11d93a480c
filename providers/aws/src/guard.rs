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
const OTHER_READ_ONLY: &[&str] = &[];

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
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Err(Box::new(PlanModeRefusal { service: "unknown".into(), operation: "unknown operation".into() }));
        };
        if is_read_only_operation(metadata.name()) {
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
