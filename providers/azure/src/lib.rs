//! The Azure and Entra ID provider of contain.
//!
//! Resource types and their actions:
//!
//! - `azure.compute.vm`: isolate (`isolate`) and block (`block`).
//! - `azure.network.nic`: isolate.
//! - `azure.network.nsg`: block.
//! - `azure.network.ip_group`: block (`ip_group`).
//! - `azure.network.vnet`, `azure.network.subnet`: isolate (`isolate_network`).
//! - `azure.entra.user`: revoke (`entra_user`).
//! - `azure.entra.service_principal`: disable_sso (`service_principal`).
//! - `azure.entra.application`: revoke (`app_credentials`).
//! - `azure.entra.domain`: disable_sso (`federation`).
//!
//! `http` is the one client, on azure_core's pipeline with its retries off. `lro` polls
//! long-running operations, and `arm` reads and writes whole resources with `If-Match`.
//! `credential` is the credential chain, and `cloud` contains the endpoints of each Azure cloud.

mod app_credentials;
mod arm;
mod assess;
mod batch;
mod block;
mod block_options;
mod cloud;
mod credential;
mod entra_user;
mod federation;
mod graph;
mod http;
mod ids;
mod ip_group;
mod isolate;
mod isolate_network;
mod isolation_group;
mod lro;
mod nsg_model;
mod options;
mod pacing;
mod priority;
mod provider;
mod service_principal;

pub use cloud::{ARM_ENDPOINT_VAR, AUTHORITY_HOST_VAR, Cloud, Endpoints, GRAPH_ENDPOINT_VAR};
pub use ids::{APPLICATION, DOMAIN, IP_GROUP, NIC, NSG, SERVICE_PRINCIPAL, SUBNET, USER, VM, VNET};
pub use provider::{AzureProvider, AzureSettings};

/// Builds a client for plan tests, which never sends a request.
#[cfg(test)]
pub(crate) fn test_http() -> http::Http {
    http::Http::new(Endpoints::with_overrides(Cloud::Public, |_| Some("http://127.0.0.1:9".to_string())), false, http::Timing::default())
}
