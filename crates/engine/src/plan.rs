//! The dry run: resolve inputs and targets, inspect each target, and plan its change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use contain_core::{ActionError, ActionKind, CallContext, ErrorKind, Mode, Target, TargetPlan};
use contain_journal::PlaybookInfo;
use contain_playbook::{OnFailure, Playbook, resolve_inputs};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::resolve::{resolve_options, resolve_targets};
use crate::{Engine, EngineError, ids};

/// A reviewed dry run: what each step would change on each target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub plan_id: String,
    pub created_at: DateTime<Utc>,
    pub contain_version: String,
    pub playbook: PlaybookInfo,
    pub inputs: Map<String, Value>,
    pub on_failure: OnFailure,
    /// True when the plan was made with `--allow-self-lockout`: the reviewer must see that the
    /// self-lockout guard was lifted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_self_lockout: bool,
    /// True when the playbook sets `approval: required`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval_required: bool,
    pub steps: Vec<StepPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepPlan {
    pub id: String,
    pub action: ActionKind,
    pub needs: Vec<String>,
    pub options: Map<String, Value>,
    /// The maximum number of targets the step may change: its blast radius limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_targets: Option<usize>,
    pub targets: Vec<PlannedTarget>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTarget {
    pub target: Target,
    #[serde(flatten)]
    pub plan: TargetPlan,
    /// The reason the target could not be planned, such as "instance not found".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Plan {
    /// SHA-256 of the plan's JSON, in hex. `contain apply` checks it against the plan file.
    pub fn digest(&self) -> String {
        // serde_json keeps the order of map keys (its `preserve_order` feature), so the struct
        // gives the same bytes as the Value made of it did, and they go to the hash as they are
        // written, with no copy of the plan.
        let mut hasher = HashWriter(Sha256::new());
        serde_json::to_writer(&mut hasher, self).expect("plans serialize");
        hex::encode(hasher.0.finalize())
    }

    /// Lists the problems that keep the plan from being applied.
    pub fn errors(&self) -> Vec<String> {
        self.steps
            .iter()
            .flat_map(|step| {
                step.targets.iter().filter_map(move |t| t.error.as_ref().map(|e| format!("step `{}`, {}: {e}", step.id, t.target)))
            })
            .collect()
    }

    /// Counts the operations across all steps and targets.
    pub fn operation_count(&self) -> usize {
        self.steps.iter().flat_map(|s| &s.targets).map(|t| t.plan.operations.len()).sum()
    }
}

/// Rejects a target plan with changes that cannot be undone unless the step sets
/// `irreversible: allow`.
fn check_irreversible(step: &contain_playbook::Step, plan: TargetPlan) -> Result<TargetPlan, contain_core::ActionError> {
    let irreversible: Vec<&str> = plan.operations.iter().filter(|o| !o.reversible).map(|o| o.description.as_str()).collect();
    if irreversible.is_empty() || step.irreversible {
        return Ok(plan);
    }
    Err(contain_core::ActionError::new(
        contain_core::ErrorKind::Invalid,
        format!(
            "the step would make changes that rollback cannot undo ({}): add `irreversible: allow` to step `{}` if that is intended",
            irreversible.join("; "),
            step.id
        ),
    ))
}

/// A plan as written to a plan file, with its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: u32,
    pub digest: String,
    pub plan: Plan,
}

impl PlanFile {
    pub const FORMAT: u32 = 1;

    pub fn new(plan: Plan) -> Self {
        PlanFile { format: Self::FORMAT, digest: plan.digest(), plan }
    }

    /// Returns the plan when its digest matches.
    pub fn verified(self) -> Result<Plan, EngineError> {
        let found = self.plan.digest();
        if found != self.digest {
            return Err(EngineError::DigestMismatch { expected: self.digest, found });
        }
        Ok(self.plan)
    }
}

