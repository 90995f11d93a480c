//! The API buckets of ARM and Microsoft Graph, for the engine's pacing.
//!
//! ARM limits each subscription, principal and region: reads 250 burst with 25 per second,
//! writes 200 with 10 per second. Graph allows identity writes at about 3,000 per 150 s per
//! application and tenant (20 per second). Its identity reads draw on a resource-unit quota per
//! application and tenant: 3,500, 5,000 or 8,000 units per 10 s by the tenant's size. A GET of a
//! user costs one unit, so the read bucket takes the smallest tenant's quota.

use contain_core::{CallKind, RateLimit};

pub(crate) fn bucket(operation_kind: &str, call: CallKind) -> Option<(&'static str, RateLimit)> {
    let graph = operation_kind.starts_with("entra.");
    Some(match (graph, call) {
        (false, CallKind::Read) => ("arm:reads", RateLimit { burst: 250.0, per_second: 25.0 }),
        (false, _) => ("arm:writes", RateLimit { burst: 200.0, per_second: 10.0 }),
        (true, CallKind::Read) => ("graph:reads", RateLimit { burst: 3500.0, per_second: 350.0 }),
        (true, _) => ("graph:identity-writes", RateLimit { burst: 3000.0, per_second: 20.0 }),
    })
}
