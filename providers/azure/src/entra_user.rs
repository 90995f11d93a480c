//! `revoke` for `azure.entra.user`: disable the account (reversible) and revoke its sign-in
//! sessions (irreversible).
//!
//! Revocation resets the sign-in sessions' valid-from time, so refresh tokens and session
//! cookies stop working. Access tokens already issued live on until they expire (up to about 90
//! minutes). Graph returns success for guest users but does not revoke them. Those are reported
//! as not contained by revocation and, when the step allows, disabled instead.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::Method;
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};

use crate::graph::user_path;
use crate::http::{Api, Http};
use crate::ids::USER;
use crate::options::{flag, invalid, unknown_keys};

pub(crate) const ENABLED: &str = "entra.user_enabled";
pub(crate) const SESSIONS: &str = "entra.user_sessions";

const OPTIONS: &[&str] = &["disable", "revoke_sessions", "disable_guests"];

pub(crate) struct RevokeUser {
    http: Arc<Http>,
}

impl RevokeUser {
    pub(crate) fn new(http: Arc<Http>) -> Self {
        RevokeUser { http }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct UserOptions {
    disable: bool,
    revoke_sessions: bool,
    disable_guests: bool,
}

fn parse(options: &Map<String, Value>) -> Result<UserOptions, Vec<OptionProblem>> {
    let mut problems = unknown_keys(options, OPTIONS);
    let parsed = UserOptions {
        disable: flag(options, "disable", true, &mut problems),
        revoke_sessions: flag(options, "revoke_sessions", true, &mut problems),
        disable_guests: flag(options, "disable_guests", false, &mut problems),
    };
    if !parsed.disable && !parsed.revoke_sessions && problems.is_empty() {
        problems.push(OptionProblem { key: None, message: "both disable and revoke_sessions are false: the step would change nothing".to_string() });
    }
    if problems.is_empty() { Ok(parsed) } else { Err(problems) }
}

#[async_trait]
impl Action for RevokeUser {
    fn kind(&self) -> ActionKind {
        ActionKind::Revoke
    }

    fn resource_type(&self) -> &'static str {
        USER
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        parse(options).err().unwrap_or_default()
    }

    fn option_names(&self) -> Vec<&'static str> {
        OPTIONS.to_vec()
    }

    fn irreversible_options(&self, options: &Map<String, Value>) -> Vec<String> {
        match parse(options) {
            Ok(parsed) if parsed.revoke_sessions => vec!["revoke_sessions: true (the default)".to_string()],
            _ => Vec::new(),
        }
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let path = user_path(&target.id);
        let mut user = self.http.get(context, Api::Graph, &format!("{path}?$select=id,userPrincipalName,displayName,accountEnabled,userType,signInSessionsValidFromDateTime")).await?.body;
        // OData annotations such as `@odata.context` describe the response, not the user, and a
        // plan of many users would carry one of about 150 bytes for each.
        if let Some(fields) = user.as_object_mut() {
            fields.retain(|key, _| !key.starts_with("@odata."));
        }
        let roles = self.http.get(context, Api::Graph, &format!("{path}/memberOf/microsoft.graph.directoryRole")).await?.body;
        let roles: Vec<Value> = roles["value"].as_array().map(|roles| roles.iter().filter_map(|role| role.get("displayName").cloned()).collect()).unwrap_or_default();
        Ok(json!({ "user": user, "directory_roles": roles }))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let options = parse(options).map_err(invalid)?;
        let user = &state["user"];
        let id = user["id"].as_str().unwrap_or(&target.id).to_string();
        let name = user["userPrincipalName"].as_str().unwrap_or(&target.id).to_string();
        let guest = user["userType"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("Guest"));
        let mut plan = TargetPlan { state: state.clone(), ..TargetPlan::default() };
        let disable = options.disable || (guest && options.disable_guests);

        if guest && options.revoke_sessions {
            plan.notes.push(format!("{name} is a guest (external) user: not contained by revocation, which Graph accepts but does not apply to guests"));
            if !disable {
                plan.uncontainable = Some(format!("not contained: {name} is a guest user, whom revocation does not reach; set `disable_guests: true` to disable the account instead"));
                return Ok(plan);
            }
        }

        // Graph may refuse to disable an administrator with the permissions at hand. Revocation
        // goes first for such a user, so that a refused disable does not leave the sessions alive.
        let holds_roles = state["directory_roles"].as_array().is_some_and(|roles| !roles.is_empty());
        let mut operations = Vec::new();
        if disable {
            if user["accountEnabled"] == false {
                plan.notes.push(format!("{name} is already disabled"));
            } else {
                operations.push(Operation {
                    id: "account_enabled".to_string(),
                    kind: ENABLED.to_string(),
                    subject: id.clone(),
                    description: format!("disable the account of {name} (accountEnabled=false): no new sign-in"),
                    prior: json!({ "accountEnabled": user["accountEnabled"] }),
                    desired: json!({ "accountEnabled": false }),
                    reversible: true,
                });
            }
        }
        let disabled_already = user["accountEnabled"] == false;
        if options.revoke_sessions && !guest && disabled_already {
            plan.notes.push(format!("{name} is disabled, so Entra refuses its sign-ins and refresh tokens: sessions are not revoked again"));
        }
        if options.revoke_sessions && !guest && !disabled_already {
            let revoke = Operation {
                id: "sessions".to_string(),
                kind: SESSIONS.to_string(),
                subject: id.clone(),
                description: format!(
                    "revoke every sign-in session of {name} (revokeSignInSessions): refresh tokens and session cookies stop working; access tokens already issued live on for up to about 90 minutes. Rollback cannot restore the sessions"
                ),
                prior: json!({ "signInSessionsValidFromDateTime": user["signInSessionsValidFromDateTime"] }),
                desired: json!({ "revoked": true }),
                reversible: false,
            };
            if holds_roles {
                operations.insert(0, revoke);
            } else {
                operations.push(revoke);
            }
        }
        plan.operations = operations;

        let roles = state["directory_roles"].as_array().cloned().unwrap_or_default();
        if !roles.is_empty() && disable {
            let names: Vec<String> = roles.iter().filter_map(Value::as_str).map(str::to_string).collect();
            plan.notes.push(format!(
                "{name} holds directory roles ({}): disabling an administrator needs a role at least as privileged (Privileged Authentication Administrator for the highest); \
                 with User.EnableDisableAccount.All alone, Graph refuses with 403",
                names.join(", ")
            ));
        }
        Ok(plan)
    }

