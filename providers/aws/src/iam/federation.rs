//! `disable_sso` for `aws.iam.identity_provider`: every role whose trust policy lets the SAML or
//! OIDC provider's users in gets an explicit deny of that provider, and its sessions revoked.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_iam::Client;
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::IDENTITY_PROVIDER;
use super::policy::{decode_document, denies_provider, trusts_provider, with_federation_deny};
use super::role::{RoleState, plan_role_policies, uncontainable_reason};
use super::sessions::{self, INLINE_POLICY};
use crate::clients::ClientFactory;
use crate::errors::map_sdk_error;

const TRUST_POLICY: &str = "iam.trust_policy";
const OPTION_KEYS: &[&str] = &["revoke_sessions", "trust_policy_max_chars"];
/// IAM's default quota for the length of a role trust policy, in characters without white space.
const DEFAULT_TRUST_POLICY_MAX_CHARS: u64 = 2048;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TrustingRole {
    role: RoleState,
    /// The trust policy exactly as IAM returned it, decoded.
    document: String,
}

pub(crate) struct DisableFederation {
    factory: Arc<ClientFactory>,
}

impl DisableFederation {
    pub(crate) fn new(factory: Arc<ClientFactory>) -> Self {
        DisableFederation { factory }
    }
}

async fn provider_exists(iam: &Client, arn: &str) -> Result<(), ActionError> {
    if arn.contains(":saml-provider/") {
        iam.get_saml_provider().saml_provider_arn(arn).send().await.map(drop).map_err(|e| map_sdk_error("GetSAMLProvider", arn, e))
    } else {
        iam.get_open_id_connect_provider().open_id_connect_provider_arn(arn).send().await.map(drop).map_err(|e| map_sdk_error("GetOpenIDConnectProvider", arn, e))
    }
}

async fn trusting_roles(iam: &Client, provider_arn: &str) -> Result<Vec<TrustingRole>, ActionError> {
    let mut found = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = iam.list_roles().set_marker(marker.clone()).send().await.map_err(|e| map_sdk_error("ListRoles", provider_arn, e))?;
        for role in page.roles() {
            let Some(raw) = role.assume_role_policy_document() else {
                continue;
            };
            let document = decode_document(raw);
            let parsed: Value = serde_json::from_str(&document).unwrap_or(Value::Null);
            if trusts_provider(&parsed, provider_arn) {
                let name = role.role_name().to_string();
                let policies = iam.list_role_policies().role_name(&name).send().await.map_err(|e| map_sdk_error("ListRolePolicies", &name, e))?;
                found.push(TrustingRole {
                    role: RoleState {
                        name,
                        arn: role.arn().to_string(),
                        path: role.path().to_string(),
                        instance_profile: None,
                        max_session_seconds: i64::from(role.max_session_duration().unwrap_or(3600)),
                        inline_policies: policies.policy_names().to_vec(),
                    },
                    document,
                });
            }
        }
        marker = page.marker().map(str::to_string);
        if !page.is_truncated() || marker.is_none() {
            break;
        }
    }
    Ok(found)
}

async fn set_trust_policy(iam: &Client, role: &str, document: &str) -> Result<(), ActionError> {
    iam.update_assume_role_policy()
        .role_name(role)
        .policy_document(document)
        .send()
        .await
        .map(drop)
        .map_err(|e| map_sdk_error("UpdateAssumeRolePolicy", role, e))
}

/// The length IAM counts against the trust policy quota: characters other than white space.
fn policy_length(document: &str) -> u64 {
    document.chars().filter(|c| !c.is_whitespace()).count() as u64
}

#[async_trait]
impl Action for DisableFederation {
    fn kind(&self) -> ActionKind {
        ActionKind::DisableSso
    }

