//! `revoke` for `aws.iam.role`: revoke the role's sessions, and optionally deny everything.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_iam::Client;
use contain_core::{Action, ActionError, ActionKind, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::ROLE;
use super::sessions::{self, INLINE_POLICY, Policy, Principal};
use crate::clients::ClientFactory;
use crate::errors::map_sdk_error;

const OPTION_KEYS: &[&str] = &["revoke_sessions", "deny_all"];

/// Path prefixes of roles that IAM does not let customers change.
const SERVICE_LINKED_PATH: &str = "/aws-service-role/";
const IDENTITY_CENTER_PATH: &str = "/aws-reserved/sso.amazonaws.com/";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RoleState {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) path: String,
    /// The instance profile the role was found through, if the target named one.
    pub(crate) instance_profile: Option<String>,
    pub(crate) max_session_seconds: i64,
    pub(crate) inline_policies: Vec<String>,
}

/// Returns why contain cannot change a role, if it cannot.
pub(crate) fn uncontainable_reason(path: &str, name: &str) -> Option<String> {
    if path.starts_with(SERVICE_LINKED_PATH) {
        Some(format!("role {name} is service-linked: IAM lets only its service change it, so contain cannot revoke its sessions"))
    } else if path.starts_with(IDENTITY_CENTER_PATH) {
        Some(format!(
            "role {name} is managed by IAM Identity Center: change its permission set instead (disable_sso on the permission set), because IAM rejects changes to the role itself"
        ))
    } else {
        None
    }
}

pub(crate) async fn inspect_role(iam: &Client, name: &str, instance_profile: Option<String>) -> Result<RoleState, ActionError> {
    let role = iam.get_role().role_name(name).send().await.map_err(|e| map_sdk_error("GetRole", name, e))?;
    let role = role.role().ok_or_else(|| ActionError::new(ErrorKind::NotFound, format!("role {name} not found")))?;
    let policies = iam.list_role_policies().role_name(name).send().await.map_err(|e| map_sdk_error("ListRolePolicies", name, e))?;
    Ok(RoleState {
        name: name.to_string(),
        arn: role.arn().to_string(),
        path: role.path().to_string(),
        instance_profile,
        max_session_seconds: i64::from(role.max_session_duration().unwrap_or(3600)),
        inline_policies: policies.policy_names().to_vec(),
    })
}

/// Plans the inline policies for a role. Shared with disable_sso, which revokes the sessions of
/// every role that trusts an identity provider.
pub(crate) fn plan_role_policies(state: &RoleState, revoke_sessions: bool, deny_all: bool, id_suffix: &str, operations: &mut Vec<Operation>, notes: &mut Vec<String>) {
    let wanted = [(revoke_sessions, "revoke_sessions", "contain-revoke-sessions-", Policy::RevokeSessions), (deny_all, "deny_all", "contain-deny-all-", Policy::DenyAll)];
    for (enabled, id, prefix, policy) in wanted {
        if !enabled {
            continue;
        }
        match state.inline_policies.iter().find(|p| p.starts_with(prefix)) {
            Some(existing) => notes.push(format!("role {} already has contain's policy {existing}: left as it is", state.name)),
            None => operations.push(sessions::plan(Principal::Role, &state.name, policy, state.max_session_seconds, &format!("{id}{id_suffix}"))),
        }
    }
}

pub(crate) struct RevokeRole {
    factory: Arc<ClientFactory>,
}

impl RevokeRole {
    pub(crate) fn new(factory: Arc<ClientFactory>) -> Self {
        RevokeRole { factory }
    }
}

#[async_trait]
impl Action for RevokeRole {
    fn kind(&self) -> ActionKind {
        ActionKind::Revoke
    }

