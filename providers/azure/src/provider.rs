use std::sync::Arc;

use async_trait::async_trait;
use contain_core::{Action, ActionError, ActionKind, CallContext, CallKind, CallerIdentity, Provider, RateLimit, ResourceTypeInfo, Target, TargetParseError};
use serde_json::Value;

use crate::block::Block;
use crate::cloud::{Cloud, Endpoints};
use crate::entra_user::RevokeUser;
use crate::http::{Api, Http, Timing};
use crate::app_credentials::RevokeCredentials;
use crate::federation::DisableFederation;
use crate::ids::{APPLICATION, DOMAIN, IP_GROUP, NIC, NSG, SERVICE_PRINCIPAL, SUBNET, USER, VM, VNET, expected, parse_target};
use crate::ip_group::BlockInIpGroup;
use crate::isolate::Isolate;
use crate::isolate_network::IsolateNetwork;
use crate::service_principal::DisableApplication;

/// Settings of the Azure provider.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    pub cloud: Cloud,
    /// Whether the credential chain tries the managed identity, which calls the instance
    /// metadata address. Tests turn it off.
    pub managed_identity: bool,
    /// The maximum wait for one long-running ARM operation.
    pub operation_timeout: std::time::Duration,
    /// The wait between polls when ARM names none.
    pub poll_interval: std::time::Duration,
}

impl Default for AzureSettings {
    fn default() -> Self {
        let timing = Timing::default();
        AzureSettings { cloud: Cloud::Public, managed_identity: true, operation_timeout: timing.operation_timeout, poll_interval: timing.poll_interval }
    }
}

/// The Azure and Entra ID provider. Endpoints come from the cloud setting and the environment
/// overrides; credentials from the chain of [`crate::credential`], on the first call.
pub struct AzureProvider {
    http: Arc<Http>,
    isolate_vm: Arc<Isolate>,
    isolate_nic: Arc<Isolate>,
    isolate_vnet: Arc<IsolateNetwork>,
    isolate_subnet: Arc<IsolateNetwork>,
    block_nsg: Arc<Block>,
    block_vm: Arc<Block>,
    block_ip_group: Arc<BlockInIpGroup>,
    revoke_user: Arc<RevokeUser>,
    disable_application: Arc<DisableApplication>,
    revoke_credentials: Arc<RevokeCredentials>,
    disable_federation: Arc<DisableFederation>,
}

impl AzureProvider {
    pub fn new(settings: AzureSettings) -> Self {
        let timing = Timing { poll_interval: settings.poll_interval, operation_timeout: settings.operation_timeout, ..Timing::default() };
        let http = Arc::new(Http::new(Endpoints::from_env(settings.cloud), settings.managed_identity, timing));
        AzureProvider {
            isolate_vm: Arc::new(Isolate::new(http.clone(), VM)),
            isolate_nic: Arc::new(Isolate::new(http.clone(), NIC)),
            isolate_vnet: Arc::new(IsolateNetwork::new(http.clone(), VNET)),
            isolate_subnet: Arc::new(IsolateNetwork::new(http.clone(), SUBNET)),
            block_nsg: Arc::new(Block::new(http.clone(), NSG)),
            block_vm: Arc::new(Block::new(http.clone(), VM)),
            block_ip_group: Arc::new(BlockInIpGroup::new(http.clone())),
            revoke_user: Arc::new(RevokeUser::new(http.clone())),
            disable_application: Arc::new(DisableApplication::new(http.clone())),
            revoke_credentials: Arc::new(RevokeCredentials::new(http.clone())),
            disable_federation: Arc::new(DisableFederation::new(http.clone())),
            http,
        }
    }

    /// Returns the endpoints the provider calls.
    pub fn endpoints(&self) -> &Endpoints {
        &self.http.endpoints
    }
}

impl Default for AzureProvider {
    fn default() -> Self {
        Self::new(AzureSettings::default())
    }
}

