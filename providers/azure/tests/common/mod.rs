//! The harness of the Azure conformance suite. It starts a fake ARM, Graph and token server on
//! 127.0.0.1 and points the provider at it through the documented environment variables. Then it
//! drives the steps the engine takes (inspect, plan, read, apply, revert) in the engine's order.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use contain_azure::{ARM_ENDPOINT_VAR, AUTHORITY_HOST_VAR, AzureProvider, AzureSettings, GRAPH_ENDPOINT_VAR};
use contain_azure_fake::{FakeAzure, RecordedRequest, refuse_real_endpoint};
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, Mode, Operation, Provider, Target, TargetPlan};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, MutexGuard};

/// The provider reads its endpoints and credentials from the environment, which is shared by
/// the whole test process, so tests run one at a time.
static ENVIRONMENT: Mutex<()> = Mutex::const_new(());

pub const RG: &str = "/subscriptions/subid/resourceGroups/rg1/providers";

pub struct Harness {
    pub fake: FakeAzure,
    pub provider: AzureProvider,
    _environment: MutexGuard<'static, ()>,
}

pub async fn start() -> Harness {
    start_with_secret(FakeAzure::CLIENT_SECRET).await
}

/// Starts a fake and a provider whose client secret is `secret`.
pub async fn start_with_secret(secret: &str) -> Harness {
    let environment = ENVIRONMENT.lock().await;
    let fake = FakeAzure::start().await;
    let variables = [
        (ARM_ENDPOINT_VAR, fake.arm_endpoint()),
        (GRAPH_ENDPOINT_VAR, fake.graph_endpoint()),
        (AUTHORITY_HOST_VAR, fake.authority_host()),
        ("AZURE_TENANT_ID", FakeAzure::TENANT.to_string()),
        ("AZURE_CLIENT_ID", FakeAzure::CLIENT_ID.to_string()),
        ("AZURE_CLIENT_SECRET", secret.to_string()),
    ];
    // SAFETY: the environment lock is held, and no other thread of this process reads or
    // writes the environment while it is.
    unsafe {
        for (name, value) in &variables {
            std::env::set_var(name, value);
        }
        std::env::remove_var("AZURE_FEDERATED_TOKEN_FILE");
    }
    let settings = AzureSettings { managed_identity: false, poll_interval: Duration::from_millis(10), ..AzureSettings::default() };
    let provider = AzureProvider::new(settings);

    // Every endpoint the provider will call must be this machine: never a real Azure host.
    let endpoints = provider.endpoints();
    for url in [&endpoints.arm, &endpoints.graph, &endpoints.authority] {
        refuse_real_endpoint(url).unwrap_or_else(|why| panic!("refusing to run against {url}: {why}"));
    }
    Harness { fake, provider, _environment: environment }
}

pub fn plan_context() -> CallContext {
    CallContext::new(Mode::Plan, "plan-conformance".to_string())
}

pub fn apply_context() -> CallContext {
    CallContext::new(Mode::Apply, "run-conformance".to_string())
}

pub fn options(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// A target with its action and plan.
pub struct Planned {
    pub target: Target,
    pub action: Arc<dyn Action>,
    pub plan: TargetPlan,
}

impl Harness {
    /// Inspects and plans a target, as `contain plan` does.
    pub async fn plan(&self, kind: ActionKind, resource_type: &str, id: &str, with: Value) -> Planned {
        let target = self.provider.parse_target(resource_type, id).expect("a valid target");
        let action = self.provider.action(kind, resource_type).expect("an action for the type");
        let options = options(with);
        assert!(action.check_options(&options).is_empty(), "options rejected: {:?}", action.check_options(&options));
        let state = action.inspect(&plan_context(), &target).await.expect("inspect");
        let plan = action.plan(&target, &options, &state).expect("plan");
        Planned { target, action, plan }
    }

    /// Applies each operation after checking that its subject still has the prior value, and
    /// checks that it has the applied value afterwards.
    pub async fn apply(&self, planned: &Planned) -> Result<Vec<(Operation, Value)>, ActionError> {
        let context = apply_context();
        let mut applied: Vec<(Operation, Value)> = Vec::new();
        for operation in &planned.plan.operations {
            let operation = planned.action.bind(&context, operation, &applied);
            let current = planned.action.read(&context, &planned.target, &operation).await?;
            assert_eq!(planned.action.assess(&operation, &current, None), Assessment::Prior, "{} before apply: {current}", operation.id);
            let value = planned.action.apply(&context, &planned.target, &operation).await?;
            let after = planned.action.read(&context, &planned.target, &operation).await?;
            assert_eq!(planned.action.assess(&operation, &after, Some(&value)), Assessment::Applied, "{} after apply: {after}", operation.id);
            applied.push((operation, value));
        }
        Ok(applied)
    }

    /// Reverts the applied operations in reverse order, as `contain rollback` does, and returns
    /// the notes.
    pub async fn rollback(&self, planned: &Planned, applied: &[(Operation, Value)]) -> Vec<String> {
        let context = apply_context();
        let mut notes = Vec::new();
        for (operation, value) in applied.iter().rev() {
            if !operation.reversible {
                continue;
            }
            notes.extend(planned.action.revert(&context, &planned.target, operation, value).await.expect("revert"));
        }
        notes
    }

    /// Lists the requests since the last clear that change something: every PUT, PATCH and DELETE,
    /// and every POST but the token request and the named read-only ones.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.fake.requests().into_iter().filter(is_write).collect()
    }
}

fn is_write(request: &RecordedRequest) -> bool {
    match request.method.as_str() {
        "GET" | "HEAD" => false,
        "POST" => {
            let read_only_batch = request.path.ends_with("/$batch")
                && request.body["requests"].as_array().is_some_and(|requests| requests.iter().all(|r| r["method"] == "GET"));
            !(request.path.ends_with("/oauth2/v2.0/token") || request.path.ends_with("/effectiveNetworkSecurityGroups") || read_only_batch)
        }
        _ => true,
    }
}
