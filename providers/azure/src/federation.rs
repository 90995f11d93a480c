//! `disable_sso` for `azure.entra.domain`: convert a federated domain to managed sign-in, when
//! the federation server is compromised (forged SAML tokens, for example).
//!
//! Every user of the domain loses single sign-on, and can sign in only if password hash sync is
//! on. The complete federation configuration is journaled before the change, and the step
//! refuses to proceed when the snapshot lacks a field it needs to recreate it. Rollback recreates
//! the configuration field by field and reads it back; on an error while recreating, it reads
//! the domain again before deciding what happened.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::Method;
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan};
use serde_json::{Map, Value, json};

use crate::http::{Api, Http};
use crate::ids::DOMAIN;

pub(crate) const FEDERATION: &str = "entra.domain_federation";

/// The fields without which a federation cannot be recreated as it was.
const REQUIRED: &[&str] = &["issuerUri", "passiveSignInUri", "signOutUri", "signingCertificate", "preferredAuthenticationProtocol"];

/// Fields Graph sets itself, left out when the configuration is recreated.
const READ_ONLY: &[&str] = &["id", "@odata.context", "@odata.type", "@odata.id"];

pub(crate) struct DisableFederation {
    http: Arc<Http>,
}

impl DisableFederation {
    pub(crate) fn new(http: Arc<Http>) -> Self {
        DisableFederation { http }
    }

    async fn configurations(&self, context: &CallContext, domain: &str) -> Result<Vec<Value>, ActionError> {
        let reply = self.http.get(context, Api::Graph, &format!("/domains/{domain}/federationConfiguration")).await?;
        Ok(reply.body["value"].as_array().cloned().unwrap_or_default())
    }

    async fn authentication_type(&self, context: &CallContext, domain: &str) -> Result<Value, ActionError> {
        let reply = self.http.get(context, Api::Graph, &format!("/domains/{domain}")).await?;
        Ok(reply.body["authenticationType"].clone())
    }
}

/// Returns the configuration as it is sent to recreate it: every field but those Graph sets.
fn recreatable(configuration: &Value) -> Value {
    let mut fields = configuration.as_object().cloned().unwrap_or_default();
    fields.retain(|key, _| !READ_ONLY.contains(&key.as_str()));
    Value::Object(fields)
}

/// Lists the fields of the snapshot that are missing or empty.
fn missing_fields(configuration: &Value) -> Vec<&'static str> {
    REQUIRED.iter().copied().filter(|field| configuration[*field].as_str().is_none_or(str::is_empty)).collect()
}

/// Lists the fields of `read` that differ from `snapshot`, for the rollback's check.
fn differences(snapshot: &Value, read: &Value) -> Vec<String> {
    let expected = recreatable(snapshot);
    expected.as_object().map(|fields| fields.iter().filter(|(key, value)| &read[key.as_str()] != *value).map(|(key, _)| key.clone()).collect()).unwrap_or_default()
}

#[async_trait]
impl Action for DisableFederation {
    fn kind(&self) -> ActionKind {
        ActionKind::DisableSso
    }

    fn resource_type(&self) -> &'static str {
        DOMAIN
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        crate::options::unknown_keys(options, &[])
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let authentication = self.authentication_type(context, &target.id).await?;
        let configurations = self.configurations(context, &target.id).await?;
        let count = self.http.get(context, Api::Graph, &format!("/users/$count?$filter=endswith(userPrincipalName,'@{}')", target.id)).await?.body;
        let users = match count {
            Value::Number(n) => json!(n),
            Value::String(text) => text.trim().parse::<u64>().map(Value::from).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        Ok(json!({ "authenticationType": authentication, "federation": configurations, "users": users }))
    }

    fn plan(&self, target: &Target, _options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let mut plan = TargetPlan { state: state.clone(), ..TargetPlan::default() };
        let domain = &target.id;
        if state["authenticationType"] == "Managed" {
            plan.notes.push(format!("{domain} already uses managed sign-in: nothing to do"));
            return Ok(plan);
        }
        let configurations = state["federation"].as_array().cloned().unwrap_or_default();
        if configurations.is_empty() {
            plan.uncontainable = Some(format!("{domain} is federated but Graph returned no federation configuration: the snapshot rollback needs is missing, so nothing is changed"));
            return Ok(plan);
        }
        for configuration in &configurations {
            let missing = missing_fields(configuration);
            if !missing.is_empty() {
                plan.uncontainable = Some(format!(
                    "the federation snapshot of {domain} is incomplete (missing {}): rollback could not recreate it, so nothing is changed; read it with Domain-InternalFederation.ReadWrite.All",
                    missing.join(", ")
                ));
                return Ok(plan);
            }
        }
        let users = state["users"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "an unknown number of".to_string());
        plan.operations.push(Operation {
            id: "federation".to_string(),
            kind: FEDERATION.to_string(),
            subject: domain.clone(),
            description: format!(
                "convert {domain} from federated to managed sign-in, after journaling its complete federation configuration (issuer {})",
                configurations[0]["issuerUri"].as_str().unwrap_or_default()
            ),
            prior: json!({ "authenticationType": state["authenticationType"], "federation": configurations }),
            desired: json!({ "authenticationType": "Managed" }),
            reversible: true,
        });
        plan.notes.push(format!(
            "every user of {domain} ({users} users) loses single sign-on and can sign in only if password hash sync is on; tokens the federation server already issued stay valid until they expire"
        ));
        plan.notes.push("rollback recreates the federation configuration with a new id and reads it back field by field".to_string());
        Ok(plan)
    }

