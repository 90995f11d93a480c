use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Appends `contain/<version> contain-run/<run id>` to the user agent of every request, so that
/// CloudTrail's `userAgent` field shows which contain run made a call.
///
/// The SDK's app name cannot hold a `/`, so the product token is added here. `User-Agent` is not
/// part of the SigV4 signature, so changing it after signing is safe.
#[derive(Debug)]
pub(crate) struct RunUserAgent {
    suffix: String,
}

impl RunUserAgent {
    pub(crate) fn new(run_id: &str) -> Self {
        RunUserAgent { suffix: format!("contain/{} contain-run/{run_id}", env!("CARGO_PKG_VERSION")) }
    }
}

impl Intercept for RunUserAgent {
    fn name(&self) -> &'static str {
        "contain run user agent"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request_mut().headers_mut();
        let value = match headers.get("user-agent") {
            Some(existing) => format!("{existing} {}", self.suffix),
            None => self.suffix.clone(),
        };
        headers.insert("user-agent", value);
        Ok(())
    }
}
