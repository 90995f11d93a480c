//! The progress bar of a run with many targets, on a terminal only: scripts and SOAR systems
//! reading the output get none.

use std::io::IsTerminal;
use std::sync::Arc;

use contain_core::Target;
use contain_engine::{Plan, RunObserver, TargetOutcome};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The smallest number of step targets that gets a bar: smaller runs finish before it helps.
const MIN_TARGETS: usize = 5;

/// A bar counting the targets of a run as its steps finish with them.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// Returns a bar for the plan when stderr is a terminal, the output is text, and the plan has
    /// at least [`MIN_TARGETS`] step targets.
    pub fn for_plan(plan: &Plan, text_output: bool) -> Option<Arc<Bar>> {
        let targets: usize = plan.steps.iter().map(|s| s.targets.len()).sum();
        if !text_output || targets < MIN_TARGETS || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(targets as u64), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} targets {msg}").expect("a valid template").progress_chars("=> ");
        bar.set_style(style);
        Some(Arc::new(Bar { bar }))
    }

    /// Removes the bar before the report is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl RunObserver for Bar {
    fn target_done(&self, step: &str, target: &Target, outcome: TargetOutcome) {
        if !matches!(outcome, TargetOutcome::Contained | TargetOutcome::AlreadyContained) {
            // A target that did not go well stays on the screen above the bar.
            let outcome = serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            self.bar.println(format!("{step}: {target}: {outcome}"));
        }
        self.bar.set_message(format!("{step}: {target}"));
        self.bar.inc(1);
    }
}
