//! The API rate-limit buckets that contain's calls draw on, with the limits AWS publishes, for
//! the engine's pacing.
//!
//! EC2 throttles per account and Region, with a token bucket per API or group of APIs, as the
//! EC2 developer guide's page "Request throttling for the Amazon EC2 API" describes. The figures
//! below are the published defaults. Describes take a burst of 100 and refill 20 per second.
//! Mutating actions and the security group rule changes take 50 and 5 each.
//! ModifyNetworkInterfaceAttribute has its own 100 and 5, and CreateTags 100 and 10.
//!
//! NOTE: IAM, IAM Identity Center, Auto Scaling and Elastic Load Balancing publish no bucket
//! figures. Their limits below are estimates, low on purpose; the engine slows a bucket down
//! further when the cloud throttles it, and `[pacing]` in the configuration replaces them.

use contain_core::{CallKind, Operation, RateLimit};

const fn limit(burst: f64, per_second: f64) -> RateLimit {
    RateLimit { burst, per_second }
}

/// Returns the bucket a call for an operation of `kind` draws on.
pub(crate) fn bucket(kind: &str, call: CallKind) -> Option<(&'static str, RateLimit)> {
    let service = kind.split('.').next().unwrap_or_default();
    if call == CallKind::Read {
        return match service {
            "ec2" => Some(("ec2:describe", limit(100.0, 20.0))),
            "iam" => Some(("iam:read", limit(20.0, 10.0))),
            "sso" => Some(("sso:read", limit(20.0, 10.0))),
            "autoscaling" => Some(("autoscaling:read", limit(20.0, 10.0))),
            "elbv2" => Some(("elbv2:read", limit(20.0, 10.0))),
            _ => None,
        };
    }
    match kind {
        "ec2.interface_groups" => Some(("ec2:ModifyNetworkInterfaceAttribute", limit(100.0, 5.0))),
        "ec2.ensure_group" | "ec2.group_range" | "ec2.group_narrow" => Some(("ec2:resource-intensive", limit(50.0, 5.0))),
        "ec2.instance_tags" => Some(("ec2:CreateTags", limit(100.0, 10.0))),
        _ => match service {
            "ec2" => Some(("ec2:mutating", limit(50.0, 5.0))),
            "iam" => Some(("iam:mutating", limit(10.0, 5.0))),
            "sso" => Some(("sso:mutating", limit(10.0, 5.0))),
            "autoscaling" => Some(("autoscaling:mutating", limit(10.0, 5.0))),
            "elbv2" => Some(("elbv2:mutating", limit(10.0, 5.0))),
            _ => None,
        },
    }
}

/// Returns how many EC2 calls one engine call for `operation` makes, so that the engine paces
/// each of them. Reads of instances, interfaces and groups are batched with other targets' and
/// count as one.
pub(crate) fn cost(operation: &Operation, call: CallKind) -> f64 {
    match (operation.kind.as_str(), call) {
        // Through the allow-all group, then into the isolation group.
        ("ec2.interface_groups" | "ec2.instance_groups", CallKind::Change) if !operation.desired["via"].is_null() => 2.0,
        // One call per attribute: termination, stop, shutdown behaviour.
        ("ec2.instance_protection", CallKind::Read) => 3.0,
        ("ec2.instance_protection", CallKind::Change) => count_keys(&operation.desired),
        ("ec2.instance_protection", CallKind::Revert) => count_keys(&operation.prior),
        _ => 1.0,
    }
}

fn count_keys(value: &serde_json::Value) -> f64 {
    value.as_object().map_or(1.0, |m| m.len().max(1) as f64)
}

/// Names the bucket that inspecting a target draws on, and the calls one inspection makes, where
/// a call shared with other targets counts as the target's share of it.
pub(crate) fn inspect_bucket(resource_type: &str) -> Option<(&'static str, RateLimit, f64)> {
    match resource_type {
        // The instance, its interfaces and groups are read in calls of up to 200 ids, shared
        // with other targets. The protection attributes are read at apply.
        crate::target::INSTANCE => Some(("ec2:describe", limit(100.0, 20.0), 0.02)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_by_operation_kind() {
        assert_eq!(bucket("ec2.interface_groups", CallKind::Change).map(|b| b.0), Some("ec2:ModifyNetworkInterfaceAttribute"));
        assert_eq!(bucket("ec2.interface_groups", CallKind::Read).map(|b| b.0), Some("ec2:describe"));
        assert_eq!(bucket("ec2.group_range", CallKind::Revert).map(|b| b.1), Some(limit(50.0, 5.0)));
        assert_eq!(bucket("ec2.acl_entry", CallKind::Change).map(|b| b.0), Some("ec2:mutating"));
        assert_eq!(bucket("iam.inline_policy", CallKind::Change).map(|b| b.0), Some("iam:mutating"));
        assert_eq!(bucket("other.kind", CallKind::Change), None);
    }
}
