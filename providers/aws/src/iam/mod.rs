//! IAM containment: revoking users' credentials and sessions, roles' sessions, and federated
//! sign-in through SAML and OIDC identity providers.

mod federation;
mod identity_center;
mod policy;
mod role;
mod sessions;
mod target;
mod user;

pub(crate) use federation::DisableFederation;
pub(crate) use identity_center::{DisablePermissionSet, PERMISSION_SET, parse_permission_set};
pub(crate) use role::RevokeRole;
pub(crate) use target::{IDENTITY_PROVIDER, ROLE, USER, parse_identity_provider, parse_role, parse_user};
pub(crate) use user::RevokeUser;
