//! `disable_sso` for `azure.entra.service_principal`: switch off sign-in to a SaaS application
//! at the identity provider, by setting `accountEnabled=false` on its service principal, so that
//! Entra issues no new token for the application to anyone. Optionally revokes the sign-in
//! sessions of the users assigned to it (irreversible).

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::Method;
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};

use crate::graph::{service_principal_path, user_path};
use crate::http::{Api, Http};
use crate::ids::SERVICE_PRINCIPAL;
use crate::options::{flag, invalid, unknown_keys};

pub(crate) const ENABLED: &str = "entra.service_principal_enabled";
pub(crate) const USER_SESSIONS: &str = "entra.assigned_user_sessions";

const OPTIONS: &[&str] = &["revoke_assigned_users"];

pub(crate) struct DisableApplication {
    http: Arc<Http>,
}

impl DisableApplication {
    pub(crate) fn new(http: Arc<Http>) -> Self {
        DisableApplication { http }
    }
}

fn revoke_assigned(options: &Map<String, Value>) -> Result<bool, Vec<OptionProblem>> {
    let mut problems = unknown_keys(options, OPTIONS);
    let value = flag(options, "revoke_assigned_users", false, &mut problems);
    if problems.is_empty() { Ok(value) } else { Err(problems) }
}

#[async_trait]
impl Action for DisableApplication {
    fn kind(&self) -> ActionKind {
        ActionKind::DisableSso
    }

    fn resource_type(&self) -> &'static str {
        SERVICE_PRINCIPAL
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        revoke_assigned(options).err().unwrap_or_default()
    }

    fn option_names(&self) -> Vec<&'static str> {
        OPTIONS.to_vec()
    }

    fn irreversible_options(&self, options: &Map<String, Value>) -> Vec<String> {
        if revoke_assigned(options).unwrap_or(false) { vec!["revoke_assigned_users: true".to_string()] } else { Vec::new() }
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let path = service_principal_path(&target.id);
        let principal = self.http.get(context, Api::Graph, &format!("{path}?$select=id,appId,displayName,accountEnabled")).await?.body;
        let id = principal["id"].as_str().unwrap_or_default().to_string();
        let assigned = self.http.get(context, Api::Graph, &format!("/servicePrincipals/{id}/appRoleAssignedTo")).await?.body;
        let users: Vec<Value> = assigned["value"]
            .as_array()
            .map(|items| items.iter().filter(|a| a["principalType"] == "User").map(|a| json!({ "id": a["principalId"], "name": a["principalDisplayName"] })).collect())
            .unwrap_or_default();
        let groups = assigned["value"].as_array().map(|items| items.iter().filter(|a| a["principalType"] == "Group").count()).unwrap_or(0);
        Ok(json!({ "service_principal": principal, "assigned_users": users, "assigned_groups": groups }))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let revoke = revoke_assigned(options).map_err(invalid)?;
        let principal = &state["service_principal"];
        let id = principal["id"].as_str().unwrap_or(&target.id).to_string();
        let name = principal["displayName"].as_str().unwrap_or(&id).to_string();
        let mut plan = TargetPlan { state: state.clone(), ..TargetPlan::default() };

        if principal["accountEnabled"] == false {
            plan.notes.push(format!("sign-in to {name} is already disabled"));
        } else {
            plan.operations.push(Operation {
                id: "account_enabled".to_string(),
                kind: ENABLED.to_string(),
                subject: id.clone(),
                description: format!("disable sign-in to {name} (service principal accountEnabled=false): Entra issues no new token for it to anyone"),
                prior: json!({ "accountEnabled": principal["accountEnabled"] }),
                desired: json!({ "accountEnabled": false }),
                reversible: true,
            });
        }
        let users = state["assigned_users"].as_array().cloned().unwrap_or_default();
        if revoke {
            for user in &users {
                let user_id = user["id"].as_str().unwrap_or_default();
                plan.operations.push(Operation {
                    id: format!("sessions:{user_id}"),
                    kind: USER_SESSIONS.to_string(),
                    subject: user_id.to_string(),
                    description: format!("revoke the sign-in sessions of assigned user {} (irreversible; access tokens already issued live on for up to about 90 minutes)", user["name"].as_str().unwrap_or(user_id)),
                    prior: json!({ "revoked": false }),
                    desired: json!({ "revoked": true }),
                    reversible: false,
                });
            }
            if state["assigned_groups"].as_u64().unwrap_or(0) > 0 {
                plan.notes.push(format!("{} group(s) are assigned to {name}: their members' sessions are not revoked", state["assigned_groups"]));
            }
        }
        plan.notes.push(format!(
            "sessions that {name} itself holds (its own cookies and tokens) outlive this until they expire or the application ends them; {} user(s) are assigned to it",
            users.len()
        ));
        Ok(plan)
    }

    async fn read(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        match operation.kind.as_str() {
            ENABLED => Ok(json!({ "accountEnabled": self.http.account_enabled(context, &service_principal_path(&operation.subject)).await? })),
            // Revocation leaves nothing to compare but the time; the journal's outcome decides.
            _ => Ok(json!({ "revoked": false })),
        }
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        match operation.kind.as_str() {
            ENABLED => operation.assess_exact(current, applied.map(|a| json!({ "accountEnabled": a["accountEnabled"] })).as_ref()),
            _ if applied.is_some() => Assessment::Applied,
            _ => Assessment::Prior,
        }
    }

    async fn apply(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        match operation.kind.as_str() {
            ENABLED => {
                self.http.set_account_enabled(context, &service_principal_path(&operation.subject), false).await?;
                Ok(json!({ "accountEnabled": false }))
            }
            USER_SESSIONS => {
                self.http.send(context, Api::Graph, Method::Post, &format!("{}/revokeSignInSessions", user_path(&operation.subject)), None, None).await?;
                Ok(json!({ "revoked": true }))
            }
            other => Err(ActionError::new(ErrorKind::Invalid, format!("unknown operation kind {other}"))),
        }
    }

    async fn revert(&self, context: &CallContext, _target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        match operation.kind.as_str() {
            ENABLED => {
                let prior = operation.prior["accountEnabled"].as_bool().unwrap_or(true);
                self.http.set_account_enabled(context, &service_principal_path(&operation.subject), prior).await?;
                Ok(Vec::new())
            }
            _ => Ok(vec![format!("the sign-in sessions of user {} stay revoked", operation.subject)]),
        }
    }
}
