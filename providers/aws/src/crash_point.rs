//! The cloud-call crash point of the crash tests (see `contain_core::crash`): counts every
//! request that is not a read once its response arrives, and lets the crash point kill the process before the
//! SDK returns the response, so the change is made but its outcome is never journaled.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use contain_core::crash::{CrashPoint, reached};

use crate::guard::is_read_only_operation;

#[derive(Debug)]
pub(crate) struct CrashAfterCall;

impl Intercept for CrashAfterCall {
    fn name(&self) -> &'static str {
        "contain crash point after a changing call"
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let changing = cfg.load::<Metadata>().is_some_and(|metadata| !is_read_only_operation(metadata.name()));
        if changing {
            reached(CrashPoint::CloudCall);
        }
        Ok(())
    }
}
