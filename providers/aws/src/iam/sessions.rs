//! Inline deny policies that contain attaches to users and roles: one that revokes the sessions
//! issued before containment, and one that denies everything. Each is named after the run, so
//! it never overwrites a policy that exists already, and rollback deletes exactly it.

use aws_sdk_iam::Client;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use contain_core::{ActionError, CallContext, ErrorKind, Operation};
use serde_json::{Value, json};

use super::policy::{deny_all, revoke_older_sessions};
use crate::errors::map_sdk_error;

pub(crate) const INLINE_POLICY: &str = "iam.inline_policy";
const NAME_PLACEHOLDER: &str = "<named after this run>";
const TIME_PLACEHOLDER: &str = "<the time of containment>";

/// The longest a user's temporary credentials live (GetSessionToken and GetFederationToken):
/// 36 hours.
pub(crate) const USER_LONGEST_SESSION_SECONDS: i64 = 36 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Principal {
    User,
    Role,
}

impl Principal {
    fn as_str(self) -> &'static str {
        match self {
            Principal::User => "user",
            Principal::Role => "role",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Denies everything to sessions issued before the time of containment.
    RevokeSessions,
    /// Denies everything.
    DenyAll,
}

/// Formats a session lifetime: `1 hour`, `12 hours`, `90 minutes`.
fn duration_text(seconds: i64) -> String {
    match (seconds / 3600, seconds % 3600) {
        (1, 0) => "1 hour".to_string(),
        (hours, 0) => format!("{hours} hours"),
        _ => format!("{} minutes", seconds / 60),
    }
}

/// Plans attaching one of contain's inline policies. `longest_session_seconds` is how long a
/// session issued just before containment could live, for the warning at rollback.
pub(crate) fn plan(principal: Principal, name: &str, policy: Policy, longest_session_seconds: i64, id: &str) -> Operation {
    let (kind, description) = match policy {
        Policy::RevokeSessions => (
            "revoke_sessions",
            format!(
                "revoke the sessions of {} {name}: attach an inline policy denying everything to credentials issued before the time of containment (sessions can live up to {})",
                principal.as_str(),
                duration_text(longest_session_seconds)
            ),
        ),
        Policy::DenyAll => ("deny_all", format!("attach an inline policy denying everything to {} {name}", principal.as_str())),
    };
    Operation {
        id: id.to_string(),
        kind: INLINE_POLICY.to_string(),
        subject: format!("{} {name}", principal.as_str()),
        description,
        prior: json!({ "policy": null }),
        desired: json!({
            "principal": principal.as_str(),
            "name": name,
            "policy": kind,
            "policy_name": NAME_PLACEHOLDER,
            "issued_before": if policy == Policy::RevokeSessions { json!(TIME_PLACEHOLDER) } else { Value::Null },
            "longest_session_seconds": longest_session_seconds,
        }),
        reversible: true,
    }
}

/// Names the policy after the run and fixes the time of containment.
pub(crate) fn bind(context: &CallContext, operation: &Operation) -> Operation {
    let mut bound = operation.clone();
    if bound.desired["policy_name"] == NAME_PLACEHOLDER {
        let prefix = if bound.desired["policy"] == "deny_all" { "contain-deny-all" } else { "contain-revoke-sessions" };
        bound.desired["policy_name"] = json!(format!("{prefix}-{}", context.run_id));
    }
    if bound.desired["issued_before"] == TIME_PLACEHOLDER {
        bound.desired["issued_before"] = json!(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    bound
}

fn principal_of(operation: &Operation) -> Result<(Principal, String, String), ActionError> {
    let principal = match operation.desired["principal"].as_str() {
        Some("user") => Principal::User,
        Some("role") => Principal::Role,
        other => return Err(ActionError::new(ErrorKind::Invalid, format!("operation {} names no IAM principal: {other:?}", operation.id))),
    };
    let name = operation.desired["name"].as_str().unwrap_or_default().to_string();
    let policy_name = operation.desired["policy_name"].as_str().unwrap_or_default().to_string();
    Ok((principal, name, policy_name))
}

/// Reads whether the run's policy is attached: `{ "policy": NAME }` or `{ "policy": null }`.
pub(crate) async fn read(iam: &Client, operation: &Operation) -> Result<Value, ActionError> {
    let (principal, name, policy_name) = principal_of(operation)?;
    if policy_name == NAME_PLACEHOLDER {
        // Not bound yet: the run's policy cannot exist before the run.
        return Ok(json!({ "policy": null }));
    }
    let subject = operation.subject.as_str();
    let found = match principal {
        Principal::User => iam.get_user_policy().user_name(&name).policy_name(&policy_name).send().await.map(drop).map_err(|e| map_sdk_error("GetUserPolicy", subject, e)),
        Principal::Role => iam.get_role_policy().role_name(&name).policy_name(&policy_name).send().await.map(drop).map_err(|e| map_sdk_error("GetRolePolicy", subject, e)),
    };
    match found {
        Ok(()) => Ok(json!({ "policy": policy_name })),
        Err(error) if error.kind == ErrorKind::NotFound => Ok(json!({ "policy": null })),
        Err(error) => Err(error),
    }
}

pub(crate) async fn apply(iam: &Client, operation: &Operation) -> Result<Value, ActionError> {
    let (principal, name, policy_name) = principal_of(operation)?;
    let document = match operation.desired["issued_before"].as_str() {
        Some(time) => revoke_older_sessions(time),
        None => deny_all(),
    };
    let subject = operation.subject.as_str();
    match principal {
        Principal::User => iam.put_user_policy().user_name(&name).policy_name(&policy_name).policy_document(document).send().await.map(drop).map_err(|e| map_sdk_error("PutUserPolicy", subject, e))?,
        Principal::Role => iam.put_role_policy().role_name(&name).policy_name(&policy_name).policy_document(document).send().await.map(drop).map_err(|e| map_sdk_error("PutRolePolicy", subject, e))?,
    }
    Ok(json!({ "policy": policy_name }))
}

/// Deletes the run's policy, and warns when sessions it revoked could still be alive.
pub(crate) async fn revert(iam: &Client, operation: &Operation) -> Result<Vec<String>, ActionError> {
    let (principal, name, policy_name) = principal_of(operation)?;
    let subject = operation.subject.as_str();
    let result = match principal {
        Principal::User => iam.delete_user_policy().user_name(&name).policy_name(&policy_name).send().await.map(drop).map_err(|e| map_sdk_error("DeleteUserPolicy", subject, e)),
        Principal::Role => iam.delete_role_policy().role_name(&name).policy_name(&policy_name).send().await.map(drop).map_err(|e| map_sdk_error("DeleteRolePolicy", subject, e)),
    };
    match result {
        Err(error) if error.kind != ErrorKind::NotFound => return Err(error),
        _ => {}
    }

    let mut notes = Vec::new();
    let issued_before = operation.desired["issued_before"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let longest = operation.desired["longest_session_seconds"].as_i64().unwrap_or(USER_LONGEST_SESSION_SECONDS);
    if let Some(issued_before) = issued_before {
        let expires = issued_before.with_timezone(&Utc) + Duration::seconds(longest);
        if Utc::now() < expires {
            notes.push(format!(
                "sessions of {} issued before {issued_before} are valid again until they expire, at the latest {}: rollback came before the longest session could end",
                operation.subject,
                expires.to_rfc3339_opts(SecondsFormat::Secs, true)
            ));
        }
    }
    Ok(notes)
}
