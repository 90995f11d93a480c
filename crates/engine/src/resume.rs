//! Finishing a run that was interrupted, from its journal alone.

use std::sync::Arc;

use contain_core::{CallContext, Mode};
use contain_journal::{Event, JournalWriter, Operator};

use crate::apply::Progress;
use crate::journal::{SharedJournal, append, blocking};
use crate::locks::lock_targets;
use crate::progress::journaled_operations;
use crate::report::RunReport;
use crate::runs::status_of;
use crate::{Engine, EngineError, Plan, local_user};

impl Engine {
    /// Finishes the containment of a run whose process stopped before the run ended.
    ///
    /// The plan comes from the run's journal. Operations the journal names as applied are kept.
    /// An intent without an outcome is reconciled by reading its subject, and the decision is
    /// journaled with the value read. Every other operation is applied as `apply` would, drift
    /// check included. A run that finished, or whose rollback started, is refused.
    pub async fn resume(&self, run_id: &str) -> Result<RunReport, EngineError> {
        self.resume_as(run_id, None).await
    }

    /// Resumes a run as [`Engine::resume`] does, naming the API principal who asked in the
    /// journal.
    pub async fn resume_as(&self, run_id: &str, api_principal: Option<String>) -> Result<RunReport, EngineError> {
        let refuse = |message: String| EngineError::Run { run_id: run_id.to_string(), message };
        let (state_dir, opened_run_id) = (self.state_dir.clone(), run_id.to_string());
        let (writer, journal) = blocking(move || JournalWriter::open(&state_dir, &opened_run_id)).await?;
        let writer: SharedJournal = Arc::new(writer);
        if let Some(problem) = journal.problems.iter().find(|p| !journal.torn_tail || !p.message.starts_with("torn")) {
            return Err(refuse(format!("its journal is damaged at line {}: {}; verify it before resuming", problem.line, problem.message)));
        }
        if journal.torn_tail {
            tracing::warn!(run_id, "the journal's last line was torn by a crash and was ignored");
        }

        let records = &journal.records;
        let rollback_started = records.iter().rposition(|r| matches!(r.event, Event::RollbackStarted { .. }));
        let rollback_finished = records.iter().rposition(|r| matches!(r.event, Event::RollbackFinished { .. }));
        match (rollback_started, rollback_finished) {
            (Some(started), Some(finished)) if finished > started => {
                let status = status_of(records).map(|s| s.to_string()).unwrap_or_default();
                return Err(refuse(format!("it was rolled back ({status}), so there is nothing to resume: plan and run the playbook again to contain anew")));
            }
            (Some(_), _) => return Err(refuse("its rollback was interrupted, so it cannot be resumed: finish the rollback with `contain rollback`".into())),
            _ => {}
        }
        if records.iter().any(|r| matches!(r.event, Event::RunFinished { .. })) {
            let status = status_of(records).map(|s| s.to_string()).unwrap_or_default();
            return Err(EngineError::AlreadyFinished { run_id: run_id.to_string(), status });
        }
        let plan = records
            .iter()
            .find_map(|r| match &r.event {
                Event::RunStarted { plan: Some(plan), .. } => Some(plan.parse::<Plan>()),
                _ => None,
            })
            .ok_or_else(|| refuse("its journal holds no plan (it was written by an older contain, or the crash came before the first record): roll it back instead".into()))?
            .map_err(|e| refuse(format!("the plan in its journal cannot be read: {e}")))?;

        let _locks = lock_targets(&self.state_dir, run_id, plan.steps.iter().flat_map(|s| s.targets.iter().map(|t| &t.target)))?;
        let context = CallContext::new(Mode::Apply, run_id.to_string());
        let resource_types: Vec<String> = plan.steps.iter().flat_map(|s| s.targets.iter().map(|t| t.target.resource_type.clone())).collect();
        let operator = Operator { local_user: local_user(), cloud_identities: self.caller_identities(&context, &resource_types).await?, api_principal, approved_by: None };
        append(&writer, Event::RunResumed { operator: operator.clone() }).await?;
        tracing::info!(run_id, "resuming the run");

        let progress: Progress = journaled_operations(records).into_iter().map(|op| (op.key(), op)).collect();
        self.execute(&context, writer, &plan, &progress, operator).await
    }
}
