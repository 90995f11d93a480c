use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_types::app_name::AppName;
use aws_types::region::Region;
use aws_credential_types::provider::SharedCredentialsProvider;
use contain_core::{ActionError, CallContext, ErrorKind, Mode, Target};
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
    pub(crate) sso: aws_sdk_ssoadmin::Client,
    /// The reads the run's targets share.
    pub(crate) reads: crate::reads::SharedReads,
    /// The IAM principal of these clients' credentials, read once for the permission pre-flight.
    principal: OnceCell<String>,
}

impl Clients {
    /// Returns the IAM ARN that SimulatePrincipalPolicy checks for these clients' credentials,
    /// read with GetCallerIdentity on first use.
    pub(crate) async fn principal(&self) -> Result<&str, ActionError> {
        let principal = self
            .principal
            .get_or_try_init(|| async {
                let caller = self.sts.get_caller_identity().send().await.map_err(|e| crate::errors::map_sdk_error("GetCallerIdentity", "the configured credentials", e))?;
                Ok::<_, ActionError>(crate::preflight::principal_arn(caller.arn().unwrap_or_default()))
            })
            .await?;
        Ok(principal)
    }
}

/// Builds clients from the standard AWS configuration, one set per mode, run and region.
///
/// Clients for [`Mode::Plan`] carry the plan-mode guard, so no action needs to remember whether
/// it may write.
#[derive(Default)]
pub(crate) struct ClientFactory {
    base: OnceCell<SdkConfig>,
    /// The role to assume per account id, for targets in other accounts.
    accounts: BTreeMap<String, AccountRole>,
    /// The account of the configured credentials, read once when a target names an account.
    caller_account: OnceCell<Option<String>>,
    cache: Mutex<HashMap<(Mode, String, String, Option<String>), Arc<Clients>>>,
    /// The maximum time of one attempt of a call while applying. `None` keeps the SDK's default.
    attempt_timeout: Option<Duration>,
}

/// The role contain assumes in another account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRole {
    pub role_arn: String,
    /// Sent as `ExternalId` when the role's trust policy requires one.
    pub external_id: Option<String>,
}

impl ClientFactory {
    pub(crate) fn with_accounts(accounts: BTreeMap<String, AccountRole>, attempt_timeout: Option<Duration>) -> Self {
        ClientFactory { accounts, attempt_timeout, ..ClientFactory::default() }
    }

    /// Returns the clients for a target: in its region and, when its account has a configured role, with
    /// that role's credentials.
    pub(crate) async fn for_target(&self, context: &CallContext, target: &Target) -> Result<Arc<Clients>, ActionError> {
        self.clients_in(context, target.region.as_deref(), target.account.as_deref()).await
    }

    async fn base(&self) -> &SdkConfig {
        self.base
            .get_or_init(|| async {
                let app_name = AppName::new("contain").expect("`contain` is a valid app name");
                aws_config::defaults(BehaviorVersion::latest()).app_name(app_name).load().await
            })
            .await
    }

    /// Returns the clients for a call context, in `region` or else the configured region.
    pub(crate) async fn clients(&self, context: &CallContext, region: Option<&str>) -> Result<Arc<Clients>, ActionError> {
        self.clients_in(context, region, None).await
    }

    async fn clients_in(&self, context: &CallContext, region: Option<&str>, account: Option<&str>) -> Result<Arc<Clients>, ActionError> {
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

        let role = account.and_then(|a| self.accounts.get(a));
        if let (Some(account), None) = (account, role) {
            self.check_own_account(base, account).await?;
        }
        let key = (context.mode, context.run_id.clone(), region.clone(), role.map(|_| account.unwrap_or_default().to_string()));
        if let Some(clients) = self.cache.lock().expect("client cache lock").get(&key) {
            return Ok(clients.clone());
        }
        let assumed;
        let base = match role {
            Some(role) => {
                assumed = assume_role(base, role, context).await;
                tracing::debug!(role_arn = %role.role_arn, account = account.unwrap_or_default(), "using the configured role for the account");
                &assumed
            }
            None => base,
        };

        tracing::debug!(
            endpoint = base.endpoint_url().unwrap_or("the AWS default for the region"),
            region = %region,
            mode = ?context.mode,
            run_id = %context.run_id,
            "building AWS clients"
        );
        let clients = Arc::new(build(base, context, &region, self.attempt_timeout));
        self.cache.lock().expect("client cache lock").insert(key, clients.clone());
        Ok(clients)
    }
}