    async fn read(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let path = user_path(&operation.subject);
        let user = self.http.get(context, Api::Graph, &format!("{path}?$select=id,accountEnabled,signInSessionsValidFromDateTime")).await?.body;
        Ok(match operation.kind.as_str() {
            ENABLED => json!({ "accountEnabled": user["accountEnabled"] }),
            _ => json!({ "signInSessionsValidFromDateTime": user["signInSessionsValidFromDateTime"] }),
        })
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        match operation.kind.as_str() {
            // A valid-from time other than the prior one means sessions were revoked since.
            SESSIONS if *current == operation.prior => Assessment::Prior,
            SESSIONS => Assessment::Applied,
            _ => operation.assess_exact(current, applied.map(|a| json!({ "accountEnabled": a["accountEnabled"] })).as_ref()),
        }
    }

    async fn apply(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let path = user_path(&operation.subject);
        match operation.kind.as_str() {
            ENABLED => {
                self.http.set_account_enabled(context, &path, false).await.map_err(|error| admin_hint(error, &operation.subject))?;
                Ok(json!({ "accountEnabled": false }))
            }
            SESSIONS => {
                self.http.send(context, Api::Graph, Method::Post, &format!("{path}/revokeSignInSessions"), None, None).await?;
                Ok(json!({ "revoked": true, "at": chrono::Utc::now().to_rfc3339() }))
            }
            other => Err(ActionError::new(ErrorKind::Invalid, format!("unknown operation kind {other}"))),
        }
    }

    async fn revert(&self, context: &CallContext, _target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        match operation.kind.as_str() {
            ENABLED => {
                let prior = operation.prior["accountEnabled"].as_bool().unwrap_or(true);
                self.http.set_account_enabled(context, &user_path(&operation.subject), prior).await?;
                Ok(Vec::new())
            }
            _ => Ok(vec![format!("the sign-in sessions of {} stay revoked: the user signs in again", operation.subject)]),
        }
    }
}

/// Adds what a 403 on disabling a user usually means.
fn admin_hint(error: ActionError, user: &str) -> ActionError {
    if error.kind != ErrorKind::AccessDenied {
        return error;
    }
    let message = format!(
        "{}; {user} may hold an administrator role that the configured permissions cannot disable (a role at least as privileged is needed)",
        error.message
    );
    ActionError { message, ..error }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target { resource_type: USER.into(), id: "alice@contoso.com".into(), region: None, account: None }
    }

    fn state(user_type: &str, enabled: bool, roles: Value) -> Value {
        json!({ "user": { "id": "u1", "userPrincipalName": "alice@contoso.com", "accountEnabled": enabled, "userType": user_type, "signInSessionsValidFromDateTime": "2026-01-01T00:00:00Z" }, "directory_roles": roles })
    }

    #[test]
    fn member_is_disabled_and_revoked_irreversibly() {
        let action = RevokeUser { http: Arc::new(crate::test_http()) };
        let plan = action.plan(&target(), &Map::new(), &state("Member", true, json!([]))).unwrap();
        assert_eq!(plan.operations.len(), 2);
        assert!(plan.operations[0].reversible);
        assert!(!plan.operations[1].reversible);
        assert!(plan.operations[1].description.contains("90 minutes"));
        assert_eq!(action.irreversible_options(&Map::new()).len(), 1);
    }

    #[test]
    fn disabled_member_needs_nothing() {
        let action = RevokeUser { http: Arc::new(crate::test_http()) };
        let plan = action.plan(&target(), &Map::new(), &state("Member", false, json!([]))).unwrap();
        assert!(plan.operations.is_empty());
        assert!(plan.notes.iter().any(|note| note.contains("already disabled")));
    }

    #[test]
    fn guest_is_not_contained_by_revocation() {
        let action = RevokeUser { http: Arc::new(crate::test_http()) };
        let options = json!({ "disable": false }).as_object().unwrap().clone();
        let plan = action.plan(&target(), &options, &state("Guest", true, json!([]))).unwrap();
        assert!(plan.uncontainable.unwrap().contains("guest"));
        let options = json!({ "disable": false, "disable_guests": true }).as_object().unwrap().clone();
        let plan = action.plan(&target(), &options, &state("Guest", true, json!([]))).unwrap();
        assert_eq!(plan.operations.len(), 1);
        assert_eq!(plan.operations[0].kind, ENABLED);
        assert!(plan.notes[0].contains("not contained by revocation"));
    }

    #[test]
    fn admin_roles_are_named_in_the_plan() {
        let action = RevokeUser { http: Arc::new(crate::test_http()) };
        let plan = action.plan(&target(), &Map::new(), &state("Member", true, json!(["Global Administrator"]))).unwrap();
        assert!(plan.notes.iter().any(|note| note.contains("Global Administrator")));
    }
}
