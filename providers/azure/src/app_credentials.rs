//! `revoke` for `azure.entra.application`: remove the client secrets and certificates added to an
//! app registration after a given time, the usual persistence of an attacker who took over an
//! application.
//!
//! A removed secret or certificate cannot be restored, so the step needs `irreversible: allow`.
//! The journal keeps each removed credential's key id, type, display name and dates.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::Method;
use chrono::{DateTime, Utc};
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};

use crate::graph::application_path;
use crate::http::{Api, Http};
use crate::ids::APPLICATION;
use crate::options::{invalid, unknown_keys};

pub(crate) const PASSWORD: &str = "entra.app_password";
pub(crate) const KEY: &str = "entra.app_key";

const OPTIONS: &[&str] = &["added_after"];

pub(crate) struct RevokeCredentials {
    http: Arc<Http>,
}

impl RevokeCredentials {
    pub(crate) fn new(http: Arc<Http>) -> Self {
        RevokeCredentials { http }
    }
}

fn added_after(options: &Map<String, Value>) -> Result<Option<DateTime<Utc>>, Vec<OptionProblem>> {
    let mut problems = unknown_keys(options, OPTIONS);
    let time = match options.get("added_after") {
        None => {
            problems.push(OptionProblem { key: Some("added_after".into()), message: "`added_after` is required: the time (RFC 3339, such as 2026-12-01T00:00:00Z) after which credentials were added by the attacker".into() });
            None
        }
        Some(value) if contain_core::is_template(value) => None,
        Some(value) => match value.as_str().and_then(|text| DateTime::parse_from_rfc3339(text).ok()) {
            Some(time) => Some(time.with_timezone(&Utc)),
            None => {
                problems.push(OptionProblem { key: Some("added_after".into()), message: format!("invalid added_after {value}: expected an RFC 3339 time such as 2026-12-01T00:00:00Z") });
                None
            }
        },
    };
    if problems.is_empty() { Ok(time) } else { Err(problems) }
}

/// Extracts the journaled facts of a credential: never its secret or key.
fn facts(credential: &Value, kind: &str) -> Value {
    json!({
        "keyId": credential["keyId"],
        "type": kind,
        "displayName": credential["displayName"],
        "startDateTime": credential["startDateTime"],
        "endDateTime": credential["endDateTime"],
        "hint": credential["hint"],
        "usage": credential["usage"],
    })
}

fn started_after(credential: &Value, time: DateTime<Utc>) -> bool {
    credential["startDateTime"].as_str().and_then(|text| DateTime::parse_from_rfc3339(text).ok()).is_some_and(|start| start.with_timezone(&Utc) > time)
}

#[async_trait]
impl Action for RevokeCredentials {
    fn kind(&self) -> ActionKind {
        ActionKind::Revoke
    }

