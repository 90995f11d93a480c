use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of a containment action. The kind is provider-neutral; its effect depends on the
/// provider and the type of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Cut a compute instance, network interface, subnet or network off the network.
    Isolate,
    /// Deny addresses at a firewall.
    Block,
    /// Revoke credentials and sessions.
    Revoke,
    /// Switch off federated sign-in.
    DisableSso,
    /// Keep evidence, such as disk snapshots.
    Snapshot,
}

impl ActionKind {
    /// Every kind, in the order help text lists them.
    pub const ALL: [ActionKind; 5] = [
        ActionKind::Isolate,
        ActionKind::Block,
        ActionKind::Revoke,
        ActionKind::DisableSso,
        ActionKind::Snapshot,
    ];

    /// The name used in playbooks and journals.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Isolate => "isolate",
            ActionKind::Block => "block",
            ActionKind::Revoke => "revoke",
            ActionKind::DisableSso => "disable_sso",
            ActionKind::Snapshot => "snapshot",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                let valid: Vec<&str> = ActionKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown action `{s}`: valid actions are {}", valid.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_kind_round_trips() {
        for kind in ActionKind::ALL {
            assert_eq!(kind.as_str().parse::<ActionKind>().unwrap(), kind);
        }
    }

    #[test]
    fn unknown_action_lists_valid_ones() {
        let err = "quarantine".parse::<ActionKind>().unwrap_err();
        assert!(err.contains("`quarantine`"), "{err}");
        assert!(err.contains("disable_sso"), "{err}");
    }
}
