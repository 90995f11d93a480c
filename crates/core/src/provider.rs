use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ActionError, ActionKind, Assessment, Operation, Reconciliation, Target, TargetParseError, TargetPlan};

/// True when an option value is a template such as `"${{ inputs.flag }}"`, whose value is known
/// only at plan time.
pub fn is_template(value: &Value) -> bool {
    value.as_str().is_some_and(|text| text.contains("${{"))
}

/// Whether the engine is planning or applying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Read-only. Every cloud client a provider hands out in this mode must refuse, before
    /// sending, each request that is not a read.
    Plan,
    /// Changes are allowed.
    Apply,
}

/// The context every cloud call of an action runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    pub mode: Mode,
    /// The run id, or the plan id while planning. Providers put it in the user agent so that the
    /// cloud's audit log shows which run made a change.
    pub run_id: String,
    /// The receiver of what an action learns in the middle of a change, such as the URL of a
    /// long-running operation, for the engine to journal at once.
    pub pending: Pending,
}

impl CallContext {
    /// Creates a context that journals nothing in the middle of a change.
    pub fn new(mode: Mode, run_id: impl Into<String>) -> Self {
        CallContext { mode, run_id: run_id.into(), pending: Pending::default() }
    }
}

/// Receives what an action learns in the middle of a change.
pub trait PendingLog: Send + Sync {
    /// Records `detail` (such as "operation https://…/operations/… started") before the action
    /// waits for the change to finish.
    fn record(&self, detail: &str);
}

/// The receiver of the operation being applied, or none.
#[derive(Clone, Default)]
pub struct Pending(Option<Arc<dyn PendingLog>>);

impl Pending {
    pub fn new(log: Arc<dyn PendingLog>) -> Self {
        Pending(Some(log))
    }

    /// Passes `detail` to the receiver, if there is one.
    pub fn record(&self, detail: &str) {
        if let Some(log) = &self.0 {
            log.record(detail);
        }
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Pending(journal)" } else { "Pending(none)" })
    }
}

/// Contexts compare by mode and run id alone: the receiver is not part of their identity.
impl PartialEq for Pending {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for Pending {}

/// The identity a provider's credentials resolve to, recorded in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerIdentity {
    pub provider: String,
    pub account: String,
    /// The principal, such as an IAM ARN.
    pub principal: String,
}

/// A resource type that a provider handles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceTypeInfo {
    /// The name used as an input type in playbooks: `aws.ec2.instance`.
    pub name: &'static str,
    /// The valid forms of a value, for error messages.
    pub expected: &'static str,
    /// The action kinds that apply to this type.
    pub actions: Vec<ActionKind>,
}

/// A problem with a step's `with` options, found without any cloud call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionProblem {
    /// The option key, or `None` when the problem concerns the options as a whole.
    pub key: Option<String>,
    pub message: String,
}

/// The kind of a cloud call the engine makes for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Read,
    Change,
    Revert,
}

/// A token bucket of a cloud API: the calls that may go at once, and the rate it refills at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub burst: f64,
    pub per_second: f64,
}

/// A cloud provider: parses the targets it owns and hands out the actions for them.
#[async_trait]
pub trait Provider: Send + Sync {
    /// A short name, such as `aws`.
    fn name(&self) -> &'static str;

    /// The resource types this provider handles.
    fn resource_types(&self) -> Vec<ResourceTypeInfo>;

    /// Parses a value given for a target of `resource_type`. Pure: no cloud call.
    fn parse_target(&self, resource_type: &str, value: &str) -> Result<Target, TargetParseError>;

    /// The action of `kind` for targets of `resource_type`, if this provider has one.
    fn action(&self, kind: ActionKind, resource_type: &str) -> Option<Arc<dyn Action>>;

    /// Checks the filters of a target selector, such as `{ tags: { compromised: "true" } }`.
    /// Pure. The default accepts no selector.
    fn check_selector(&self, resource_type: &str, filters: &Map<String, Value>) -> Vec<OptionProblem> {
        let _ = filters;
        vec![OptionProblem { key: None, message: format!("{resource_type} targets cannot be chosen by a selector: name them instead") }]
    }