    fn resource_type(&self) -> &'static str {
        APPLICATION
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        added_after(options).err().unwrap_or_default()
    }

    fn option_names(&self) -> Vec<&'static str> {
        OPTIONS.to_vec()
    }

    fn irreversible_options(&self, _options: &Map<String, Value>) -> Vec<String> {
        vec!["removing application credentials (a secret or certificate cannot be restored)".to_string()]
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let path = format!("{}?$select=id,appId,displayName,passwordCredentials,keyCredentials", application_path(&target.id));
        let application = self.http.get(context, Api::Graph, &path).await?.body;
        let passwords: Vec<Value> = application["passwordCredentials"].as_array().map(|items| items.iter().map(|c| facts(c, "secret")).collect()).unwrap_or_default();
        let keys: Vec<Value> = application["keyCredentials"].as_array().map(|items| items.iter().map(|c| facts(c, "certificate")).collect()).unwrap_or_default();
        Ok(json!({ "id": application["id"], "appId": application["appId"], "displayName": application["displayName"], "secrets": passwords, "certificates": keys }))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let time = added_after(options)
            .map_err(invalid)?
            .ok_or_else(|| ActionError::new(ErrorKind::Invalid, "added_after has no value"))?;
        let id = state["id"].as_str().unwrap_or(&target.id).to_string();
        let name = state["displayName"].as_str().unwrap_or(&id).to_string();
        let mut plan = TargetPlan { state: state.clone(), ..TargetPlan::default() };
        let mut retained = 0;
        for (list, kind, label) in [("secrets", PASSWORD, "client secret"), ("certificates", KEY, "certificate")] {
            for credential in state[list].as_array().cloned().unwrap_or_default() {
                if !started_after(&credential, time) {
                    retained += 1;
                    continue;
                }
                let key_id = credential["keyId"].as_str().unwrap_or_default();
                plan.operations.push(Operation {
                    id: format!("{}:{key_id}", if kind == PASSWORD { "secret" } else { "certificate" }),
                    kind: kind.to_string(),
                    subject: id.clone(),
                    description: format!(
                        "remove the {label} {key_id} (\"{}\", valid from {}, a date its creator may set) from {name}: it cannot be restored",
                        credential["displayName"].as_str().unwrap_or(""),
                        credential["startDateTime"].as_str().unwrap_or("at an unknown time")
                    ),
                    prior: json!({ "present": true, "credential": credential }),
                    desired: json!({ "present": false }),
                    reversible: false,
                });
            }
        }
        if plan.operations.is_empty() {
            plan.notes.push(format!("no credential of {name} was added after {}: nothing to remove", time.to_rfc3339()));
        }
        plan.notes.push(format!("{retained} credential(s) added before {} are kept; tokens already issued with a removed credential live on until they expire (about an hour)", time.to_rfc3339()));
        Ok(plan)
    }

    async fn read(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let application = self.http.get(context, Api::Graph, &format!("{}?$select=id,passwordCredentials,keyCredentials", application_path(&operation.subject))).await?.body;
        let list = if operation.kind == PASSWORD { "passwordCredentials" } else { "keyCredentials" };
        let key_id = &operation.prior["credential"]["keyId"];
        let present = application[list].as_array().is_some_and(|items| items.iter().any(|c| &c["keyId"] == key_id));
        Ok(json!({ "present": present }))
    }

    fn assess(&self, _operation: &Operation, current: &Value, _applied: Option<&Value>) -> Assessment {
        if current["present"] == true { Assessment::Prior } else { Assessment::Applied }
    }

    async fn apply(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let path = application_path(&operation.subject);
        let key_id = operation.prior["credential"]["keyId"].clone();
        match operation.kind.as_str() {
            PASSWORD => {
                self.http.send(context, Api::Graph, Method::Post, &format!("{path}/removePassword"), Some(&json!({ "keyId": key_id })), None).await?;
            }
            KEY => {
                // Graph removes a certificate by writing the list of those that remain.
                let application = self.http.get(context, Api::Graph, &format!("{path}?$select=id,keyCredentials")).await?.body;
                let remaining: Vec<Value> = application["keyCredentials"].as_array().cloned().unwrap_or_default().into_iter().filter(|c| c["keyId"] != key_id).collect();
                self.http.send(context, Api::Graph, Method::Patch, &path, Some(&json!({ "keyCredentials": remaining })), None).await?;
            }
            other => return Err(ActionError::new(ErrorKind::Invalid, format!("unknown operation kind {other}"))),
        }
        Ok(json!({ "present": false }))
    }

    async fn revert(&self, _context: &CallContext, _target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        Ok(vec![format!("credential {} of {} stays removed: issue a new one if the application needs it", operation.prior["credential"]["keyId"], operation.subject)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_credentials_added_after_the_time_are_removed() {
        let action = RevokeCredentials { http: Arc::new(crate::test_http()) };
        let state = json!({
            "id": "a1", "displayName": "payroll",
            "secrets": [{ "keyId": "old", "startDateTime": "2026-01-01T00:00:00Z" }, { "keyId": "new", "startDateTime": "2026-12-02T00:00:00Z" }],
            "certificates": [{ "keyId": "cert", "startDateTime": "2026-12-03T00:00:00Z" }],
        });
        let options = json!({ "added_after": "2026-12-01T00:00:00Z" }).as_object().unwrap().clone();
        let target = Target { resource_type: APPLICATION.into(), id: "a1".into(), region: None, account: None };
        let plan = action.plan(&target, &options, &state).unwrap();
        let ids: Vec<&str> = plan.operations.iter().map(|op| op.id.as_str()).collect();
        assert_eq!(ids, ["secret:new", "certificate:cert"]);
        assert!(plan.operations.iter().all(|op| !op.reversible));
        assert!(plan.notes.iter().any(|note| note.starts_with("1 credential")));
        assert!(action.check_options(&Map::new())[0].message.contains("required"));
    }
}
