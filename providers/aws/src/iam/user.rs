//! `revoke` for `aws.iam.user`: deactivate long-lived credentials, revoke sessions, and
//! optionally deny everything and delete the console password.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_iam::Client;
use aws_sdk_iam::types::StatusType;
use chrono::{DateTime, Utc};
use contain_core::{Action, ActionError, ActionKind, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::USER;
use super::sessions::{self, INLINE_POLICY, Policy, Principal, USER_LONGEST_SESSION_SECONDS};
use crate::clients::ClientFactory;
use crate::errors::map_sdk_error;

const CREDENTIAL_STATUS: &str = "iam.credential_status";
const ACCESS_KEY_DELETE: &str = "iam.access_key_delete";
const LOGIN_PROFILE_DELETE: &str = "iam.login_profile_delete";

const OPTION_KEYS: &[&str] = &[
    "access_keys",
    "select",
    "delete_access_keys",
    "ssh_public_keys",
    "signing_certificates",
    "service_specific_credentials",
    "revoke_sessions",
    "deny_all",
    "delete_login_profile",
];

/// Which access keys a step changes.
#[derive(Debug, Clone, PartialEq)]
enum KeySelector {
    All,
    KeyIds(Vec<String>),
    /// Keys not used (or, never used, not created) for more than this many days.
    UnusedDaysOver(i64),
}

fn parse_selector(value: Option<&Value>) -> Result<KeySelector, String> {
    const VALID: &str = "valid forms are `all`, `{ key_ids: [AKIA…] }` and `{ unused_days_over: DAYS }`";
    match value {
        None => Ok(KeySelector::All),
        Some(Value::String(s)) if s == "all" => Ok(KeySelector::All),
        Some(Value::Object(map)) if map.len() == 1 => {
            if let Some(ids) = map.get("key_ids") {
                let ids: Option<Vec<String>> = match ids {
                    Value::Array(items) => items.iter().map(|v| v.as_str().map(str::to_string)).collect(),
                    Value::String(one) => Some(vec![one.clone()]),
                    _ => None,
                };
                return ids.filter(|ids| !ids.is_empty()).map(KeySelector::KeyIds).ok_or_else(|| format!("`select.key_ids` must be a list of access key ids; {VALID}"));
            }
            if let Some(days) = map.get("unused_days_over") {
                return days.as_i64().filter(|d| *d >= 0).map(KeySelector::UnusedDaysOver).ok_or_else(|| format!("`select.unused_days_over` must be a whole number of days; {VALID}"));
            }
            Err(format!("invalid `select` {}: {VALID}", Value::Object(map.clone())))
        }
        Some(other) => Err(format!("invalid `select` {other}: {VALID}")),
    }
}

pub(crate) fn check_options(options: &Map<String, Value>) -> Vec<OptionProblem> {
    let mut problems = Vec::new();
    for (key, value) in options {
        let message = if !OPTION_KEYS.contains(&key.as_str()) {
            Some(format!("unknown option `{key}` for revoke on aws.iam.user: valid options are {}", OPTION_KEYS.join(", ")))
        } else if contain_core::is_template(value) {
            None
        } else if key != "select" && !value.is_boolean() {
            Some(format!("`{key}` must be true or false, found {value}"))
        } else if key == "select" && value.to_string().contains("${{") {
            None
        } else if key == "select" {
            parse_selector(Some(value)).err()
        } else {
            None
        };
        if let Some(message) = message {
            problems.push(OptionProblem { key: Some(key.clone()), message });
        }
    }
    problems
}

fn flag(options: &Map<String, Value>, key: &str, default: bool) -> bool {
    options.get(key).and_then(Value::as_bool).unwrap_or(default)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Credential {
    id: String,
    status: String,
    #[serde(default)]
    created: Option<DateTime<Utc>>,
    #[serde(default)]
    last_used: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UserState {
    user: String,
    arn: String,
    inspected_at: DateTime<Utc>,
    access_keys: Vec<Credential>,
    ssh_public_keys: Vec<Credential>,
    signing_certificates: Vec<Credential>,
    /// The credentials, or why they could not be listed.
    service_specific_credentials: Result<Vec<Credential>, String>,
    login_profile: Option<Value>,
    inline_policies: Vec<String>,
}

pub(crate) struct RevokeUser {
    factory: Arc<ClientFactory>,
}

impl RevokeUser {
    pub(crate) fn new(factory: Arc<ClientFactory>) -> Self {
        RevokeUser { factory }
    }
}

fn to_time(value: Option<&aws_sdk_iam::primitives::DateTime>) -> Option<DateTime<Utc>> {
    value.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

async fn inspect_user(iam: &Client, name: &str) -> Result<UserState, ActionError> {
    let user = iam.get_user().user_name(name).send().await.map_err(|e| map_sdk_error("GetUser", name, e))?;
    let arn = user.user().map(|u| u.arn().to_string()).unwrap_or_default();

    let keys = iam.list_access_keys().user_name(name).send().await.map_err(|e| map_sdk_error("ListAccessKeys", name, e))?;
    let mut access_keys = Vec::new();
    for key in keys.access_key_metadata() {
        let id = key.access_key_id().unwrap_or_default().to_string();
        let used = iam.get_access_key_last_used().access_key_id(&id).send().await.map_err(|e| map_sdk_error("GetAccessKeyLastUsed", &id, e))?;
        access_keys.push(Credential {
            status: key.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            created: to_time(key.create_date()),
            last_used: to_time(used.access_key_last_used().and_then(|u| u.last_used_date())),
            id,
        });
    }

    let ssh = iam.list_ssh_public_keys().user_name(name).send().await.map_err(|e| map_sdk_error("ListSSHPublicKeys", name, e))?;
    let ssh_public_keys = ssh
        .ssh_public_keys()
        .iter()
        .map(|k| Credential { id: k.ssh_public_key_id().to_string(), status: k.status().as_str().to_string(), created: to_time(Some(k.upload_date())), last_used: None })
        .collect();
    let certificates = iam.list_signing_certificates().user_name(name).send().await.map_err(|e| map_sdk_error("ListSigningCertificates", name, e))?;
    let signing_certificates = certificates
        .certificates()
        .iter()
        .map(|c| Credential { id: c.certificate_id().to_string(), status: c.status().as_str().to_string(), created: to_time(c.upload_date()), last_used: None })
        .collect();
    let service_specific_credentials = match iam.list_service_specific_credentials().user_name(name).send().await {
        Ok(output) => Ok(output
            .service_specific_credentials()
            .iter()
            .map(|c| Credential {
                id: c.service_specific_credential_id().to_string(),
                status: c.status().as_str().to_string(),
                created: to_time(Some(c.create_date())),
                last_used: None,
            })
            .collect()),
        Err(error) => Err(map_sdk_error("ListServiceSpecificCredentials", name, error).message),
    };

    let login_profile = match iam.get_login_profile().user_name(name).send().await {
        Ok(output) => output.login_profile().map(|p| {
            json!({ "created": to_time(Some(p.create_date())), "password_reset_required": p.password_reset_required() })
        }),
        Err(error) => {
            let error = map_sdk_error("GetLoginProfile", name, error);
            if error.kind != ErrorKind::NotFound {
                return Err(error);
            }
            None
        }
    };
    let policies = iam.list_user_policies().user_name(name).send().await.map_err(|e| map_sdk_error("ListUserPolicies", name, e))?;

    Ok(UserState {
        user: name.to_string(),
        arn,
        inspected_at: Utc::now(),
        access_keys,
        ssh_public_keys,
        signing_certificates,
        service_specific_credentials,
        login_profile,
        inline_policies: policies.policy_names().to_vec(),
    })
}

fn status_op(kind: &str, user: &str, credential: &Credential, label: &str) -> Operation {
    Operation {
        id: format!("{kind}:{}", credential.id),
        kind: CREDENTIAL_STATUS.to_string(),
        subject: credential.id.clone(),
        description: format!("deactivate {label} {} of user {user}", credential.id),
        prior: json!({ "status": credential.status }),
        desired: json!({ "status": "Inactive", "user": user, "credential": kind }),
        reversible: true,
    }
}

fn plan_user(options: &Map<String, Value>, state: &UserState) -> Result<TargetPlan, ActionError> {
    let selector = parse_selector(options.get("select")).map_err(|m| ActionError::new(ErrorKind::Invalid, m))?;
    let user = &state.user;
    let mut operations = Vec::new();
    let mut notes = Vec::new();

    if flag(options, "access_keys", true) {
        for key in &state.access_keys {
            let selected = match &selector {
                KeySelector::All => true,
                KeySelector::KeyIds(ids) => ids.contains(&key.id),
                KeySelector::UnusedDaysOver(days) => {
                    let since = key.last_used.or(key.created).unwrap_or(state.inspected_at);
                    (state.inspected_at - since).num_days() > *days
                }
            };
            if !selected {
                notes.push(format!("access key {} is not selected: left as it is", key.id));
            } else if flag(options, "delete_access_keys", false) {
                operations.push(Operation {
                    id: format!("access_key_delete:{}", key.id),
                    kind: ACCESS_KEY_DELETE.to_string(),
                    subject: key.id.clone(),
                    description: format!("delete access key {} of user {user}", key.id),
                    prior: json!({ "exists": true, "status": key.status, "created": key.created, "last_used": key.last_used }),
                    desired: json!({ "exists": false, "user": user }),
                    reversible: false,
                });
            } else if key.status == "Active" {
                operations.push(status_op("access_key", user, key, "access key"));
            } else {
                notes.push(format!("access key {} is already inactive", key.id));
            }
        }
        if let KeySelector::KeyIds(ids) = &selector
            && let Some(missing) = ids.iter().find(|id| !state.access_keys.iter().any(|k| &k.id == *id))
        {
            return Err(ActionError::new(ErrorKind::NotFound, format!("access key {missing} does not belong to user {user}: its keys are {}", state.access_keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>().join(", "))));
        }
    }

    let groups: [(&str, &str, &str, &Vec<Credential>); 2] = [
        ("ssh_public_keys", "ssh_key", "SSH public key", &state.ssh_public_keys),
        ("signing_certificates", "signing_certificate", "signing certificate", &state.signing_certificates),
    ];
    for (option, kind, label, credentials) in groups {
        if flag(options, option, false) {
            operations.extend(credentials.iter().filter(|c| c.status == "Active").map(|c| status_op(kind, user, c, label)));
        }
    }
    if flag(options, "service_specific_credentials", false) {
        match &state.service_specific_credentials {
            Ok(credentials) => operations.extend(
                credentials.iter().filter(|c| c.status == "Active").map(|c| status_op("service_credential", user, c, "service-specific credential")),
            ),
            Err(why) => return Err(ActionError::new(ErrorKind::Precondition, format!("cannot list the service-specific credentials of user {user}: {why}"))),
        }
    }

    plan_policy(options, "revoke_sessions", true, "contain-revoke-sessions-", Policy::RevokeSessions, state, &mut operations, &mut notes);
    plan_policy(options, "deny_all", false, "contain-deny-all-", Policy::DenyAll, state, &mut operations, &mut notes);

    if flag(options, "delete_login_profile", false) {
        match &state.login_profile {
            Some(profile) => operations.push(Operation {
                id: "login_profile".into(),
                kind: LOGIN_PROFILE_DELETE.into(),
                subject: user.clone(),
                description: format!("delete the console password (login profile) of user {user}"),
                prior: json!({ "exists": true, "profile": profile }),
                desired: json!({ "exists": false, "user": user }),
                reversible: false,
            }),
            None => notes.push(format!("user {user} has no console password")),
        }
    }

    if operations.is_empty() {
        notes.insert(0, format!("already contained: nothing to do for user {user}"));
    }
    let state_value = serde_json::to_value(state).expect("user state serializes");
    let mut outputs = Map::new();
    outputs.insert("user".into(), json!(user));
    outputs.insert("arn".into(), json!(state.arn));
    Ok(TargetPlan { state: state_value, operations, notes, outputs, uncontainable: None, missing_permissions: Vec::new() })
}

#[allow(clippy::too_many_arguments)]
fn plan_policy(
    options: &Map<String, Value>,
    option: &str,
    default: bool,
    prefix: &str,
    policy: Policy,
    state: &UserState,
    operations: &mut Vec<Operation>,
    notes: &mut Vec<String>,
) {
    if !flag(options, option, default) {
        return;
    }
    match state.inline_policies.iter().find(|p| p.starts_with(prefix)) {
        Some(existing) => notes.push(format!("user {} already has contain's policy {existing}: left as it is", state.user)),
        None => operations.push(sessions::plan(Principal::User, &state.user, policy, USER_LONGEST_SESSION_SECONDS, option)),
    }
}

async fn read_credential(iam: &Client, operation: &Operation) -> Result<Value, ActionError> {
    let user = operation.desired["user"].as_str().unwrap_or_default();
    let id = operation.subject.as_str();
    let status = match operation.desired["credential"].as_str() {
        Some("access_key") => {
            let keys = iam.list_access_keys().user_name(user).send().await.map_err(|e| map_sdk_error("ListAccessKeys", user, e))?;
            keys.access_key_metadata().iter().find(|k| k.access_key_id() == Some(id)).and_then(|k| k.status().map(|s| s.as_str().to_string()))
        }
        Some("ssh_key") => {
            let keys = iam.list_ssh_public_keys().user_name(user).send().await.map_err(|e| map_sdk_error("ListSSHPublicKeys", user, e))?;
            keys.ssh_public_keys().iter().find(|k| k.ssh_public_key_id() == id).map(|k| k.status().as_str().to_string())
        }
        Some("signing_certificate") => {
            let certificates = iam.list_signing_certificates().user_name(user).send().await.map_err(|e| map_sdk_error("ListSigningCertificates", user, e))?;
            certificates.certificates().iter().find(|c| c.certificate_id() == id).map(|c| c.status().as_str().to_string())
        }
        Some("service_credential") => {
            let credentials = iam.list_service_specific_credentials().user_name(user).send().await.map_err(|e| map_sdk_error("ListServiceSpecificCredentials", user, e))?;
            credentials.service_specific_credentials().iter().find(|c| c.service_specific_credential_id() == id).map(|c| c.status().as_str().to_string())
        }
        other => return Err(ActionError::new(ErrorKind::Invalid, format!("unknown credential kind {other:?}"))),
    };
    let status = status.ok_or_else(|| ActionError::new(ErrorKind::NotFound, format!("credential {id} of user {user} not found")).with_resource(id))?;
    Ok(json!({ "status": status }))
}

async fn set_credential_status(iam: &Client, operation: &Operation, status: &str) -> Result<(), ActionError> {
    let user = operation.desired["user"].as_str().unwrap_or_default();
    let id = operation.subject.as_str();
    let status = StatusType::from(status);
    match operation.desired["credential"].as_str() {
        Some("access_key") => iam.update_access_key().user_name(user).access_key_id(id).status(status).send().await.map(drop).map_err(|e| map_sdk_error("UpdateAccessKey", id, e)),
        Some("ssh_key") => iam.update_ssh_public_key().user_name(user).ssh_public_key_id(id).status(status).send().await.map(drop).map_err(|e| map_sdk_error("UpdateSSHPublicKey", id, e)),
        Some("signing_certificate") => iam.update_signing_certificate().user_name(user).certificate_id(id).status(status).send().await.map(drop).map_err(|e| map_sdk_error("UpdateSigningCertificate", id, e)),
        Some("service_credential") => iam
            .update_service_specific_credential()
            .user_name(user)
            .service_specific_credential_id(id)
            .status(status)
            .send()
            .await
            .map(drop)
            .map_err(|e| map_sdk_error("UpdateServiceSpecificCredential", id, e)),
        other => Err(ActionError::new(ErrorKind::Invalid, format!("unknown credential kind {other:?}"))),
    }
}

#[async_trait]
impl Action for RevokeUser {
    fn kind(&self) -> ActionKind {
        ActionKind::Revoke
    }

    fn resource_type(&self) -> &'static str {
        USER
    }

    fn option_names(&self) -> Vec<&'static str> {
        OPTION_KEYS.to_vec()
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        check_options(options)
    }

    fn irreversible_options(&self, options: &Map<String, Value>) -> Vec<String> {
        ["delete_access_keys", "delete_login_profile"].into_iter().filter(|key| flag(options, key, false)).map(str::to_string).collect()
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let clients = self.factory.for_target(context, target).await?;
        let state = inspect_user(&clients.iam, &target.id).await?;
        Ok(serde_json::to_value(state).expect("user state serializes"))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let state: UserState = serde_json::from_value(state.clone()).map_err(|e| ActionError::new(ErrorKind::Invalid, format!("unreadable state of {target}: {e}")))?;
        plan_user(options, &state)
    }

    fn bind(&self, context: &CallContext, operation: &Operation, _earlier: &[(Operation, Value)]) -> Operation {
        if operation.kind == INLINE_POLICY { sessions::bind(context, operation) } else { operation.clone() }
    }

    async fn preflight(&self, context: &CallContext, target: &Target, plan: &TargetPlan) -> Result<Vec<String>, ActionError> {
        let clients = self.factory.for_target(context, target).await?;
        let mut actions: Vec<&str> = Vec::new();
        for operation in &plan.operations {
            let needed: &[&str] = match (operation.kind.as_str(), operation.desired["credential"].as_str()) {
                (CREDENTIAL_STATUS, Some("access_key")) => &["iam:UpdateAccessKey"],
                (CREDENTIAL_STATUS, Some("ssh_key")) => &["iam:UpdateSSHPublicKey"],
                (CREDENTIAL_STATUS, Some("signing_certificate")) => &["iam:UpdateSigningCertificate"],
                (CREDENTIAL_STATUS, _) => &["iam:UpdateServiceSpecificCredential"],
                (INLINE_POLICY, _) => &["iam:PutUserPolicy", "iam:DeleteUserPolicy"],
                (ACCESS_KEY_DELETE, _) => &["iam:DeleteAccessKey"],
                _ => &["iam:DeleteLoginProfile"],
            };
            actions.extend(needed.iter().filter(|a| !actions.contains(a)).collect::<Vec<_>>());
        }
        let arn = plan.state["arn"].as_str().unwrap_or_default();
        crate::preflight::simulate(&clients.iam, clients.principal().await?, &actions, arn).await
    }

    async fn read(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let iam = &self.factory.for_target(context, target).await?.iam;
        match operation.kind.as_str() {
            CREDENTIAL_STATUS => read_credential(iam, operation).await,
            INLINE_POLICY => sessions::read(iam, operation).await,
            ACCESS_KEY_DELETE => {
                let user = operation.desired["user"].as_str().unwrap_or_default();
                let keys = iam.list_access_keys().user_name(user).send().await.map_err(|e| map_sdk_error("ListAccessKeys", user, e))?;
                let key = keys.access_key_metadata().iter().find(|k| k.access_key_id() == Some(operation.subject.as_str()));
                Ok(match key {
                    Some(_) => operation.prior.clone(),
                    None => json!({ "exists": false }),
                })
            }
            LOGIN_PROFILE_DELETE => match iam.get_login_profile().user_name(&operation.subject).send().await {
                Ok(_) => Ok(operation.prior.clone()),
                Err(error) => {
                    let error = map_sdk_error("GetLoginProfile", &operation.subject, error);
                    if error.kind == ErrorKind::NotFound { Ok(json!({ "exists": false })) } else { Err(error) }
                }
            },
            other => Err(ActionError::new(ErrorKind::Invalid, format!("unknown operation kind {other}"))),
        }
    }

    async fn apply(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let iam = &self.factory.for_target(context, target).await?.iam;
        match operation.kind.as_str() {
            CREDENTIAL_STATUS => {
                set_credential_status(iam, operation, "Inactive").await?;
                Ok(json!({ "status": "Inactive" }))
            }
            INLINE_POLICY => sessions::apply(iam, operation).await,
            ACCESS_KEY_DELETE => {
                let user = operation.desired["user"].as_str().unwrap_or_default();
                iam.delete_access_key().user_name(user).access_key_id(&operation.subject).send().await.map_err(|e| map_sdk_error("DeleteAccessKey", &operation.subject, e))?;
                Ok(json!({ "exists": false }))
            }
            LOGIN_PROFILE_DELETE => {
                iam.delete_login_profile().user_name(&operation.subject).send().await.map_err(|e| map_sdk_error("DeleteLoginProfile", &operation.subject, e))?;
                Ok(json!({ "exists": false }))
            }
            other => Err(ActionError::new(ErrorKind::Invalid, format!("unknown operation kind {other}"))),
        }
    }

    async fn revert(&self, context: &CallContext, target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        let iam = &self.factory.for_target(context, target).await?.iam;
        match operation.kind.as_str() {
            CREDENTIAL_STATUS => {
                let prior = operation.prior["status"].as_str().unwrap_or("Active");
                set_credential_status(iam, operation, prior).await.map(|()| Vec::new())
            }
            INLINE_POLICY => sessions::revert(iam, operation).await,
            other => Err(ActionError::new(ErrorKind::Invalid, format!("operation kind {other} cannot be reverted"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, days_since_use: Option<i64>, created_days_ago: i64, now: DateTime<Utc>) -> Credential {
        Credential {
            id: id.into(),
            status: "Active".into(),
            created: Some(now - chrono::Duration::days(created_days_ago)),
            last_used: days_since_use.map(|d| now - chrono::Duration::days(d)),
        }
    }

    fn state(keys: Vec<Credential>, now: DateTime<Utc>) -> UserState {
        UserState {
            user: "u".into(),
            arn: "arn:aws:iam::123456789012:user/u".into(),
            inspected_at: now,
            access_keys: keys,
            ssh_public_keys: Vec::new(),
            signing_certificates: Vec::new(),
            service_specific_credentials: Ok(Vec::new()),
            login_profile: None,
            inline_policies: Vec::new(),
        }
    }

    #[test]
    fn unused_days_selects_stale_key_only() {
        let now = Utc::now();
        let state = state(vec![key("AK1", Some(400), 500, now), key("AK2", Some(0), 500, now), key("AK3", None, 200, now)], now);
        let options: Map<String, Value> = serde_json::from_value(json!({ "select": { "unused_days_over": 90 }, "revoke_sessions": false })).unwrap();

        let plan = plan_user(&options, &state).unwrap();
        let ids: Vec<&str> = plan.operations.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["access_key:AK1", "access_key:AK3"]);
    }

    #[test]
    fn delete_is_irreversible() {
        let now = Utc::now();
        let state = state(vec![key("AK1", None, 1, now)], now);
        let options: Map<String, Value> = serde_json::from_value(json!({ "delete_access_keys": true, "revoke_sessions": false })).unwrap();
        let plan = plan_user(&options, &state).unwrap();
        assert_eq!(plan.operations.len(), 1);
        assert!(!plan.operations[0].reversible);
    }

    #[test]
    fn selector_options_are_checked() {
        let options: Map<String, Value> = serde_json::from_value(json!({ "select": { "newest": 1 }, "colour": true })).unwrap();
        let problems = check_options(&options);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