    /// Lists the targets a selector matches. Read-only.
    async fn select(&self, context: &CallContext, resource_type: &str, filters: &Map<String, Value>) -> Result<Vec<Target>, ActionError> {
        let _ = (context, filters);
        Err(ActionError::new(crate::ErrorKind::Invalid, format!("{resource_type} targets cannot be chosen by a selector")))
    }

    /// Lists the resources behind an identity this provider's credentials resolve to, such as the IAM
    /// role of an assumed-role session, so that the engine can refuse to revoke them. Pure. The
    /// default names none.
    fn own_resources(&self, identity: &CallerIdentity) -> Vec<Target> {
        let _ = identity;
        Vec::new()
    }

    /// The identity the provider's credentials resolve to, for the journal. Read-only.
    async fn caller_identity(&self, context: &CallContext) -> Result<CallerIdentity, ActionError>;

    /// Names the API rate-limit bucket that a call for an operation of `operation_kind` draws
    /// on, with the limit the cloud publishes for it, so that the engine paces its calls. Pure.
    /// The default names none, and the engine does not pace the call.
    fn rate_bucket(&self, operation_kind: &str, call: CallKind) -> Option<(&'static str, RateLimit)> {
        let _ = (operation_kind, call);
        None
    }

    /// Counts the calls to the cloud one call of the engine makes for `operation`, so that the
    /// engine takes as many tokens from the bucket. Pure. The default is one.
    fn call_cost(&self, operation: &Operation, call: CallKind) -> f64 {
        let _ = (operation, call);
        1.0
    }

    /// Names the bucket that inspecting a target of `resource_type` draws on, and how many
    /// tokens one inspection takes, so that the engine paces the plan's reads. Pure. The default
    /// names none, and the engine does not pace inspections.
    fn inspect_bucket(&self, resource_type: &str) -> Option<(&'static str, RateLimit, f64)> {
        let _ = resource_type;
        None
    }
}

/// One containment action for one resource type.
///
/// # Contract
///
/// The engine drives an action through four steps and journals between them. An action never
/// writes the journal itself and never decides whether it may write to the cloud: the clients
/// a provider hands out in [`Mode::Plan`] refuse every request that is not a read.
///
/// - **inspect** reads the target's current state. It never writes, in either mode.
/// - **plan** computes the change from that state alone, without I/O. When the target is
///   already contained, the plan has no operations and a note states that. Each operation carries
///   the prior value of its subject as [`Action::read`] returns it, or
///   [`Operation::PRIOR_READ_AT_APPLY`](crate::Operation::PRIOR_READ_AT_APPLY) where reading it
///   for every target would slow a large plan. For such an operation `read` returns the subject
///   in the shape of `desired`, and the engine completes the operation with
///   [`Operation::with_prior_read`](crate::Operation::with_prior_read) before it journals it.
/// - **apply** makes one operation's change and returns the value it left, which the engine
///   journals and later passes to revert. Before calling apply, the engine has journaled the
///   operation with its prior value (and synced it to disk), and has checked with
///   [`Action::read`] and [`Action::assess`] that the subject still has the prior value.
///   Applying to a subject that already has the desired value writes nothing. When apply fails
///   half-way, it undoes its own partial change before returning the error where it can, and the
///   error says what was left.
/// - **revert** restores the prior value from the journaled operation and the applied value
///   alone, without the playbook. Reverting a subject that already has its prior value writes
///   nothing, so revert twice is a no-op. Revert must not delete resources that existed before
///   the run, nor evidence. It returns notes the responder must read, such as a warning that
///   sessions revoked by the run would have been valid again. The engine never reverts an
///   operation marked not reversible.
///
/// [`Action::read`] and [`Action::assess`] let the engine detect drift: a subject whose value
/// is neither the prior value nor the applied one was changed by someone else.
///
/// After a crash, or a call whose response was lost, [`Action::reconcile`] decides from the
/// subject's value whether the operation took effect, fully or partly. Rollback reverts a partial
/// state and resume applies the operation again, so apply must accept a subject that is part-way
/// (the interface already in the allow-all group) and revert must restore from one. An apply
/// that undoes its own partial change before failing says so with
/// [`ActionError::with_compensation`](crate::ActionError::with_compensation). [`Action::bind`]
/// completes an operation with values known only during the run, before it is journaled.
#[async_trait]
pub trait Action: Send + Sync {
    fn kind(&self) -> ActionKind;