/// Reads the claims of a JSON web token that name the caller, when the token is one.
fn token_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = azure_core::base64::decode_url_safe(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[async_trait]
impl Provider for AzureProvider {
    fn name(&self) -> &'static str {
        "azure"
    }

    fn resource_types(&self) -> Vec<ResourceTypeInfo> {
        vec![
            ResourceTypeInfo { name: VM, expected: expected(VM), actions: vec![ActionKind::Isolate, ActionKind::Block] },
            ResourceTypeInfo { name: NIC, expected: expected(NIC), actions: vec![ActionKind::Isolate] },
            ResourceTypeInfo { name: NSG, expected: expected(NSG), actions: vec![ActionKind::Block] },
            ResourceTypeInfo { name: IP_GROUP, expected: expected(IP_GROUP), actions: vec![ActionKind::Block] },
            ResourceTypeInfo { name: VNET, expected: expected(VNET), actions: vec![ActionKind::Isolate] },
            ResourceTypeInfo { name: SUBNET, expected: expected(SUBNET), actions: vec![ActionKind::Isolate] },
            ResourceTypeInfo { name: USER, expected: expected(USER), actions: vec![ActionKind::Revoke] },
            ResourceTypeInfo { name: SERVICE_PRINCIPAL, expected: expected(SERVICE_PRINCIPAL), actions: vec![ActionKind::DisableSso] },
            ResourceTypeInfo { name: APPLICATION, expected: expected(APPLICATION), actions: vec![ActionKind::Revoke] },
            ResourceTypeInfo { name: DOMAIN, expected: expected(DOMAIN), actions: vec![ActionKind::DisableSso] },
        ]
    }

    fn parse_target(&self, resource_type: &str, value: &str) -> Result<Target, TargetParseError> {
        parse_target(resource_type, value)
    }

    fn action(&self, kind: ActionKind, resource_type: &str) -> Option<Arc<dyn Action>> {
        match (kind, resource_type) {
            (ActionKind::Isolate, VM) => Some(self.isolate_vm.clone()),
            (ActionKind::Isolate, NIC) => Some(self.isolate_nic.clone()),
            (ActionKind::Isolate, VNET) => Some(self.isolate_vnet.clone()),
            (ActionKind::Isolate, SUBNET) => Some(self.isolate_subnet.clone()),
            (ActionKind::Block, NSG) => Some(self.block_nsg.clone()),
            (ActionKind::Block, VM) => Some(self.block_vm.clone()),
            (ActionKind::Block, IP_GROUP) => Some(self.block_ip_group.clone()),
            (ActionKind::Revoke, USER) => Some(self.revoke_user.clone()),
            (ActionKind::DisableSso, SERVICE_PRINCIPAL) => Some(self.disable_application.clone()),
            (ActionKind::Revoke, APPLICATION) => Some(self.revoke_credentials.clone()),
            (ActionKind::DisableSso, DOMAIN) => Some(self.disable_federation.clone()),
            _ => None,
        }
    }

    fn rate_bucket(&self, operation_kind: &str, call: CallKind) -> Option<(&'static str, RateLimit)> {
        crate::pacing::bucket(operation_kind, call)
    }

    fn own_resources(&self, identity: &CallerIdentity) -> Vec<Target> {
        // The principal is `<credential>: <object id>` when the token named one.
        match identity.principal.rsplit_once(": ") {
            Some((_, object_id)) if !object_id.is_empty() => {
                vec![Target { resource_type: SERVICE_PRINCIPAL.to_string(), id: object_id.to_string(), region: None, account: None }]
            }
            _ => Vec::new(),
        }
    }

    async fn caller_identity(&self, _context: &CallContext) -> Result<CallerIdentity, ActionError> {
        let token = self.http.token(Api::Arm).await?;
        let credential = self.http.credential_name().unwrap_or("unknown credential");
        let claims = token_claims(&token);
        let claim = |name: &str| claims.as_ref().and_then(|c| c.get(name)).and_then(Value::as_str).map(str::to_string);
        let tenant = claim("tid").or_else(|| std::env::var("AZURE_TENANT_ID").ok()).unwrap_or_else(|| "unknown tenant".to_string());
        let principal = match claim("oid") {
            Some(object_id) => format!("{credential}: {object_id}"),
            None => format!("{credential}, client {}", std::env::var("AZURE_CLIENT_ID").unwrap_or_else(|_| "unknown".to_string())),
        };
        tracing::debug!(credential, tenant = %tenant, "Azure caller identity");
        Ok(CallerIdentity { provider: "azure".to_string(), account: tenant, principal })
    }
}
