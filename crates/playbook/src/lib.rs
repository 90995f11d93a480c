//! Playbooks: the YAML documents that say what to contain and how.
//!
//! [`parse`] turns source text into a validated [`Playbook`] or the full list of
//! [`Diagnostic`]s, each with its line and column. [`resolve_inputs`] checks the values given
//! for a playbook's inputs. Both are pure: they read no file and call no cloud. Providers are
//! consulted through the `contain_core` traits only, to learn resource types and check options.
//!
//! The format:
//!
//! ```yaml
//! name: ec2-instance-compromise            # lowercase letters, digits, - and _
//! description: What the playbook does.
//! inputs:
//!   instance: { type: aws.ec2.instance, description: The instance. }
//!   addresses: { type: cidr, list: true, description: Addresses to deny., default: [] }
//! on_failure: rollback                      # halt (the default) or rollback
//! steps:
//!   - id: isolate
//!     action: isolate                       # isolate, block, revoke, disable_sso, snapshot
//!     target: "${{ inputs.instance }}"      # or ${{ steps.ID.outputs.NAME }} with target_type
//!     with: { sever_tracked_connections: true }
//!     needs: []                             # ids of steps that must finish first
//!     irreversible: allow                   # permits changes rollback cannot undo
//!     max_targets: 25                       # the most targets the step may change
//! ```
//!
//! A target may also be a selector that the provider evaluates at plan time:
//! `target: { select: aws.ec2.instance, tags: { compromised: "true" } }`.
//!
//! This crate must never depend on the engine, the journal or a provider crate.

mod catalog;
mod diagnostic;
mod inputs;
mod model;
mod needs;
mod node;
mod parse;
mod template;

pub use catalog::Catalog;
pub use diagnostic::{Diagnostic, Diagnostics};
pub use contain_core::check_cidr;
pub use inputs::resolve_inputs;
pub use model::{DEFAULT_MAX_TARGETS, InputSpec, InputType, OnFailure, Playbook, Step, TargetSpec};
pub use node::Position;
pub use parse::{MAX_NODES, MAX_SOURCE_BYTES, parse};
pub use template::{Expression, Part, Template};

/// Every step that `id` needs, directly or through other steps.
pub fn step_ancestors<'s>(steps: &'s [Step], id: &str) -> std::collections::BTreeSet<&'s str> {
    parse::ancestors(steps, id)
}
