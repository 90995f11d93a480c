//! `disable_sso` for `azure.entra.service_principal`: switch off sign-in to a SaaS application
//! at the identity provider, by setting `accountEnabled=false` on its service principal, so that
//! Entra issues no new token for the application to anyone. Optionally revokes the sign-in
//! sessions of the users assigned to it (irreversible).

use std::sync::Arc;

use async_trait::async_trait;
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};

use crate::batch::{BATCH_LIMIT, BatchAnswer, BatchRequest};
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

    /// Revokes the sessions of every listed user in Graph batches. When some fail, the error
    /// names the users revoked and those not, for the journal.
    async fn revoke_assigned(&self, context: &CallContext, operation: &Operation) -> Result<Value, ActionError> {
        let ids: Vec<String> = operation.desired["revoked"].as_array().map(|ids| ids.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
        let requests: Vec<BatchRequest> = ids
            .iter()
            .map(|user| BatchRequest { id: user.clone(), method: "POST", url: format!("{}/revokeSignInSessions", user_path(user)), body: None })
            .collect();
        let answers = self.http.batch(context, &requests).await?;
        let (revoked, failed): (Vec<&String>, Vec<&String>) = ids.iter().partition(|user| answers.get(*user).is_some_and(BatchAnswer::succeeded));
        if failed.is_empty() {
            return Ok(json!({ "revoked": revoked }));
        }
        let reasons: Vec<String> = failed
            .iter()
            .map(|user| {
                let answer = &answers[*user];
                let (code, message) = crate::http::error_detail(&answer.body);
                format!("{user}: {} {}{message}", answer.status, code.map(|c| format!("{c}: ")).unwrap_or_default())
            })
            .collect();
        let kind = if failed.iter().all(|user| answers[*user].status == 429) { ErrorKind::Throttled } else { ErrorKind::Other };
        Err(ActionError::new(kind, format!("revoked the sessions of {} user(s) ({}); not of {}", revoked.len(), revoked.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(", "), reasons.join("; "))))
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
        if revoke && !users.is_empty() {
            let ids: Vec<Value> = users.iter().map(|user| user["id"].clone()).collect();
            plan.operations.push(Operation {
                id: "assigned_user_sessions".to_string(),
                kind: USER_SESSIONS.to_string(),
                subject: id.clone(),
                description: format!(
                    "revoke the sign-in sessions of the {} user(s) assigned to {name}, in Graph batches of {BATCH_LIMIT} (irreversible; access tokens already issued live on for up to about 90 minutes)",
                    users.len()
                ),
                prior: json!({ "revoked": [] }),
                desired: json!({ "revoked": ids, "users": users }),
                reversible: false,
            });
        }
        if revoke
            && state["assigned_groups"].as_u64().unwrap_or(0) > 0 {
                plan.notes.push(format!("{} group(s) are assigned to {name}: their members' sessions are not revoked", state["assigned_groups"]));
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
            _ => Ok(json!({ "revoked": [] })),
        }
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        match operation.kind.as_str() {
            ENABLED => operation.assess_exact(current, applied.map(|a| json!({ "accountEnabled": a["accountEnabled"] })).as_ref()),
            // Revocation leaves no state to read: only the value apply returned shows it happened.
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
            USER_SESSIONS => self.revoke_assigned(context, operation).await,
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
            _ => Ok(vec![format!("the sign-in sessions of the users assigned to {} stay revoked", operation.subject)]),
        }
    }
}