impl Engine {
    /// Plans a playbook: checks the inputs, resolves each step's targets, inspects them and
    /// computes the changes. Sends read-only requests only.
    pub async fn plan(&self, playbook: &Playbook, playbook_path: &str, given: &[(String, String)]) -> Result<Plan, EngineError> {
        let inputs = resolve_inputs(playbook, given, &self.providers).map_err(EngineError::Inputs)?;
        let plan_id = ids::new_id("plan");
        let context = CallContext::new(Mode::Plan, plan_id.clone());

        // The identities contain runs as, so that no step revokes them.
        let own = if playbook.steps.iter().any(|s| s.action == ActionKind::Revoke) && !self.guard.allow_self_lockout {
            let types: Vec<String> = playbook.steps.iter().map(|s| s.target_type.clone()).collect();
            let identities = self.caller_identities(&context, &types).await?;
            identities.iter().flat_map(|identity| self.providers.iter().flat_map(move |p| p.own_resources(identity))).collect()
        } else {
            Vec::new()
        };

        let mut outputs: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
        let mut steps = Vec::new();
        for step in self.ordered_steps(playbook) {
            let targets = resolve_targets(self, &context, step, &inputs, &outputs).await?;
            let max_targets = self.max_targets.unwrap_or(step.max_targets);
            if targets.len() > max_targets {
                return Err(EngineError::Target {
                    step: step.id.clone(),
                    message: format!(
                        "{} targets match `{}`, over the step's max_targets of {max_targets}: check the selector, or raise max_targets in the playbook or with --max-targets",
                        targets.len(),
                        step.target.source()
                    ),
                });
            }
            let options = resolve_options(&step.with, &inputs, &outputs)
                .map_err(|message| EngineError::Target { step: step.id.clone(), message })?;
            let action = self
                .action(step.action, &step.target_type)
                .ok_or_else(|| EngineError::Target { step: step.id.clone(), message: format!("no provider offers {} for {}", step.action, step.target_type) })?;

            // Targets are inspected concurrently, twice as many at once as the engine changes,
            // and listed in their order.
            let plan_target = |target: Target| {
                let span = tracing::debug_span!("plan", plan_id = %plan_id, step = %step.id, target = %target);
                let action = action.clone();
                let context = &context;
                let options = &options;
                let own = &own;
                tracing::Instrument::instrument(
                    async move {
                        let refused = |plan: Option<&TargetPlan>| self.guard.refusal(step.action, &target, plan, own);
                        let result = match refused(None) {
                            Some(refusal) => Err(ActionError::new(ErrorKind::Precondition, refusal)),
                            None => {
                                let bucket = self.inspect_bucket(&target);
                                let reserved = self.pace(&bucket).await;
                                let inspected = action.inspect(context, &target).await;
                                self.paced(&bucket, reserved, &inspected);
                                match inspected {
                                    Ok(state) => action.plan(&target, options, &state),
                                    Err(error) => Err(error),
                                }
                            }
                        };
                        let result = result.and_then(|plan| match refused(Some(&plan)) {
                            Some(refusal) => Err(ActionError::new(ErrorKind::Precondition, refusal)),
                            None => Ok(plan),
                        });
                        let result = result.and_then(|plan| check_irreversible(step, plan));
                        let result = match result {
                            Ok(mut plan) if !plan.operations.is_empty() => match action.preflight(context, &target, &plan).await {
                                Ok(missing) => {
                                    plan.missing_permissions = missing;
                                    Ok(plan)
                                }
                                Err(error) => {
                                    plan.notes.push(format!("the permission pre-flight could not run: {error}"));
                                    Ok(plan)
                                }
                            },
                            other => other,
                        };
                        match result {
                            Ok(plan) => PlannedTarget { target, plan, error: None },
                            Err(error) => PlannedTarget { target, plan: TargetPlan::default(), error: Some(error.message) },
                        }
                    },
                    span,
                )
            };
            // Unordered, so that a target whose read waits for a retry does not hold back the
            // start of the targets after it.
            let count = targets.len();
            let inspections = targets.into_iter().enumerate().map(|(index, target)| {
                let planned = plan_target(target);
                async move { (index, planned.await) }
            });
            let mut slots: Vec<Option<PlannedTarget>> = std::iter::repeat_with(|| None).take(count).collect();
            let mut finished = futures::StreamExt::buffer_unordered(futures::stream::iter(inspections), self.concurrency * crate::INSPECTIONS_PER_CHANGE);
            while let Some((index, planned)) = futures::StreamExt::next(&mut finished).await {
                slots[index] = Some(planned);
            }
            drop(finished);
            let planned: Vec<PlannedTarget> = slots.into_iter().map(|slot| slot.expect("every target was inspected")).collect();

            outputs.insert(step.id.clone(), planned.iter().map(|t| t.plan.outputs.clone()).collect());
            steps.push(StepPlan { id: step.id.clone(), action: step.action, needs: step.needs.clone(), options, max_targets: Some(max_targets), targets: planned });
        }

        Ok(Plan {
            plan_id,
            created_at: Utc::now(),
            contain_version: env!("CARGO_PKG_VERSION").to_string(),
            playbook: PlaybookInfo { name: playbook.name.clone(), path: playbook_path.to_string(), digest: playbook.digest.clone() },
            inputs,
            on_failure: playbook.on_failure,
            allow_self_lockout: self.guard.allow_self_lockout,
            approval_required: playbook.approval_required,
            steps,
        })
    }

    /// Sets a limit on targets per step that replaces the playbook's `max_targets`.
    pub fn with_max_targets(mut self, max_targets: Option<usize>) -> Self {
        self.max_targets = max_targets;
        self
    }

    /// Orders the steps so that each comes after the steps it needs.
    fn ordered_steps<'p>(&self, playbook: &'p Playbook) -> Vec<&'p contain_playbook::Step> {
        let mut ordered: Vec<&contain_playbook::Step> = Vec::new();
        while ordered.len() < playbook.steps.len() {
            let before = ordered.len();
            for step in &playbook.steps {
                let placed = ordered.iter().any(|s| s.id == step.id);
                let ready = step.needs.iter().all(|n| ordered.iter().any(|s| &s.id == n));
                if !placed && ready {
                    ordered.push(step);
                }
            }
            assert!(ordered.len() > before, "validated playbooks have no dependency cycle");
        }
        ordered
    }
}

/// Feeds what is written to a SHA-256 hash.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
