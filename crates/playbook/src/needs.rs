//! The graph that `needs` draws between steps: cycles and the steps each step comes after.
//!
//! Every walk here is iterative and looks steps up by index, so a playbook with thousands of
//! steps in one long chain of `needs` takes linear time and cannot overflow the stack.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Step;

/// The steps as indexes into a slice, each with the indexes of the steps it needs. A need that
/// names no step of the slice is left out: the checker reports it on its own.
pub(crate) struct NeedsGraph {
    ids: Vec<String>,
    index: BTreeMap<String, usize>,
    needs: Vec<Vec<usize>>,
}

impl NeedsGraph {
    pub(crate) fn new(steps: &[Step]) -> Self {
        let mut index = BTreeMap::new();
        for (position, step) in steps.iter().enumerate() {
            // The first step with an id wins, as a search from the start of the list would find.
            index.entry(step.id.clone()).or_insert(position);
        }
        let needs = steps.iter().map(|step| step.needs.iter().filter_map(|need| index.get(need).copied()).collect()).collect();
        NeedsGraph { ids: steps.iter().map(|step| step.id.clone()).collect(), index, needs }
    }

    /// Returns the index of the first step with `id`.
    pub(crate) fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Orders the steps so that every step comes after the steps it needs. When the steps
    /// depend on each other in a cycle, returns the ids along the first cycle found, with the
    /// first id repeated at the end.
    ///
    /// The search starts from each step in turn and follows `needs` in the order written, so
    /// the cycle reported is the one a reader meets first.
    pub(crate) fn order(&self) -> Result<Vec<usize>, Vec<String>> {
        let count = self.ids.len();
        let mut done = vec![false; count];
        let mut on_path = vec![false; count];
        let mut order = Vec::with_capacity(count);

        for root in 0..count {
            if done[root] {
                continue;
            }
            // Each frame is a step on the current path and the position of its next need.
            let mut path: Vec<(usize, usize)> = vec![(root, 0)];
            on_path[root] = true;
            while let Some(frame) = path.last_mut() {
                let (step, next) = *frame;
                let Some(&need) = self.needs[step].get(next) else {
                    path.pop();
                    on_path[step] = false;
                    done[step] = true;
                    order.push(step);
                    continue;
                };
                frame.1 += 1;
                if on_path[need] {
                    let start = path.iter().position(|(s, _)| *s == need).unwrap_or(0);
                    let mut cycle: Vec<String> = path[start..].iter().map(|(s, _)| self.ids[*s].clone()).collect();
                    cycle.push(self.ids[need].clone());
                    return Err(cycle);
                }
                if !done[need] {
                    path.push((need, 0));
                    on_path[need] = true;
                }
            }
        }
        Ok(order)
    }

    /// Computes, for every step, the set of steps it needs directly or through other steps.
    /// `order` must come from [`NeedsGraph::order`], so that the graph has no cycle.
    pub(crate) fn ancestor_sets(&self, order: &[usize]) -> Vec<StepSet> {
        let count = self.ids.len();
        let mut sets: Vec<StepSet> = (0..count).map(|_| StepSet::new(count)).collect();
        for &step in order {
            // Every need comes earlier in `order`, so its set is already complete.
            let mut set = StepSet::new(count);
            for &need in &self.needs[step] {
                set.insert(need);
                set.union_with(&sets[need]);
            }
            sets[step] = set;
        }
        sets
    }

    /// Collects every step that the steps at `starts` need, directly or through other steps.
    pub(crate) fn ancestors_of(&self, starts: impl IntoIterator<Item = usize>) -> BTreeSet<usize> {
        let mut found = BTreeSet::new();
        let mut pending: Vec<usize> = starts.into_iter().flat_map(|start| self.needs[start].iter().copied()).collect();
        while let Some(next) = pending.pop() {
            if found.insert(next) {
                pending.extend(self.needs[next].iter().copied());
            }
        }
        found
    }
}

/// A set of step indexes as a bitset, so that the ancestor sets of thousands of steps take
/// little memory and merge a word at a time.
pub(crate) struct StepSet(Vec<u64>);

impl StepSet {
    fn new(count: usize) -> Self {
        StepSet(vec![0; count.div_ceil(64)])
    }

    fn insert(&mut self, index: usize) {
        self.0[index / 64] |= 1 << (index % 64);
    }

    fn union_with(&mut self, other: &StepSet) {
        for (word, other_word) in self.0.iter_mut().zip(&other.0) {
            *word |= other_word;
        }
    }

    pub(crate) fn contains(&self, index: usize) -> bool {
        self.0.get(index / 64).is_some_and(|word| word & (1 << (index % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use contain_core::ActionKind;
    use serde_json::Map;

    use super::*;
    use crate::model::TargetSpec;
    use crate::node::Position;
    use crate::template::Template;

    fn step(id: &str, needs: &[&str]) -> Step {
        Step {
            id: id.to_string(),
            action: ActionKind::Isolate,
            target: TargetSpec::Template(Template::parse("vm-1").expect("a literal is a valid template")),
            target_type: "test.vm".to_string(),
            with: Map::new(),
            option_templates: Vec::new(),
            needs: needs.iter().map(|need| need.to_string()).collect(),
            irreversible: false,
            max_targets: 1,
            position: Position::default(),
        }
    }

    #[test]
    fn diamond_orders_needs_first() {
        let steps = [step("d", &["b", "c"]), step("b", &["a"]), step("c", &["a"]), step("a", &[])];
        let graph = NeedsGraph::new(&steps);
        let order = graph.order().expect("a diamond has no cycle");
        let rank = |id: &str| order.iter().position(|&index| steps[index].id == id).expect("every step is ordered");
        assert!(rank("a") < rank("b"));
        assert!(rank("a") < rank("c"));
        assert!(rank("b") < rank("d"));
        assert!(rank("c") < rank("d"));

        let sets = graph.ancestor_sets(&order);
        let ancestors = |index: usize| (0..steps.len()).filter(|&other| sets[index].contains(other)).map(|other| steps[other].id.as_str()).collect::<Vec<_>>();
        assert_eq!(ancestors(0), ["b", "c", "a"]);
        assert_eq!(ancestors(1), ["a"]);
        assert!(ancestors(3).is_empty());
    }

    #[test]
    fn cycle_found_along_needs() {
        let steps = [step("a", &["b"]), step("b", &["c"]), step("c", &["b"])];
        assert_eq!(NeedsGraph::new(&steps).order(), Err(vec!["b".to_string(), "c".to_string(), "b".to_string()]));
    }

    #[test]
    fn unknown_needs_are_left_out() {
        let steps = [step("a", &["nothing"]), step("b", &["a", "a"])];
        let graph = NeedsGraph::new(&steps);
        let order = graph.order().expect("unknown needs make no cycle");
        assert_eq!(graph.ancestors_of([1]), BTreeSet::from([0]));
        assert!(!graph.ancestor_sets(&order)[0].contains(0));
        assert_eq!(graph.index_of("nothing"), None);
    }

    #[test]
    fn duplicate_id_resolves_to_first() {
        let steps = [step("a", &[]), step("a", &["b"]), step("b", &[])];
        assert_eq!(NeedsGraph::new(&steps).index_of("a"), Some(0));
        assert_eq!(crate::parse::ancestors(&steps, "a"), BTreeSet::from(["b"]));
    }
}
