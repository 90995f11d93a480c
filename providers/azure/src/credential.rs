//! The credential chain: client secret from the environment, workload identity, managed
//! identity, then the Azure CLI, tried in that order.
//!
//! The provider builds the chain itself, rather than using the SDK's default one. So it can log
//! which credential was chosen (never the secret), and tests can leave out the managed identity,
//! which calls the instance metadata address.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use azure_core::auth::{AccessToken, TokenCredential};
use azure_identity::{AzureCliCredential, ClientSecretCredential, TokenCredentialOptions, VirtualMachineManagedIdentityCredential, WorkloadIdentityCredential};

/// One link of the chain: its name, for logs and errors, and the credential.
struct Link {
    name: &'static str,
    credential: Arc<dyn TokenCredential>,
    /// True when the environment names this credential explicitly (a client secret, a
    /// certificate, a federated token file). Its failure ends the chain: falling back to another
    /// identity, such as the Azure CLI's login, would act as someone the responder did not pick.
    configured: bool,
}

/// Tries each configured credential in order and keeps the first that gives a token.
pub(crate) struct CredentialChain {
    links: Vec<Link>,
    chosen: Mutex<Option<usize>>,
}

impl std::fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.links.iter().map(|link| link.name).collect();
        f.debug_struct("CredentialChain").field("links", &names).finish()
    }
}

impl CredentialChain {
    /// Builds the chain from the environment. The client secret and workload identity links
    /// exist only when their variables are set; the managed identity only when `managed_identity`.
    pub(crate) fn from_env(authority_host: &str, managed_identity: bool) -> CredentialChain {
        let mut options = TokenCredentialOptions::default();
        options.set_authority_host(authority_host.to_string());
        let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.is_empty());
        let mut links = Vec::new();

        if set("AZURE_CLIENT_SECRET") {
            match ClientSecretCredential::create(options.clone()) {
                Ok(credential) => links.push(Link { name: "client secret (AZURE_CLIENT_SECRET)", credential: Arc::new(credential), configured: true }),
                Err(error) => tracing::debug!("client secret credential not usable: {error}"),
            }
        }

        #[cfg(feature = "certificate")]
        if set("AZURE_CLIENT_CERTIFICATE_PATH") {
            match azure_identity::ClientCertificateCredential::create(azure_identity::ClientCertificateCredentialOptions::new(options.clone(), false)) {
                Ok(credential) => links.push(Link { name: "client certificate (AZURE_CLIENT_CERTIFICATE_PATH)", credential: Arc::new(credential), configured: true }),
                Err(error) => tracing::debug!("client certificate credential not usable: {error}"),
            }
        }

        if set("AZURE_FEDERATED_TOKEN_FILE") {
            match WorkloadIdentityCredential::create(options.clone()) {
                Ok(credential) => links.push(Link { name: "workload identity (AZURE_FEDERATED_TOKEN_FILE)", credential: Arc::new(credential), configured: true }),
                Err(error) => tracing::debug!("workload identity credential not usable: {error}"),
            }
        }

        if managed_identity {
            links.push(Link { name: "managed identity", credential: Arc::new(VirtualMachineManagedIdentityCredential::new(options.clone())), configured: false });
        }

        links.push(Link { name: "Azure CLI", credential: Arc::new(AzureCliCredential::new()), configured: false });
        CredentialChain { links, chosen: Mutex::new(None) }
    }

    /// Returns the names of the links, in the order they are tried.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.links.iter().map(|link| link.name).collect()
    }

    /// Returns the name of the credential that gave the last token, if any did.
    pub(crate) fn chosen(&self) -> Option<&'static str> {
        let chosen = *self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        chosen.map(|index| self.links[index].name)
    }
}

/// Formats an error with its causes: azure_identity puts the token endpoint's response (such as
/// `AADSTS7000215: Invalid client secret provided`) in a cause, not in the message.
fn error_chain(error: &azure_core::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    let mut last = None;
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        last = Some(cause);
        source = cause.source();
    }
    // The oauth2 crate's "Server returned error response" shows the response only in its debug
    // form, which contains the endpoint's error code and description, never the secret sent.
    if let Some(cause) = last.filter(|cause| cause.to_string().contains("error response")) {
        let debug = format!("{cause:?}");
        let description = debug.split("error_description: Some(\"").nth(1).and_then(|rest| rest.split("\")").next());
        match description {
            Some(description) => text.push_str(&format!(": {}", description.replace("\\r\\n", " "))),
            None => text.push_str(&format!(" ({debug})")),
        }
    }
    text
}

#[async_trait]
impl TokenCredential for CredentialChain {
    async fn get_token(&self, scopes: &[&str]) -> azure_core::Result<AccessToken> {
        let chosen = *self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = chosen {
            return self.links[index].credential.get_token(scopes).await;
        }

        let mut failures = Vec::new();
        for (index, link) in self.links.iter().enumerate() {
            match link.credential.get_token(scopes).await {
                Ok(token) => {
                    tracing::debug!(credential = link.name, "Azure credential chosen");
                    *self.chosen.lock().unwrap_or_else(|e| e.into_inner()) = Some(index);
                    return Ok(token);
                }
                Err(error) => {
                    let detail = error_chain(&error);
                    tracing::debug!(credential = link.name, "Azure credential gave no token: {detail}");
                    failures.push(format!("{}: {detail}", link.name));
                    if link.configured {
                        break;
                    }
                }
            }
        }
        Err(azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, || {
            format!("no Azure credential gave a token; tried {}", failures.join("; "))
        }))
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        for link in &self.links {
            link.credential.clear_cache().await?;
        }
        Ok(())
    }
}
