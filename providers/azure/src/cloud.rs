//! The Azure clouds and their endpoints: one setting picks the ARM, Graph and sign-in hosts
//! together, and environment variables override each for tests and private clouds.

use std::fmt;

/// Overrides the ARM base URL.
pub const ARM_ENDPOINT_VAR: &str = "CONTAIN_ARM_ENDPOINT";
/// Overrides the Microsoft Graph base URL (without `/v1.0`).
pub const GRAPH_ENDPOINT_VAR: &str = "CONTAIN_GRAPH_ENDPOINT";
/// The standard variable of the Azure SDKs for the token endpoint's host.
pub const AUTHORITY_HOST_VAR: &str = "AZURE_AUTHORITY_HOST";

/// A national cloud of Azure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cloud {
    #[default]
    Public,
    UsGovernment,
    China,
}

impl Cloud {
    /// Parses the `cloud` setting: `public`, `us_government` or `china`.
    pub fn parse(value: &str) -> Result<Cloud, String> {
        match value {
            "public" | "AzureCloud" => Ok(Cloud::Public),
            "us_government" | "AzureUSGovernment" => Ok(Cloud::UsGovernment),
            "china" | "AzureChinaCloud" => Ok(Cloud::China),
            other => Err(format!("unknown Azure cloud `{other}`: expected public, us_government or china")),
        }
    }

    fn defaults(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Cloud::Public => ("https://management.azure.com", "https://graph.microsoft.com", "https://login.microsoftonline.com"),
            Cloud::UsGovernment => ("https://management.usgovcloudapi.net", "https://graph.microsoft.us", "https://login.microsoftonline.us"),
            Cloud::China => ("https://management.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cloud::Public => "public",
            Cloud::UsGovernment => "us_government",
            Cloud::China => "china",
        })
    }
}

/// The base URLs the provider calls, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub arm: String,
    pub graph: String,
    pub authority: String,
    /// The token audience of ARM: the cloud's ARM host, even when a private endpoint is set.
    pub arm_audience: String,
    pub graph_audience: String,
}

impl Endpoints {
    /// Returns the endpoints of `cloud`, with the overrides of the environment applied.
    pub fn from_env(cloud: Cloud) -> Endpoints {
        Endpoints::with_overrides(cloud, |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Returns the endpoints of `cloud`, with the overrides that `lookup` finds by variable name.
    pub fn with_overrides(cloud: Cloud, lookup: impl Fn(&str) -> Option<String>) -> Endpoints {
        let (arm, graph, authority) = cloud.defaults();
        let trim = |value: String| value.trim_end_matches('/').to_string();
        let arm_override = lookup(ARM_ENDPOINT_VAR).map(trim);
        let graph_override = lookup(GRAPH_ENDPOINT_VAR).map(trim);
        Endpoints {
            // A private endpoint serves its own audience; the public hosts keep the cloud's.
            arm_audience: arm_override.clone().unwrap_or_else(|| arm.to_string()),
            graph_audience: graph_override.clone().unwrap_or_else(|| graph.to_string()),
            arm: arm_override.unwrap_or_else(|| arm.to_string()),
            graph: graph_override.unwrap_or_else(|| graph.to_string()),
            authority: lookup(AUTHORITY_HOST_VAR).map(trim).unwrap_or_else(|| authority.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_setting_selects_all_three_hosts() {
        let endpoints = Endpoints::with_overrides(Cloud::UsGovernment, |_| None);
        assert_eq!(endpoints.arm, "https://management.usgovcloudapi.net");
        assert_eq!(endpoints.graph, "https://graph.microsoft.us");
        assert_eq!(endpoints.authority, "https://login.microsoftonline.us");
        assert_eq!(Cloud::parse("china"), Ok(Cloud::China));
        assert!(Cloud::parse("mars").unwrap_err().contains("us_government"));
    }

    #[test]
    fn environment_overrides_each_host() {
        let endpoints = Endpoints::with_overrides(Cloud::Public, |name| match name {
            ARM_ENDPOINT_VAR => Some("http://127.0.0.1:9/".into()),
            AUTHORITY_HOST_VAR => Some("http://127.0.0.1:9/login".into()),
            _ => None,
        });
        assert_eq!(endpoints.arm, "http://127.0.0.1:9");
        assert_eq!(endpoints.arm_audience, "http://127.0.0.1:9");
        assert_eq!(endpoints.graph, "https://graph.microsoft.com");
        assert_eq!(endpoints.authority, "http://127.0.0.1:9/login");
    }
}
