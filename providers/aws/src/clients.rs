use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_types::app_name::AppName;
use aws_types::region::Region;
use contain_core::{ActionError, CallContext, ErrorKind, Mode};
use tokio::sync::OnceCell;

use crate::guard::PlanModeGuard;
use crate::user_agent::RunUserAgent;

/// The SDK clients of one run (or plan) in one region.
#[derive(Debug)]
pub(crate) struct Clients {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) autoscaling: aws_sdk_autoscaling::Client,
    pub(crate) elbv2: aws_sdk_elasticloadbalancingv2::Client,
}

/// Builds clients from the standard AWS configuration, one set per mode, run and region.
///
/// Clients for [`Mode::Plan`] carry the plan-mode guard, so no action needs to remember whether
/// it may write.
#[derive(Default)]
pub(crate) struct ClientFactory {
    base: OnceCell<SdkConfig>,
    cache: Mutex<HashMap<(Mode, String, String), Arc<Clients>>>,
}

impl ClientFactory {
    async fn base(&self) -> &SdkConfig {
        self.base
            .get_or_init(|| async {
                let app_name = AppName::new("contain").expect("`contain` is a valid app name");
                aws_config::defaults(BehaviorVersion::latest()).app_name(app_name).load().await
            })
            .await
    }

    /// The clients for a call context, in `region` or else the configured region.
    pub(crate) async fn clients(&self, context: &CallContext, region: Option<&str>) -> Result<Arc<Clients>, ActionError> {
        let base = self.base().await;
        let region = match region.map(str::to_string).or_else(|| base.region().map(|r| r.to_string())) {
            Some(region) => region,
            None => {
                return Err(ActionError::new(
                    ErrorKind::Invalid,
                    "no AWS region is configured: set AWS_REGION or a profile region, or name the instance by its ARN",
                ));
            }
        };

        let key = (context.mode, context.run_id.clone(), region.clone());
        if let Some(clients) = self.cache.lock().expect("client cache lock").get(&key) {
            return Ok(clients.clone());
        }

        tracing::debug!(
            endpoint = base.endpoint_url().unwrap_or("the AWS default for the region"),
            region = %region,
            mode = ?context.mode,
            run_id = %context.run_id,
            "building AWS clients"
        );
        let clients = Arc::new(build(base, context, &region));
        self.cache.lock().expect("client cache lock").insert(key, clients.clone());
        Ok(clients)
    }
}

fn build(base: &SdkConfig, context: &CallContext, region: &str) -> Clients {
    let mut ec2 = aws_sdk_ec2::config::Builder::from(base)
        .region(Region::new(region.to_string()))
        .interceptor(RunUserAgent::new(&context.run_id));
    let mut sts = aws_sdk_sts::config::Builder::from(base)
        .region(Region::new(region.to_string()))
        .interceptor(RunUserAgent::new(&context.run_id));
    let mut iam = aws_sdk_iam::config::Builder::from(base)
        .region(Region::new(region.to_string()))
        .interceptor(RunUserAgent::new(&context.run_id));
    let mut autoscaling = aws_sdk_autoscaling::config::Builder::from(base)
        .region(Region::new(region.to_string()))
        .interceptor(RunUserAgent::new(&context.run_id));
    let mut elbv2 = aws_sdk_elasticloadbalancingv2::config::Builder::from(base)
        .region(Region::new(region.to_string()))
        .interceptor(RunUserAgent::new(&context.run_id));
    if context.mode == Mode::Plan {
        ec2 = ec2.interceptor(PlanModeGuard);
        sts = sts.interceptor(PlanModeGuard);
        iam = iam.interceptor(PlanModeGuard);
        autoscaling = autoscaling.interceptor(PlanModeGuard);
        elbv2 = elbv2.interceptor(PlanModeGuard);
    }

    Clients {
        ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
        sts: aws_sdk_sts::Client::from_conf(sts.build()),
        iam: aws_sdk_iam::Client::from_conf(iam.build()),
        autoscaling: aws_sdk_autoscaling::Client::from_conf(autoscaling.build()),
        elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(elbv2.build()),
    }
}