    fn resource_type(&self) -> &'static str {
        ROLE
    }

    fn option_names(&self) -> Vec<&'static str> {
        OPTION_KEYS.to_vec()
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        options
            .iter()
            .filter_map(|(key, value)| {
                let message = if !OPTION_KEYS.contains(&key.as_str()) {
                    format!("unknown option `{key}` for revoke on aws.iam.role: valid options are {}", OPTION_KEYS.join(", "))
                } else if !value.is_boolean() && !contain_core::is_template(value) {
                    format!("`{key}` must be true or false, found {value}")
                } else {
                    return None;
                };
                Some(OptionProblem { key: Some(key.clone()), message })
            })
            .collect()
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let iam = &self.factory.for_target(context, target).await?.iam;
        let state = match target.id.split_once(":instance-profile/") {
            Some((_, path)) => {
                let profile_name = path.rsplit('/').next().unwrap_or_default();
                let profile = iam.get_instance_profile().instance_profile_name(profile_name).send().await.map_err(|e| map_sdk_error("GetInstanceProfile", &target.id, e))?;
                let role_name = profile.instance_profile().and_then(|p| p.roles().first()).map(|r| r.role_name().to_string());
                match role_name {
                    Some(role_name) => Some(inspect_role(iam, &role_name, Some(target.id.clone())).await?),
                    None => None,
                }
            }
            None => Some(inspect_role(iam, &target.id, None).await?),
        };
        Ok(json!({ "role": state, "target": target.id }))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let role: Option<RoleState> = serde_json::from_value(state["role"].clone()).map_err(|e| ActionError::new(ErrorKind::Invalid, format!("unreadable state of {target}: {e}")))?;
        let Some(role) = role else {
            return Ok(TargetPlan { state: state.clone(), notes: vec![format!("instance profile {} has no role: nothing to do", target.id)], ..TargetPlan::default() });
        };
        let mut outputs = Map::new();
        outputs.insert("role".into(), json!(role.name));
        outputs.insert("arn".into(), json!(role.arn));
        if let Some(reason) = uncontainable_reason(&role.path, &role.name) {
            return Ok(TargetPlan { state: state.clone(), uncontainable: Some(reason), outputs, ..TargetPlan::default() });
        }

        let mut operations = Vec::new();
        let mut notes = Vec::new();
        if let Some(profile) = &role.instance_profile {
            notes.push(format!("role {} was found through instance profile {profile}", role.name));
        }
        let revoke_sessions = options.get("revoke_sessions").and_then(Value::as_bool).unwrap_or(true);
        let deny_all = options.get("deny_all").and_then(Value::as_bool).unwrap_or(false);
        plan_role_policies(&role, revoke_sessions, deny_all, "", &mut operations, &mut notes);
        if operations.is_empty() {
            notes.insert(0, format!("already contained: nothing to do for role {}", role.name));
        }
        Ok(TargetPlan { state: state.clone(), operations, notes, outputs, uncontainable: None, missing_permissions: Vec::new() })
    }

    fn bind(&self, context: &CallContext, operation: &Operation, _earlier: &[(Operation, Value)]) -> Operation {
        sessions::bind(context, operation)
    }

    async fn preflight(&self, context: &CallContext, target: &Target, plan: &TargetPlan) -> Result<Vec<String>, ActionError> {
        let clients = self.factory.for_target(context, target).await?;
        let arn = plan.state["role"]["arn"].as_str().unwrap_or_default();
        crate::preflight::simulate(&clients.iam, clients.principal().await?, &["iam:PutRolePolicy", "iam:DeleteRolePolicy"], arn).await
    }

    async fn read(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        sessions::read(&self.factory.for_target(context, target).await?.iam, operation).await
    }

    async fn apply(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        expect_inline_policy(operation)?;
        sessions::apply(&self.factory.for_target(context, target).await?.iam, operation).await
    }

    async fn revert(&self, context: &CallContext, target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        expect_inline_policy(operation)?;
        sessions::revert(&self.factory.for_target(context, target).await?.iam, operation).await
    }
}

fn expect_inline_policy(operation: &Operation) -> Result<(), ActionError> {
    if operation.kind == INLINE_POLICY {
        Ok(())
    } else {
        Err(ActionError::new(ErrorKind::Invalid, format!("unknown operation kind {} for revoke on aws.iam.role", operation.kind)))
    }
}