impl ClientFactory {
    /// Fails when a target's account has no configured role and is not the credentials' own,
    /// because every call would then go to the wrong account.
    async fn check_own_account(&self, base: &SdkConfig, account: &str) -> Result<(), ActionError> {
        let caller = self
            .caller_account
            .get_or_init(|| async {
                let sts = aws_sdk_sts::Client::new(base);
                sts.get_caller_identity().send().await.ok().and_then(|identity| identity.account().map(str::to_string))
            })
            .await;
        match caller {
            Some(own) if own != account => Err(ActionError::new(
                ErrorKind::Precondition,
                format!(
                    "the target is in account {account}, but the credentials are for account {own} and the configuration names no role for {account}: add [aws.accounts.{account}] with its role_arn, and pass the same configuration to plan, run and rollback"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// Builds a configuration whose credentials come from assuming `role`, with the run id in the session
/// name so that the account's CloudTrail names the run.
///
/// NOTE: the credentials provider sends AssumeRole with its own STS client, which the plan-mode
/// guard does not wrap; AssumeRole changes nothing in the account, so plans send it too.
async fn assume_role(base: &SdkConfig, role: &AccountRole, context: &CallContext) -> SdkConfig {
    let session: String = format!("contain-{}", context.run_id).chars().take(64).collect();
    let mut provider = aws_config::sts::AssumeRoleProvider::builder(&role.role_arn).session_name(session).configure(base);
    if let Some(external_id) = &role.external_id {
        provider = provider.external_id(external_id);
    }
    let provider = provider.build().await;
    base.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build()
}

/// Builds the clients. While applying they make a single attempt per call, because the engine
/// retries a failed change only after checking whether it took effect, and an attempt may last
/// `attempt_timeout` at most. Plans keep the SDK's retries: they only read.
fn build(base: &SdkConfig, context: &CallContext, region: &str, attempt_timeout: Option<Duration>) -> Clients {
    let mut base = base.to_builder();
    if context.mode == Mode::Apply {
        base.set_retry_config(Some(RetryConfig::disabled()));
        if let Some(timeout) = attempt_timeout {
            base.set_timeout_config(Some(TimeoutConfig::builder().operation_attempt_timeout(timeout).build()));
        }
    }
    let base = &base.build();

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
    let mut sso = aws_sdk_ssoadmin::config::Builder::from(base)
        .region(Region::new(region.to_string()))
        .interceptor(RunUserAgent::new(&context.run_id));
    if context.mode == Mode::Plan {
        sso = sso.interceptor(PlanModeGuard);
        ec2 = ec2.interceptor(PlanModeGuard);
        sts = sts.interceptor(PlanModeGuard);
        iam = iam.interceptor(PlanModeGuard);
        autoscaling = autoscaling.interceptor(PlanModeGuard);
        elbv2 = elbv2.interceptor(PlanModeGuard);
    }
    #[cfg(feature = "crash-points")]
    if context.mode == Mode::Apply {
        use crate::crash_point::CrashAfterCall;
        sso = sso.interceptor(CrashAfterCall);
        ec2 = ec2.interceptor(CrashAfterCall);
        sts = sts.interceptor(CrashAfterCall);
        iam = iam.interceptor(CrashAfterCall);
        autoscaling = autoscaling.interceptor(CrashAfterCall);
        elbv2 = elbv2.interceptor(CrashAfterCall);
    }

    let ec2 = aws_sdk_ec2::Client::from_conf(ec2.build());
    let autoscaling = aws_sdk_autoscaling::Client::from_conf(autoscaling.build());
    Clients {
        reads: crate::reads::SharedReads::new(&ec2, &autoscaling),
        ec2,
        sts: aws_sdk_sts::Client::from_conf(sts.build()),
        iam: aws_sdk_iam::Client::from_conf(iam.build()),
        autoscaling,
        elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(elbv2.build()),
        sso: aws_sdk_ssoadmin::Client::from_conf(sso.build()),
        principal: OnceCell::new(),
    }
}
