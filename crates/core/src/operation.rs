use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One change to one resource, the unit the engine journals.
///
/// An operation sets one aspect of one resource (an interface's security groups, an instance's
/// protection attributes) from `prior` to `desired`. The engine writes the operation with its
/// prior value to the journal before the cloud call, so that a revert needs the journal alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Unique within the target, stable across plans of the same state: `interface:eni-0abc`.
    pub id: String,
    /// Provider-specific kind that the action dispatches on: `ec2.interface_groups`.
    pub kind: String,
    /// The resource that the operation changes, which may differ from the target.
    pub subject: String,
    /// The text a reviewer reads in the plan.
    pub description: String,
    /// The value before the change, as the action's `read` returns it, or
    /// [`Operation::PRIOR_READ_AT_APPLY`] when the plan left it to apply.
    pub prior: Value,
    /// The value after the change. It may name resources that apply creates, by description.
    pub desired: Value,
    /// False when revert cannot restore the prior value (for example a deleted credential).
    #[serde(default = "reversible_default")]
    pub reversible: bool,
}

fn reversible_default() -> bool {
    true
}

/// The planned change of one target: the state the plan saw, the operations, and notes for the
/// reviewer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TargetPlan {
    /// The state that inspect read, as the reviewer should see it.
    pub state: Value,
    /// The operations to apply in order. Empty when the target is already contained.
    pub operations: Vec<Operation>,
    /// Facts the reviewer should know, such as "already isolated: nothing to do" or what the
    /// action cannot guarantee.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Values later steps can use as `${{ steps.<id>.outputs.<name> }}`.
    #[serde(default)]
    pub outputs: Map<String, Value>,
    /// The reason this action cannot contain the target, when it cannot (a service-linked role, for
    /// example). Such a target has no operations and counts as not contained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncontainable: Option<String>,
    /// Permissions the caller lacks for the operations, as the permission pre-flight found them,
    /// such as `ec2:ModifyNetworkInterfaceAttribute on eni-0abc…`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_permissions: Vec<String>,
}

/// The relation of an operation subject's current value to the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// The subject still has the prior value: the change has not been made, or was reverted.
    Prior,
    /// The subject has the value that this run's apply left.
    Applied,
    /// The subject has another value: someone changed it.
    Diverged {
        /// The difference, for the responder.
        detail: String,
    },
}

impl Operation {
    /// The prior value of an operation whose plan did not read it, because reading it takes one
    /// call per target and field (an instance's protection attributes) and would delay a large
    /// plan's first change. The engine reads it just before the change and journals it.
    pub const PRIOR_READ_AT_APPLY: &'static str = "<read just before the change>";

    /// True when the plan left the prior value to apply.
    pub fn prior_read_at_apply(&self) -> bool {
        self.prior.as_str() == Some(Self::PRIOR_READ_AT_APPLY)
    }

    /// Returns this operation with the prior value `current`, read just before the change.
    ///
    /// When both `current` and `desired` are objects, the operation keeps only the fields whose
    /// current value differs from the desired one, so that apply changes and revert restores
    /// just those. An operation left with no field has nothing to change.
    pub fn with_prior_read(&self, current: &Value) -> Operation {
        let mut completed = self.clone();
        match (current.as_object(), self.desired.as_object()) {
            (Some(current), Some(desired)) => {
                let differing = desired.iter().filter(|(key, value)| current.get(*key) != Some(*value));
                let (prior, desired): (Map<String, Value>, Map<String, Value>) = differing
                    .map(|(key, value)| ((key.clone(), current.get(key).cloned().unwrap_or(Value::Null)), (key.clone(), value.clone())))
                    .unzip();
                completed.prior = Value::Object(prior);
                completed.desired = Value::Object(desired);
            }
            _ => completed.prior = current.clone(),
        }
        completed
    }

    /// True when the operation's prior value is already the desired one.
    pub fn changes_nothing(&self) -> bool {
        !self.prior_read_at_apply() && self.prior == self.desired
    }

    /// Compares the current value with the prior value and with what apply left.
    ///
    /// `applied` is the value apply returned, when the journal contains one. Actions whose values
    /// need a looser comparison (sets, intermediate states) provide their own assessment.
    pub fn assess_exact(&self, current: &Value, applied: Option<&Value>) -> Assessment {
        if *current == self.prior {
            return Assessment::Prior;
        }
        let expected = applied.unwrap_or(&self.desired);
        if current == expected {
            return Assessment::Applied;
        }
        Assessment::Diverged {
            detail: format!(
                "{} is {current}, but the run expected {} (before) or {expected} (after)",
                self.subject, self.prior
            ),
        }
    }
}

