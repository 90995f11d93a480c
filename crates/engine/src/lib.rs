//! The engine of contain: plans a playbook (a dry run that only reads), applies a reviewed plan,
//! and rolls a run back from its journal alone.
//!
//! - [`Engine::plan`] resolves inputs and targets, inspects each target and requests from its action
//!   the change. It builds provider clients in [`Mode::Plan`](contain_core::Mode), which refuse
//!   every request that is not a read.
//! - [`Engine::apply`] runs the steps in dependency order, the targets of a step concurrently up
//!   to a bound. Before changing a target it re-reads every subject the plan will change and
//!   stops the target with a drift error if one differs from the plan. Each operation is
//!   journaled, and synced to disk, before its cloud call.
//! - [`Engine::rollback`] reverts a run's applied operations in reverse order from the journal.
//!
//! This crate must never name a provider crate or a cloud SDK: it knows providers through the
//! `contain_core` traits only.

mod apply;
mod error;
mod guard;
mod ids;
mod journal;
mod locks;
mod metrics;
mod observer;
mod pacing;
mod plan;
mod progress;
mod record;
mod resolve;
mod resume;
mod report;
mod rollback;
mod retry;
mod runs;

use std::path::PathBuf;
use std::sync::Arc;

use contain_core::{Action, ActionKind, CallContext, CallerIdentity, Provider};

pub use apply::StartedRun;
pub use error::EngineError;
pub use guard::Guard;
pub use plan::{Plan, PlanFile, PlannedTarget, StepPlan};
pub use report::{OperationOutcome, OperationReport, RunReport, RunStatus, StepReport, TargetOutcome, TargetReport};
pub use metrics::{CloudCalls, CloudCounters, STEP_BUCKETS, StepDurations, cloud_calls, cloud_counters, step_durations};
pub use observer::RunObserver;
pub use retry::RetryPolicy;
pub use rollback::{RollbackOptions, changed_steps, check_steps};
pub use runs::{RunSummary, run_summary};
pub use record::{
    ChainBreak, ChangeOutcome, EvidenceItem, IncidentRecord, IrreversibleChange, OperationRecord, OperatorEntry, OperatorRole, RevertOutcome,
    RollbackEntry, Skip, Stamp, StepRecord, TargetRecord, TimelineEntry, Verification, decision_text, incident_record,
};

/// The default number of targets changed at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// The number of targets the plan inspects at once for each target the apply changes at once.
/// Inspections only read, through the pacer, and more of them at once fill each batched read.
/// Four made S1's plan faster still. But each inspection in flight keeps a connection and its
/// buffers, so a run over 10,000 targets then peaked at 150 MB instead of 148.
const INSPECTIONS_PER_CHANGE: usize = 2;

/// Plans, applies and rolls back playbooks against a set of providers.
pub struct Engine {
    providers: Vec<Arc<dyn Provider>>,
    state_dir: PathBuf,
    concurrency: usize,
    /// Replaces every step's `max_targets` when set.
    max_targets: Option<usize>,
    retry: RetryPolicy,
    guard: Guard,
    observer: Option<Arc<dyn RunObserver>>,
    /// API bucket limits that replace the providers' published ones, by bucket name.
    rate_limits: std::collections::HashMap<String, contain_core::RateLimit>,
}

impl Engine {
    /// Creates an engine that keeps journals under `state_dir/runs`.
    pub fn new(providers: Vec<Arc<dyn Provider>>, state_dir: PathBuf) -> Self {
        Engine { providers, state_dir, concurrency: DEFAULT_CONCURRENCY, max_targets: None, retry: RetryPolicy::default(), guard: Guard::default(), observer: None, rate_limits: Default::default() }
    }

    /// Sets how many targets are changed at once (at least 1).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets the guard rails the plan checks: protected resources and self-lockout.
    pub fn with_guard(mut self, guard: Guard) -> Self {
        self.guard = guard;
        self
    }

    /// Replaces the published limits of API buckets, by bucket name (`ec2:mutating`).
    pub fn with_rate_limits(mut self, limits: std::collections::HashMap<String, contain_core::RateLimit>) -> Self {
        self.rate_limits = limits;
        self
    }

    /// Sets the observer that follows runs target by target.
    pub fn with_observer(mut self, observer: Arc<dyn RunObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Sets how passing failures of cloud calls are retried.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy { attempts: retry.attempts.max(1), ..retry };
        self
    }

    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    fn provider_for(&self, resource_type: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.resource_types().iter().any(|t| t.name == resource_type))
    }

    fn action(&self, kind: ActionKind, resource_type: &str) -> Option<Arc<dyn Action>> {
        self.provider_for(resource_type)?.action(kind, resource_type)
    }

    /// Reads the cloud identities of the providers that own `resource_types`, for the journal.
    async fn caller_identities(&self, context: &CallContext, resource_types: &[String]) -> Result<Vec<CallerIdentity>, EngineError> {
        let mut identities = Vec::new();
        let mut seen = Vec::new();
        for resource_type in resource_types {
            let Some(provider) = self.provider_for(resource_type) else {
                continue;
            };
            if seen.contains(&provider.name()) {
                continue;
            }
            seen.push(provider.name());
            let identity = provider.caller_identity(context).await.map_err(|e| EngineError::Run {
                run_id: context.run_id.clone(),
                message: format!("cannot read the {} caller identity: {e}", provider.name()),
            })?;
            identities.push(identity);
        }
        Ok(identities)
    }
}

/// Returns a new run id, such as `run-20261204T201512Z-3f9a1c`.
pub fn new_run_id() -> String {
    ids::new_id("run")
}

/// Returns the local user name, from `USER` or `LOGNAME`, else from /etc/passwd by user id.
pub fn local_user() -> String {
    if let Ok(user) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        return user;
    }
    user_from_passwd().unwrap_or_else(|| "unknown".to_string())
}

#[cfg(unix)]
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2] == uid.to_string()).then(|| fields[0].to_string())
    })
}

#[cfg(not(unix))]
fn user_from_passwd() -> Option<String> {
    None
}
