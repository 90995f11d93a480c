//! Microsoft Graph paths and small helpers shared by the Entra ID actions.

use azure_core::Method;
use contain_core::{ActionError, CallContext};
use serde_json::Value;

use crate::http::{Api, Http};

/// Returns the Graph path of a user, by object id or user principal name. A guest's name contains
/// `#EXT#`, whose `#` must be escaped in a path.
pub(crate) fn user_path(user: &str) -> String {
    format!("/users/{}", user.replace('%', "%25").replace('#', "%23").replace('/', "%2F"))
}

/// Returns the Graph path of a service principal, by object id or `appId:<application id>`.
pub(crate) fn service_principal_path(id: &str) -> String {
    match id.strip_prefix("appId:") {
        Some(app_id) => format!("/servicePrincipals(appId='{app_id}')"),
        None => format!("/servicePrincipals/{id}"),
    }
}

/// Returns the Graph path of an app registration, by object id or `appId:<application id>`.
pub(crate) fn application_path(id: &str) -> String {
    match id.strip_prefix("appId:") {
        Some(app_id) => format!("/applications(appId='{app_id}')"),
        None => format!("/applications/{id}"),
    }
}

impl Http {
    /// Sets `accountEnabled` of a user or service principal.
    pub(crate) async fn set_account_enabled(&self, context: &CallContext, path: &str, enabled: bool) -> Result<(), ActionError> {
        let body = serde_json::json!({ "accountEnabled": enabled });
        self.send(context, Api::Graph, Method::Patch, path, Some(&body), None).await.map(|_| ())
    }

    /// Reads `accountEnabled` of a user or service principal.
    pub(crate) async fn account_enabled(&self, context: &CallContext, path: &str) -> Result<Value, ActionError> {
        let reply = self.get(context, Api::Graph, &format!("{path}?$select=id,accountEnabled")).await?;
        Ok(reply.body.get("accountEnabled").cloned().unwrap_or(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_names_are_escaped() {
        assert_eq!(user_path("bob_fabrikam.com#EXT#@contoso.onmicrosoft.com"), "/users/bob_fabrikam.com%23EXT%23@contoso.onmicrosoft.com");
        assert_eq!(service_principal_path("appId:00000000-0000-0000-0000-000000000001"), "/servicePrincipals(appId='00000000-0000-0000-0000-000000000001')");
    }
}