impl Operation {
    /// Turns an assessment made without an applied value into a reconciliation. A value that is
    /// neither the prior nor the desired one, but has each of its fields at one of the two,
    /// was left part-way by an operation of several calls (one per field): that is a partial
    /// change, not someone else's.
    pub fn reconcile_from(&self, assessment: Assessment, current: &Value) -> Reconciliation {
        match assessment {
            Assessment::Prior => Reconciliation::NotApplied,
            Assessment::Applied => Reconciliation::Applied,
            Assessment::Diverged { detail } if self.is_between(current, &self.desired) => Reconciliation::Partly { detail },
            Assessment::Diverged { detail } => Reconciliation::Unknown { detail },
        }
    }

    /// True when `current` is an object whose every field has its prior value or its value in
    /// `after`: a state part-way between the two.
    pub fn is_between(&self, current: &Value, after: &Value) -> bool {
        let (Some(current), Some(prior), Some(after)) = (current.as_object(), self.prior.as_object(), after.as_object()) else {
            return false;
        };
        !current.is_empty() && current.iter().all(|(key, value)| prior.get(key) == Some(value) || after.get(key) == Some(value))
    }
}

/// Whether an operation took effect when the journal contains its intent but no outcome, because
/// the process stopped during the cloud call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciliation {
    /// The subject still has the prior value: the call never took effect.
    NotApplied,
    /// The subject has the desired value: the call took effect.
    Applied,
    /// Part of the change took effect (an operation of several cloud calls stopped between
    /// them): rollback must revert it, and resume must apply it again.
    Partly {
        /// The part of the change in place, for the journal.
        detail: String,
    },
    /// The subject has a value that the operation explains in no way: someone else changed it.
    Unknown {
        detail: String,
    },
}

impl Reconciliation {
    /// Returns the name journaled for this decision.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reconciliation::NotApplied => "not_applied",
            Reconciliation::Applied => "applied",
            Reconciliation::Partly { .. } => "partly_applied",
            Reconciliation::Unknown { .. } => "unknown",
        }
    }

    /// Returns the detail of a partial or unknown state.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Reconciliation::Partly { detail } | Reconciliation::Unknown { detail } => Some(detail),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn protection(prior: Value) -> Operation {
        Operation {
            id: "protection".into(),
            kind: "test.protection".into(),
            subject: "i-1".into(),
            description: "turn protection on".into(),
            prior,
            desired: json!({ "termination": true, "stop": true, "shutdown": "stop" }),
            reversible: true,
        }
    }

    #[test]
    fn read_at_apply_keeps_differing_fields() {
        let planned = protection(json!(Operation::PRIOR_READ_AT_APPLY));
        assert!(planned.prior_read_at_apply());
        assert!(!planned.changes_nothing());

        let completed = planned.with_prior_read(&json!({ "termination": true, "stop": false, "shutdown": "terminate" }));
        assert!(!completed.prior_read_at_apply());
        assert_eq!(completed.prior, json!({ "stop": false, "shutdown": "terminate" }));
        assert_eq!(completed.desired, json!({ "stop": true, "shutdown": "stop" }));
        assert!(!completed.changes_nothing());
    }

    #[test]
    fn read_at_apply_already_desired() {
        let planned = protection(json!(Operation::PRIOR_READ_AT_APPLY));
        let completed = planned.with_prior_read(&json!({ "termination": true, "stop": true, "shutdown": "stop" }));
        assert_eq!(completed.prior, json!({}));
        assert!(completed.changes_nothing());
    }

    #[test]
    fn read_at_apply_plain_value() {
        let mut planned = protection(json!(Operation::PRIOR_READ_AT_APPLY));
        planned.desired = json!("stop");
        let completed = planned.with_prior_read(&json!("terminate"));
        assert_eq!(completed.prior, json!("terminate"));
        assert_eq!(completed.desired, json!("stop"));
    }

    #[test]
    fn read_at_plan_not_deferred() {
        let planned = protection(json!({ "termination": false }));
        assert!(!planned.prior_read_at_apply());
    }
}
