//! The AWS provider of contain.
//!
//! It handles the resource type `aws.ec2.instance` with the `isolate` action: each network
//! interface of the instance is moved to an isolation security group (created per VPC, with no
//! rules), first through an allow-all group so that tracked connections are cut; termination
//! and stop protection are turned on; the instance is tagged with the incident and run.
//!
//! Layout: [`clients`] builds SDK clients per run and mode, with the plan-mode guard of
//! [`guard`] that refuses every request that is not a read; [`errors`] maps SDK errors to
//! `contain_core` error kinds in one place; `isolate_instance` holds the action.
//!
//! Settings come from the standard AWS places (environment, profiles, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`).

mod clients;
mod errors;
mod groups;
mod guard;
mod iam;
mod isolate_instance;
mod network;
mod preflight;
mod provider;
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