    fn resource_type(&self) -> &'static str {
        IDENTITY_PROVIDER
    }

    fn option_names(&self) -> Vec<&'static str> {
        OPTION_KEYS.to_vec()
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        options
            .iter()
            .filter_map(|(key, value)| {
                let message = match key.as_str() {
                    "revoke_sessions" | "trust_policy_max_chars" if contain_core::is_template(value) => return None,
                    "revoke_sessions" if !value.is_boolean() => format!("`revoke_sessions` must be true or false, found {value}"),
                    "trust_policy_max_chars" if value.as_u64().is_none_or(|v| v == 0) => format!("`trust_policy_max_chars` must be a whole number, found {value}"),
                    "revoke_sessions" | "trust_policy_max_chars" => return None,
                    _ => format!("unknown option `{key}` for disable_sso on aws.iam.identity_provider: valid options are {}", OPTION_KEYS.join(", ")),
                };
                Some(OptionProblem { key: Some(key.clone()), message })
            })
            .collect()
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let iam = &self.factory.for_target(context, target).await?.iam;
        provider_exists(iam, &target.id).await?;
        let roles = trusting_roles(iam, &target.id).await?;
        Ok(json!({ "provider": target.id, "roles": roles }))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let roles: Vec<TrustingRole> = serde_json::from_value(state["roles"].clone()).map_err(|e| ActionError::new(ErrorKind::Invalid, format!("unreadable state of {target}: {e}")))?;
        let max_chars = options.get("trust_policy_max_chars").and_then(Value::as_u64).unwrap_or(DEFAULT_TRUST_POLICY_MAX_CHARS);
        let revoke_sessions = options.get("revoke_sessions").and_then(Value::as_bool).unwrap_or(true);
        let provider = target.id.as_str();

        let mut operations = Vec::new();
        let mut notes = Vec::new();
        let mut too_long = Vec::new();
        for trusting in &roles {
            let role = &trusting.role;
            if let Some(reason) = uncontainable_reason(&role.path, &role.name) {
                notes.push(format!("not containable here: {reason}"));
                continue;
            }
            let parsed: Value = serde_json::from_str(&trusting.document).unwrap_or(Value::Null);
            if denies_provider(&parsed, provider) {
                notes.push(format!("role {} already denies {provider}", role.name));
            } else {
                let new_document = with_federation_deny(&parsed, provider);
                let length = policy_length(&new_document);
                if length > max_chars {
                    too_long.push(format!("role {}: {length} characters", role.name));
                    continue;
                }
                operations.push(Operation {
                    id: format!("trust:{}", role.name),
                    kind: TRUST_POLICY.into(),
                    subject: role.name.clone(),
                    description: format!("add an explicit deny of federated sign-in from {provider} to the trust policy of role {}", role.name),
                    prior: json!({ "document": trusting.document }),
                    desired: json!({ "document": new_document }),
                    reversible: true,
                });
            }
            plan_role_policies(role, revoke_sessions, false, &format!(":{}", role.name), &mut operations, &mut notes);
        }
        if !too_long.is_empty() {
            return Err(ActionError::new(
                ErrorKind::Precondition,
                format!(
                    "the trust policy with contain's deny would exceed the quota of {max_chars} characters for {}: nothing was changed; raise trust_policy_max_chars if the account has a higher quota",
                    too_long.join(", ")
                ),
            ));
        }
        if roles.is_empty() {
            notes.push(format!("no role trusts {provider}: nothing to do"));
        } else if operations.is_empty() {
            notes.insert(0, format!("already contained: every role that trusts {provider} denies it"));
        }

        let mut outputs = Map::new();
        outputs.insert("roles".into(), json!(roles.iter().map(|r| r.role.arn.clone()).collect::<Vec<_>>()));
        Ok(TargetPlan { state: state.clone(), operations, notes, outputs, uncontainable: None, missing_permissions: Vec::new() })
    }

    fn bind(&self, context: &CallContext, operation: &Operation, _earlier: &[(Operation, Value)]) -> Operation {
        if operation.kind == INLINE_POLICY { sessions::bind(context, operation) } else { operation.clone() }
    }

    /// Compares trust policies as JSON, so white space and key order do not count as drift.
    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        if operation.kind != TRUST_POLICY {
            return operation.assess_exact(current, applied);
        }
        let parse = |v: &Value| serde_json::from_str::<Value>(v["document"].as_str().unwrap_or_default()).unwrap_or(Value::Null);
        let now = parse(current);
        if now == parse(&operation.prior) {
            Assessment::Prior
        } else if now == parse(applied.unwrap_or(&operation.desired)) {
            Assessment::Applied
        } else {
            Assessment::Diverged { detail: format!("the trust policy of role {} changed since the plan or run: it is now {}", operation.subject, now) }
        }
    }

    async fn read(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let iam = &self.factory.for_target(context, target).await?.iam;
        if operation.kind == INLINE_POLICY {
            return sessions::read(iam, operation).await;
        }
        let role = iam.get_role().role_name(&operation.subject).send().await.map_err(|e| map_sdk_error("GetRole", &operation.subject, e))?;
        let raw = role.role().and_then(|r| r.assume_role_policy_document()).unwrap_or_default();
        Ok(json!({ "document": decode_document(raw) }))
    }

    async fn apply(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let iam = &self.factory.for_target(context, target).await?.iam;
        if operation.kind == INLINE_POLICY {
            return sessions::apply(iam, operation).await;
        }
        let document = operation.desired["document"].as_str().unwrap_or_default();
        set_trust_policy(iam, &operation.subject, document).await?;
        Ok(json!({ "document": document }))
    }

    async fn revert(&self, context: &CallContext, target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        let iam = &self.factory.for_target(context, target).await?.iam;
        if operation.kind == INLINE_POLICY {
            return sessions::revert(iam, operation).await;
        }
        // The prior document is restored verbatim, as it was journaled.
        set_trust_policy(iam, &operation.subject, operation.prior["document"].as_str().unwrap_or_default()).await?;
        Ok(Vec::new())
    }
}