    fn resource_type(&self) -> &'static str;

    /// Checks a step's `with` options. Pure. Returns every problem found. A value for which
    /// [`is_template`] is true is filled in at plan time, so only its presence can be checked here;
    /// `plan` checks the filled-in value.
    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem>;

    /// Lists the keys a step's `with` may hold for this action, for `GET /v1/actions`. The
    /// default lists none.
    fn option_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Lists the options, as set in `options`, that make changes rollback cannot undo, such as
    /// `delete_login_profile: true`. Pure. `contain validate` requires `irreversible: allow` on a
    /// step that sets one; the plan checks the operations themselves. The default lists none.
    fn irreversible_options(&self, options: &Map<String, Value>) -> Vec<String> {
        let _ = options;
        Vec::new()
    }

    /// Reads the target's current state. Read-only.
    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError>;

    /// Computes the change from the inspected state. Pure.
    fn plan(
        &self,
        target: &Target,
        options: &Map<String, Value>,
        state: &Value,
    ) -> Result<TargetPlan, ActionError>;

    /// Checks, without changing anything, whether the caller may make the planned changes, and
    /// returns the permissions it lacks. Called while planning: the plan-mode clients let through
    /// only reads and the provider's named list of calls sent with a dry-run flag. The default
    /// checks nothing.
    async fn preflight(&self, context: &CallContext, target: &Target, plan: &TargetPlan) -> Result<Vec<String>, ActionError> {
        let _ = (context, target, plan);
        Ok(Vec::new())
    }

    /// Reads the current value of an operation's subject, in the shape of `operation.prior`.
    /// Read-only.
    async fn read(
        &self,
        context: &CallContext,
        target: &Target,
        operation: &Operation,
    ) -> Result<Value, ActionError>;

    /// Fills in values only the run has: its id, or a value that an earlier operation of the same
    /// target returned (the id of a group it created). The engine calls it just before it
    /// journals the operation's intent, so the journal contains the operation as applied. Pure.
    ///
    /// `earlier` holds this target's operations applied so far in this run, with their values.
    fn bind(&self, context: &CallContext, operation: &Operation, earlier: &[(Operation, Value)]) -> Operation {
        let _ = (context, earlier);
        operation.clone()
    }

    /// Relates the current value of an operation's subject to the operation. The default
    /// compares JSON values exactly.
    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        operation.assess_exact(current, applied)
    }

    /// Decides whether an operation took effect whose intent the journal contains without an
    /// outcome, from the current value of its subject. The engine journals the decision with
    /// that value. Actions whose operations take several cloud calls, or whose prior state says
    /// nothing about what apply creates, provide their own. The default relates the value with
    /// [`Action::assess`] and [`Operation::reconcile_from`].
    fn reconcile(&self, operation: &Operation, current: &Value) -> Reconciliation {
        operation.reconcile_from(self.assess(operation, current, None), current)
    }

    /// Makes the operation's change and returns the value it left.
    async fn apply(
        &self,
        context: &CallContext,
        target: &Target,
        operation: &Operation,
    ) -> Result<Value, ActionError>;

    /// Restores the operation's prior value. `applied` is the value apply returned.
    async fn revert(
        &self,
        context: &CallContext,
        target: &Target,
        operation: &Operation,
        applied: &Value,
    ) -> Result<Vec<String>, ActionError>;
}
