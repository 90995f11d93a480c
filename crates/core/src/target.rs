use std::fmt;

use serde::{Deserialize, Serialize};

/// One cloud resource that an action changes, named the way its cloud names it.
///
/// `resource_type` decides which provider handles the target, for example `aws.ec2.instance`.
/// `id` is the cloud's own identifier (`i-0abc…`, an ARN, an ARM resource id). `region` and
/// `account` are filled in by the provider when the id does not carry them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    pub resource_type: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl Target {
    /// A key that names the target uniquely across providers, regions and accounts.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.resource_type,
            self.account.as_deref().unwrap_or("-"),
            self.region.as_deref().unwrap_or("-"),
            self.id
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        match (&self.account, &self.region) {
            (Some(account), Some(region)) => write!(f, " ({account}, {region})"),
            (None, Some(region)) => write!(f, " ({region})"),
            (Some(account), None) => write!(f, " ({account})"),
            (None, None) => Ok(()),
        }
    }
}

/// A value that does not name a resource of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {resource_type} `{value}`: expected {expected}")]
pub struct TargetParseError {
    pub resource_type: String,
    pub value: String,
    /// The valid forms, for example "an instance id such as i-0123456789abcdef0 or an instance ARN".
    pub expected: String,
}
