//! The AWS provider of contain.
//!
//! Resource types and their actions:
//!
//! - `aws.ec2.instance`: isolate (`isolate_instance`) and snapshot (`snapshot`).
//! - `aws.ec2.vpc`, `aws.ec2.subnet`, `aws.ec2.security_group`: block and isolate (`network`).
//! - `aws.iam.user`, `aws.iam.role`: revoke; `aws.iam.identity_provider`,
//!   `aws.sso.permission_set`: disable_sso (`iam`).
//!
//! `clients` builds SDK clients per run, mode, region and account, with the plan-mode guard of
//! `guard` that refuses every request that is not a read or a named dry run. `errors` maps
//! SDK errors to `contain_core` error kinds in one place, and `preflight` checks permissions
//! while planning.
//!
//! Settings come from the standard AWS places (environment, profiles, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`); roles for other accounts come from [`AccountRole`]s.

mod batch;
mod clients;
#[cfg(feature = "crash-points")]
mod crash_point;
mod errors;
mod groups;
mod guard;
mod iam;
mod isolate_instance;
mod network;
mod pacing;
mod preflight;
mod provider;
mod reads;
mod select;
mod snapshot;
mod target;
mod user_agent;

pub use guard::is_read_only_operation;
pub use clients::AccountRole;
pub use provider::AwsProvider;
pub use target::parse_instance;

/// Tag keys that contain sets and reads.
pub mod tags {
    /// On resources contain created: what the resource is for.
    pub const MANAGED: &str = "contain:managed";
    /// On changed instances: the incident id.
    pub const INCIDENT: &str = "contain:incident";
    /// On changed instances: the run that changed it.
    pub const RUN: &str = "contain:run";
}
