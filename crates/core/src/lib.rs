//! The provider-neutral model of contain: what a containment action is, what it acts on, and
//! the contract every cloud provider implements.
//!
//! - [`ActionKind`]: the five kinds of containment (isolate, block, revoke, disable_sso,
//!   snapshot).
//! - [`Target`]: one cloud resource, named the way its cloud names it.
//! - [`Operation`] and [`TargetPlan`]: the planned change of one target, split into operations
//!   that the engine journals one by one.
//! - [`Provider`] and [`Action`]: the contract. The trait documentation states what each method
//!   must guarantee.
//!
//! This crate names no cloud SDK and performs no I/O (but for the test-only [`crash`] points,
//! which exist only in builds with the `crash-points` feature). It must never depend on a provider crate,
//! the engine or the journal.

mod action;
mod cidr;
pub mod crash;
mod error;
mod operation;
mod provider;
mod target;

pub use action::ActionKind;
pub use cidr::check_cidr;
pub use error::{ActionError, ErrorKind};
pub use operation::{Assessment, Operation, Reconciliation, TargetPlan};
pub use provider::{Action, CallContext, CallKind, CallerIdentity, Mode, OptionProblem, Pending, PendingLog, Provider, RateLimit, ResourceTypeInfo, is_template};
pub use target::{Target, TargetParseError};