    async fn read(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        Ok(json!({ "authenticationType": self.authentication_type(context, &operation.subject).await? }))
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        crate::assess::assess_field(operation, current, applied, "authenticationType")
    }

    async fn apply(&self, context: &CallContext, _target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let body = json!({ "authenticationType": "Managed" });
        self.http.send(context, Api::Graph, Method::Patch, &format!("/domains/{}", operation.subject), Some(&body), None).await?;
        Ok(json!({ "authenticationType": "Managed" }))
    }

    async fn revert(&self, context: &CallContext, _target: &Target, operation: &Operation, _applied: &Value) -> Result<Vec<String>, ActionError> {
        let domain = &operation.subject;
        let snapshots = operation.prior["federation"].as_array().cloned().unwrap_or_default();
        let mut notes = Vec::new();
        for snapshot in &snapshots {
            let present = self.configurations(context, domain).await?;
            if present.iter().any(|read| read["issuerUri"] == snapshot["issuerUri"] && differences(snapshot, read).is_empty()) {
                continue;
            }
            let sent = self.http.send(context, Api::Graph, Method::Post, &format!("/domains/{domain}/federationConfiguration"), Some(&recreatable(snapshot)), None).await;
            let read = self.configurations(context, domain).await?;
            let recreated = read.iter().find(|r| r["issuerUri"] == snapshot["issuerUri"]);
            match (sent, recreated) {
                (_, Some(recreated)) if differences(snapshot, recreated).is_empty() => {
                    notes.push(format!("the federation of {domain} was recreated with id {} (it had {})", recreated["id"], snapshot["id"]));
                }
                (_, Some(recreated)) => {
                    return Err(ActionError::new(
                        ErrorKind::Other,
                        format!("the federation of {domain} was recreated but differs from the journaled one in {}: compare them and correct by hand", differences(snapshot, recreated).join(", ")),
                    ));
                }
                (Err(error), None) => return Err(ActionError { message: format!("recreating the federation of {domain} failed, and a read shows none: {}", error.message), ..error }),
                (Ok(_), None) => return Err(ActionError::new(ErrorKind::Other, format!("Graph accepted the federation of {domain}, but a read shows none"))),
            }
        }
        Ok(notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configuration() -> Value {
        json!({
            "id": "f1", "issuerUri": "http://adfs.contoso.com/adfs/services/trust", "passiveSignInUri": "https://adfs.contoso.com/adfs/ls",
            "signOutUri": "https://adfs.contoso.com/adfs/ls", "signingCertificate": "MIIC", "preferredAuthenticationProtocol": "wsFed",
            "metadataExchangeUri": "https://adfs.contoso.com/adfs/services/trust/mex", "federatedIdpMfaBehavior": "rejectMfaByFederatedIdp",
        })
    }

    #[test]
    fn incomplete_snapshot_refuses_the_change() {
        let action = DisableFederation { http: Arc::new(crate::test_http()) };
        let target = Target { resource_type: DOMAIN.into(), id: "contoso.com".into(), region: None, account: None };
        let mut partial = configuration();
        partial["signingCertificate"] = Value::Null;
        let state = json!({ "authenticationType": "Federated", "federation": [partial], "users": 12 });
        let plan = action.plan(&target, &Map::new(), &state).unwrap();
        assert!(plan.operations.is_empty());
        assert!(plan.uncontainable.unwrap().contains("signingCertificate"));

        let state = json!({ "authenticationType": "Federated", "federation": [configuration()], "users": 12 });
        let plan = action.plan(&target, &Map::new(), &state).unwrap();
        assert_eq!(plan.operations.len(), 1);
        assert!(plan.notes[0].contains("12 users"));
        assert!(plan.notes[0].contains("password hash sync"));
    }

    #[test]
    fn recreate_sends_every_field_but_the_id() {
        let sent = recreatable(&configuration());
        assert!(sent.get("id").is_none());
        assert_eq!(sent["federatedIdpMfaBehavior"], "rejectMfaByFederatedIdp");
        let mut read = configuration();
        read["id"] = json!("f2");
        assert!(differences(&configuration(), &read).is_empty());
        read["signingCertificate"] = json!("other");
        assert_eq!(differences(&configuration(), &read), ["signingCertificate"]);
    }
}
