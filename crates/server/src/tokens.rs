//! Bearer tokens and roles. The tokens file stores only the SHA-256 of each token:
//!
//! ```yaml
//! - { principal: alice, roles: [responder], token_sha256: 9f86d0… }
//! ```

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The roles of a principal. Each role includes the ones before it, but for `approver`, which
/// only approves and reads: viewer < responder < admin, and approver = viewer + approving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads runs, plans, journals, playbooks and actions.
    Viewer,
    /// Plans, starts and rolls back runs.
    Responder,
    /// Approves or rejects runs that wait for approval.
    Approver,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Responder, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A caller the tokens file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub roles: Vec<Role>,
}

impl Principal {
    /// True when the principal may act as `needed`.
    pub fn may(&self, needed: Role) -> bool {
        self.roles.iter().any(|role| match needed {
            Role::Viewer => true,
            Role::Responder => matches!(role, Role::Responder | Role::Admin),
            Role::Approver => matches!(role, Role::Approver | Role::Admin),
            Role::Admin => *role == Role::Admin,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid tokens file {path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    principal: String,
    roles: Vec<String>,
    token_sha256: String,
}

/// The principals and the digests of their tokens.
#[derive(Debug, Clone, Default)]
pub struct TokenStore {
    entries: Vec<(Principal, [u8; 32])>,
}

impl TokenStore {
    /// Loads a tokens file, checking every entry.
    pub fn load(path: &Path) -> Result<TokenStore, TokensError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read { path: display.clone(), source })?;
        TokenStore::parse(&text).map_err(|message| TokensError::Invalid { path: display, message })
    }

    /// Parses the YAML text of a tokens file.
    pub fn parse(text: &str) -> Result<TokenStore, String> {
        let entries: Vec<Entry> = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let mut store = TokenStore::default();
        for (index, entry) in entries.into_iter().enumerate() {
            let place = format!("entry {} ({})", index + 1, entry.principal);
            if entry.principal.trim().is_empty() {
                return Err(format!("entry {}: principal is empty", index + 1));
            }
            let mut roles = Vec::new();
            for role in &entry.roles {
                let role = Role::parse(role).ok_or_else(|| format!("{place}: unknown role `{role}`: valid roles are viewer, responder, approver, admin"))?;
                roles.push(role);
            }
            if roles.is_empty() {
                return Err(format!("{place}: roles is empty: give at least one of viewer, responder, approver, admin"));
            }
            let digest: [u8; 32] = hex::decode(&entry.token_sha256)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| format!("{place}: token_sha256 must be 64 hexadecimal digits, the SHA-256 of the token"))?;
            if store.entries.iter().any(|(p, _)| p.name == entry.principal) {
                return Err(format!("{place}: principal `{}` is listed twice", entry.principal));
            }
            store.entries.push((Principal { name: entry.principal, roles }, digest));
        }
        Ok(store)
    }

    /// Finds the principal whose token this is. Every stored digest is compared, in constant
    /// time, so the response time reveals nothing about which digest nearly matched.
    /// Returns the number of tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns whether the store contains no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn authenticate(&self, token: &str) -> Option<&Principal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (principal, stored) in &self.entries {
            if constant_time_eq(&digest, stored) {
                found = Some(principal);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Returns a fresh random token, and the SHA-256 digest the tokens file stores for it.
pub fn new_token() -> (String, String) {
    let random = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    let token = format!("ctn_{}{}", random[0].simple(), random[1].simple());
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    (token, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip() {
        let (token, digest) = new_token();
        let store = TokenStore::parse(&format!("- {{ principal: alice, roles: [responder], token_sha256: {digest} }}\n")).unwrap();
        let alice = store.authenticate(&token).expect("the token is known");
        assert_eq!(alice.name, "alice");
        assert!(alice.may(Role::Responder));
        assert!(alice.may(Role::Viewer));
        assert!(!alice.may(Role::Approver));
        assert!(store.authenticate("ctn_wrong").is_none());
    }

    #[test]
    fn invalid_entries() {
        let bad_role = TokenStore::parse("- { principal: bob, roles: [root], token_sha256: 00 }\n").unwrap_err();
        assert!(bad_role.contains("unknown role `root`"), "{bad_role}");
        let bad_digest = TokenStore::parse("- { principal: bob, roles: [viewer], token_sha256: abc }\n").unwrap_err();
        assert!(bad_digest.contains("64 hexadecimal digits"), "{bad_digest}");
    }
}
