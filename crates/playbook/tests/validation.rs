//! Every validation error kind, each at its line and column.

use std::sync::Arc;

use async_trait::async_trait;
use contain_core::{
    Action, ActionError, ActionKind, CallContext, CallerIdentity, Operation, OptionProblem, Provider, ResourceTypeInfo, Target, TargetParseError,
    TargetPlan,
};
use contain_playbook::{Diagnostic, InputType, OnFailure, parse, resolve_inputs};
use serde_json::{Map, Value};

/// A provider with one resource type, `test.vm`, whose ids look like `vm-<digits>`, and an
/// isolate action that takes one boolean option, `sever`. It makes no cloud call: validation is
/// pure and never calls inspect or apply.
struct TestProvider;

struct TestIsolate;

#[async_trait]
impl Provider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }

    fn resource_types(&self) -> Vec<ResourceTypeInfo> {
        vec![ResourceTypeInfo { name: "test.vm", expected: "vm-<digits>", actions: vec![ActionKind::Isolate] }]
    }

    fn parse_target(&self, resource_type: &str, value: &str) -> Result<Target, TargetParseError> {
        let digits = value.strip_prefix("vm-").filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        match digits {
            Some(_) => Ok(Target { resource_type: resource_type.into(), id: value.into(), region: None, account: None }),
            None => Err(TargetParseError { resource_type: resource_type.into(), value: value.into(), expected: "a VM id such as vm-42".into() }),
        }
    }

    fn action(&self, kind: ActionKind, resource_type: &str) -> Option<Arc<dyn Action>> {
        (kind == ActionKind::Isolate && resource_type == "test.vm").then(|| Arc::new(TestIsolate) as Arc<dyn Action>)
    }

    async fn caller_identity(&self, _: &CallContext) -> Result<CallerIdentity, ActionError> {
        unreachable!("validation makes no cloud call")
    }
}

#[async_trait]
impl Action for TestIsolate {
    fn kind(&self) -> ActionKind {
        ActionKind::Isolate
    }

    fn resource_type(&self) -> &'static str {
        "test.vm"
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        options
            .iter()
            .filter_map(|(key, value)| match key.as_str() {
                "sever" if value.is_boolean() || contain_core::is_template(value) => None,
                "sever" => Some(OptionProblem { key: Some(key.clone()), message: format!("`sever` must be true or false, found {value}") }),
                "incident" => None,
                _ => Some(OptionProblem { key: Some(key.clone()), message: format!("unknown option `{key}`: valid options are sever, incident") }),
            })
            .collect()
    }

    async fn inspect(&self, _: &CallContext, _: &Target) -> Result<Value, ActionError> {
        unreachable!("validation makes no cloud call")
    }

    fn plan(&self, _: &Target, _: &Map<String, Value>, _: &Value) -> Result<TargetPlan, ActionError> {
        unreachable!("validation does not plan")
    }

    async fn read(&self, _: &CallContext, _: &Target, _: &Operation) -> Result<Value, ActionError> {
        unreachable!("validation makes no cloud call")
    }

    async fn apply(&self, _: &CallContext, _: &Target, _: &Operation) -> Result<Value, ActionError> {
        unreachable!("validation makes no cloud call")
    }

    async fn revert(&self, _: &CallContext, _: &Target, _: &Operation, _: &Value) -> Result<Vec<String>, ActionError> {
        unreachable!("validation makes no cloud call")
    }
}

fn providers() -> Vec<Arc<dyn Provider>> {
    vec![Arc::new(TestProvider)]
}

const VALID: &str = "\
name: vm-compromise
description: Isolate a VM.
inputs:
  vm: { type: test.vm, description: The VM. }
  incident: { type: string, description: Incident id., pattern: '^INC-[0-9]+$' }
  ranges: { type: cidr, list: true, description: Ranges., default: [10.0.0.0/8] }
on_failure: rollback
steps:
  - id: isolate
    action: isolate
    target: \"${{ inputs.vm }}\"
    with: { sever: true, incident: \"${{ inputs.incident }}\" }
  - id: again
    action: isolate
    target: \"${{ steps.isolate.outputs.vm }}\"
    target_type: test.vm
    needs: isolate
";

/// Parses `source` and returns its diagnostics as `(line, column, message)`.
fn problems(source: &str) -> Vec<(u64, u64, String)> {
    match parse(source, &providers()) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics.0.into_iter().map(|Diagnostic { position, message }| (position.line, position.column, message)).collect(),
    }
}

/// Asserts that one diagnostic is at `line:column` and contains every fragment.
fn assert_problem(source: &str, line: u64, column: u64, fragments: &[&str]) {
    let found = problems(source);
    let hit = found.iter().find(|(l, c, _)| *l == line && *c == column);
    let Some((_, _, message)) = hit else {
        panic!("no problem at {line}:{column}; found {found:#?}");
    };
    for fragment in fragments {
        assert!(message.contains(fragment), "{line}:{column}: `{message}` lacks `{fragment}`");
    }
}

#[test]
fn valid_playbook_parses() {
    let playbook = parse(VALID, &providers()).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(playbook.name, "vm-compromise");
    assert_eq!(playbook.on_failure, OnFailure::Rollback);
    assert_eq!(playbook.inputs.len(), 3);
    assert_eq!(playbook.inputs[0].input_type, InputType::Resource("test.vm".into()));
    assert!(playbook.inputs[2].list);
    assert!(!playbook.inputs[2].required);
    assert_eq!(playbook.steps[1].needs, ["isolate"]);
    assert_eq!(playbook.steps[0].option_templates.len(), 1);
    assert_eq!(playbook.digest.len(), 64);
}

#[test]
fn yaml_syntax_error() {
    assert_problem("name: x\nsteps: [\n  - id: a\n", 3, 3, &["invalid YAML"]);
}

#[test]
fn top_level_not_a_mapping() {
    assert_problem("- a\n- b\n", 1, 1, &["the playbook must be a mapping, found a list"]);
}

#[test]
fn unknown_top_level_key() {
    assert_problem(&VALID.replace("on_failure: rollback", "on_failure: rollback\ntimeout: 5"), 8, 1, &["unknown key `timeout`", "valid keys are name, description"]);
}

#[test]
fn unknown_input_key() {
    let source = VALID.replace("description: The VM. }", "description: The VM., colour: red }");
    assert_problem(&source, 4, 46, &["unknown key `colour` in input `vm`", "type, description"]);
}

#[test]
fn unknown_step_key() {
    assert_problem(&VALID.replace("    action: isolate\n    target: \"${{ inputs.vm }}\"", "    action: isolate\n    retries: 3\n    target: \"${{ inputs.vm }}\""), 11, 5, &["unknown key `retries` in step `isolate`"]);
}

#[test]
fn missing_required_keys() {
    assert_problem("description: d\nsteps:\n  - id: a\n    action: isolate\n", 1, 1, &["the playbook has no `name`"]);
    assert_problem("name: x\ndescription: d\ninputs:\n  vm: { type: test.vm }\nsteps: []\n", 4, 7, &["input `vm` has no `description`"]);
    assert_problem("name: x\ndescription: d\nsteps:\n  - id: a\n    action: isolate\n", 4, 5, &["step `a` has no `target`"]);
    assert_problem("name: x\ndescription: d\n", 1, 1, &["has no `steps`"]);
}

#[test]
fn wrong_value_types() {
    assert_problem(&VALID.replace("name: vm-compromise", "name: [a, b]"), 1, 7, &["`name` must be a string, found a list"]);
    assert_problem(&VALID.replace("list: true", "list: maybe"), 6, 31, &["`list` must be true or false"]);
    assert_problem(&VALID.replace("    needs: isolate", "    needs: { a: 1 }"), 17, 12, &["`needs` must be a list of step ids"]);
    assert_problem(&VALID.replace("    with: { sever: true, incident: \"${{ inputs.incident }}\" }", "    with: [1]"), 12, 11, &["`with` must be a mapping"]);
}

#[test]
fn empty_steps() {
    assert_problem("name: x\ndescription: d\nsteps: []\n", 3, 8, &["`steps` is empty"]);
}

#[test]
fn invalid_names() {
    assert_problem(&VALID.replace("name: vm-compromise", "name: VM Compromise"), 1, 7, &["invalid playbook name `VM Compromise`"]);
    assert_problem(&VALID.replace("  - id: again", "  - id: \"two words\""), 13, 9, &["invalid step id `two words`"]);
    assert_problem(&VALID.replace("  ranges:", "  Ranges:"), 6, 3, &["invalid input name `Ranges`"]);
}

#[test]
fn unknown_input_type() {
    assert_problem(&VALID.replace("type: test.vm, description: The VM.", "type: test.vmm, description: The VM."), 4, 15, &["unknown input type `test.vmm`", "string, integer, boolean, cidr, test.vm"]);
}

#[test]
fn invalid_on_failure() {
    assert_problem(&VALID.replace("on_failure: rollback", "on_failure: retry"), 7, 13, &["invalid on_failure `retry`", "halt, rollback"]);
}

#[test]
fn unknown_action() {
    assert_problem(&VALID.replace("  - id: isolate\n    action: isolate", "  - id: isolate\n    action: quarantine"), 10, 13, &["unknown action `quarantine`", "isolate, block, revoke, disable_sso, snapshot"]);
}

#[test]
fn action_not_available_for_type() {
    assert_problem(&VALID.replace("  - id: isolate\n    action: isolate", "  - id: isolate\n    action: revoke"), 10, 13, &["action `revoke` is not available for test.vm", "valid actions for it are isolate"]);
}

#[test]
fn provider_option_problems() {
    assert_problem(&VALID.replace("with: { sever: true,", "with: { sever: 3,"), 12, 13, &["step `isolate`: `sever` must be true or false"]);
    assert_problem(&VALID.replace("with: { sever: true,", "with: { sever: true, speed: fast,"), 12, 26, &["unknown option `speed`"]);
}

#[test]
fn duplicate_step_id() {
    assert_problem(&VALID.replace("  - id: again", "  - id: isolate"), 13, 9, &["duplicate step id `isolate`", "first used at line 9"]);
}

#[test]
fn needs_unknown_step() {
    assert_problem(&VALID.replace("    needs: isolate", "    needs: [isolate, snapshot]"), 17, 12, &["needs unknown step `snapshot`", "steps are again, isolate"]);
}

#[test]
fn needs_itself() {
    assert_problem(&VALID.replace("    needs: isolate", "    needs: [isolate, again]"), 17, 12, &["step `again` needs itself"]);
}

#[test]
fn dependency_cycle() {
    let source = VALID.replace("    target: \"${{ inputs.vm }}\"\n", "    target: \"${{ inputs.vm }}\"\n    needs: again\n");
    assert_problem(&source, 9, 5, &["cycle", "isolate -> again -> isolate"]);
}

#[test]
fn template_syntax_error() {
    assert_problem(&VALID.replace("target: \"${{ inputs.vm }}\"", "target: \"${{ inputs.vm \""), 11, 13, &["unclosed expression"]);
    assert_problem(&VALID.replace("target: \"${{ inputs.vm }}\"", "target: \"${{ env.HOME }}\"\n    target_type: test.vm"), 11, 13, &["invalid expression `env.HOME`", "inputs.NAME"]);
}

#[test]
fn template_unknown_input() {
    let source = VALID.replace("target: \"${{ inputs.vm }}\"", "target: \"${{ inputs.host }}\"\n    target_type: test.vm");
    assert_problem(&source, 11, 13, &["uses unknown input `host`", "inputs are incident, ranges, vm"]);
    let source = VALID.replace("incident: \"${{ inputs.incident }}\"", "incident: \"${{ inputs.ticket }}\"");
    assert_problem(&source, 12, 11, &["uses unknown input `ticket`"]);
}

#[test]
fn template_step_not_needed() {
    assert_problem(&VALID.replace("    needs: isolate\n", ""), 15, 13, &["uses an output of step `isolate`, which it does not need"]);
}

#[test]
fn target_type_unknown() {
    assert_problem(&VALID.replace("    target_type: test.vm", "    target_type: test.disk"), 16, 18, &["unknown target_type `test.disk`"]);
    assert_problem(&VALID.replace("    target_type: test.vm\n", ""), 15, 13, &["cannot tell the resource type", "set `target_type`"]);
}

#[test]
fn invalid_default_and_pattern() {
    assert_problem(&VALID.replace("default: [10.0.0.0/8]", "default: [10.0.0.1/8]"), 6, 68, &["invalid default of input `ranges`", "invalid CIDR `10.0.0.1/8`"]);
    assert_problem(&VALID.replace("pattern: '^INC-[0-9]+$'", "pattern: '^INC-[0-9+$'"), 5, 65, &["invalid pattern"]);
    assert_problem(&VALID.replace("{ type: test.vm, description: The VM. }", "{ type: test.vm, description: The VM., required: true, default: vm-1 }"), 4, 71, &["required and also has a default"]);
}

#[test]
fn every_problem_reported_at_once() {
    let source = VALID
        .replace("on_failure: rollback", "on_failure: retry")
        .replace("  - id: isolate\n    action: isolate", "  - id: isolate\n    action: quarantine")
        .replace("    needs: isolate", "    needs: [isolate, nothing]");
    let found = problems(&source);
    let lines: Vec<u64> = found.iter().map(|(line, _, _)| *line).collect();
    assert!(lines.contains(&7), "{found:#?}");
    assert!(lines.contains(&10), "{found:#?}");
    assert!(lines.contains(&17), "{found:#?}");
}

#[test]
fn alias_bomb_is_rejected() {
    let mut source = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..12 {
        let previous = format!("*a{}", level - 1);
        source.push_str(&format!("a{level}: &a{level} [{}]\n", vec![previous.as_str(); 10].join(", ")));
    }
    let started = std::time::Instant::now();
    let found = problems(&source);
    assert!(!found.is_empty());
    assert!(found[0].2.contains("invalid YAML"), "{found:#?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the alias bomb took {:?}", started.elapsed());
}

#[test]
fn oversized_playbook_is_rejected() {
    let source = format!("name: x\ndescription: \"{}\"\n", "a".repeat(contain_playbook::MAX_SOURCE_BYTES));
    assert_problem(&source, 1, 1, &["the maximum is"]);
}

mod inputs {
    use super::*;

    fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn values_are_checked_and_defaults_filled() {
        let playbook = parse(VALID, &providers()).unwrap();
        let values = resolve_inputs(&playbook, &given(&[("vm", "vm-7"), ("incident", "INC-1")]), &providers()).unwrap();
        assert_eq!(values["vm"], "vm-7");
        assert_eq!(values["ranges"], serde_json::json!(["10.0.0.0/8"]));
    }

    #[test]
    fn list_input_takes_repeats_and_commas() {
        let playbook = parse(VALID, &providers()).unwrap();
        let values = resolve_inputs(
            &playbook,
            &given(&[("vm", "vm-7"), ("incident", "INC-1"), ("ranges", "10.1.0.0/16,10.2.0.0/16"), ("ranges", "192.0.2.0/24")]),
            &providers(),
        )
        .unwrap();
        assert_eq!(values["ranges"], serde_json::json!(["10.1.0.0/16", "10.2.0.0/16", "192.0.2.0/24"]));
    }

    #[test]
    fn every_input_problem_is_reported() {
        let playbook = parse(VALID, &providers()).unwrap();
        let problems = resolve_inputs(
            &playbook,
            &given(&[("vm", "vm-x"), ("incident", "ticket 9"), ("ranges", "10.0.0.0/33"), ("colour", "red")]),
            &providers(),
        )
        .unwrap_err();
        let text = problems.join("\n");
        assert!(text.contains("unknown input `colour`"), "{text}");
        assert!(text.contains("`vm-x`"), "{text}");
        assert!(text.contains("vm-42"), "{text}");
        assert!(text.contains("`ticket 9` does not match the pattern"), "{text}");
        assert!(text.contains("invalid CIDR `10.0.0.0/33`"), "{text}");
        assert_eq!(problems.len(), 4, "{text}");
    }

    #[test]
    fn single_value_input_rejects_two() {
        let playbook = parse(VALID, &providers()).unwrap();
        let problems = resolve_inputs(&playbook, &given(&[("vm", "vm-1"), ("vm", "vm-2"), ("incident", "INC-1")]), &providers()).unwrap_err();
        assert!(problems[0].contains("takes one value, but 2 were given"), "{problems:?}");
    }

    #[test]
    fn missing_required_input() {
        let playbook = parse(VALID, &providers()).unwrap();
        let problems = resolve_inputs(&playbook, &given(&[("vm", "vm-1")]), &providers()).unwrap_err();
        assert_eq!(problems, ["missing required input `incident` (Incident id.): pass it as --input incident=VALUE"]);
    }
}

mod cascades {
    use super::*;

    #[test]
    fn unknown_input_in_target_is_named() {
        assert_problem(&VALID.replace("target: \"${{ inputs.vm }}\"", "target: \"${{ inputs.vmm }}\""), 11, 13, &["target uses unknown input `vmm`", "inputs are incident, ranges, vm"]);
    }

    #[test]
    fn faulty_input_is_not_also_unknown() {
        let found = problems(&VALID.replace("type: test.vm, description: The VM.", "type: test.vm, description: The VM., required: maybe"));
        assert!(found.iter().any(|(_, _, m)| m.contains("`required` must be true or false")), "{found:#?}");
        assert!(!found.iter().any(|(_, _, m)| m.contains("unknown input `vm`")), "{found:#?}");
    }

    #[test]
    fn step_list_names_faulty_steps_too() {
        let source = VALID.replace("    target_type: test.vm\n", "    target_type: test.vmm\n").replace("    needs: isolate", "    needs: [isolate]\n  - id: third\n    action: isolate\n    target: \"${{ inputs.vm }}\"\n    needs: [fourth]");
        let found = problems(&source);
        let message = found.iter().find(|(_, _, m)| m.contains("needs unknown step `fourth`")).map(|(_, _, m)| m.clone()).unwrap_or_else(|| panic!("{found:#?}"));
        assert!(message.contains("again, isolate, third"), "{message}");
    }

    #[test]
    fn yaml_boolean_word_suggests_quotes() {
        assert_problem(&VALID.replace("description: Isolate a VM.", "description: n"), 2, 14, &["found a boolean", "quote the value"]);
    }

    #[test]
    fn templated_option_passes_validation() {
        let source = VALID.replace("with: { sever: true,", "with: { sever: \"${{ inputs.incident }}\",");
        assert!(problems(&source).is_empty(), "{:#?}", problems(&source));
    }
}

/// Documents built to hit the parser's limits: each must be checked in well under a second of
/// optimized code, so the bounds below only catch a return to quadratic or worse time.
mod limits {
    use std::time::{Duration, Instant};

    use super::*;

    /// Far above the time these take (about a second at most, unoptimized), and below the 7 to
    /// 49 seconds that the earlier quadratic and cubic checks took on them, unoptimized.
    const BOUND: Duration = Duration::from_secs(5);

    /// Parses `source`, asserting that it took less than [`BOUND`].
    fn timed_problems(source: &str) -> Vec<(u64, u64, String)> {
        let started = Instant::now();
        let found = problems(source);
        assert!(started.elapsed() < BOUND, "parsing took {:?}", started.elapsed());
        found
    }

    /// Builds a playbook of `count` steps that each need the one before. With `outputs`, each step
    /// targets an output of the one before (11 YAML nodes a step), else the input `vm` (9 nodes).
    fn chain(count: usize, outputs: bool) -> String {
        let mut source = String::from("name: chain\ndescription: d\ninputs:\n  vm: { type: test.vm, description: d }\nsteps:\n");
        source.push_str("  - { id: s0, action: isolate, target: \"${{ inputs.vm }}\" }\n");
        for k in 1..count {
            let target = match outputs {
                true => format!("\"${{{{ steps.s{}.outputs.vm }}}}\", target_type: test.vm", k - 1),
                false => "\"${{ inputs.vm }}\"".to_string(),
            };
            source.push_str(&format!("  - {{ id: s{k}, action: isolate, target: {target}, needs: s{} }}\n", k - 1));
        }
        source
    }

    #[test]
    fn alias_bomb_under_alias_limit_is_rejected() {
        // Nine levels of ten aliases: 90 aliases, under the alias limit, that expand to 10^9 nodes.
        let mut source = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9 {
            source.push_str(&format!("a{level}: &a{level} [{}]\n", vec![format!("*a{}", level - 1); 10].join(", ")));
        }
        let found = timed_problems(&source);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].2.contains("invalid YAML"), "{found:#?}");
        assert!(found[0].2.contains("budget breached"), "{found:#?}");
    }

    #[test]
    fn node_limit_rejects_long_list() {
        let source = format!("name: [{}]\n", "1,".repeat(contain_playbook::MAX_NODES));
        let found = timed_problems(&source);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].2.contains("budget breached"), "{found:#?}");
    }

    #[test]
    fn long_needs_chain_is_accepted() {
        // A chain as long as the node limit allows: checking it took 49 s unoptimized when each
        // step's ancestors were found by scanning the list of steps.
        let found = timed_problems(&chain(2200, false));
        assert!(found.is_empty(), "{:#?}", &found[..found.len().min(3)]);
    }

    #[test]
    fn long_needs_cycle_is_reported() {
        let source = chain(2200, false).replace("  - { id: s0, action: isolate, target: \"${{ inputs.vm }}\" }", "  - { id: s0, action: isolate, target: \"${{ inputs.vm }}\", needs: s2199 }");
        let found = timed_problems(&source);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].2.starts_with("steps depend on each other in a cycle: s0 -> s2199 -> s2198"), "{}", &found[0].2[..200]);
    }

    #[test]
    fn step_output_not_needed_in_long_chain() {
        let source = chain(1500, true).replace("target: \"${{ steps.s1498.outputs.vm }}\"", "target: \"${{ steps.s1499.outputs.vm }}\"");
        let found = timed_problems(&source);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].2.contains("step `s1499` uses an output of step `s1499`, which it does not need"), "{found:#?}");
    }

    #[test]
    fn long_name_lists_are_cut() {
        let source = chain(100, false).replace("needs: s98 }", "needs: [s98, nothing] }");
        let found = timed_problems(&source);
        assert_eq!(found.len(), 1, "{found:#?}");
        let message = &found[0].2;
        assert!(message.contains("needs unknown step `nothing`: steps are s0, s1, s10, s11,"), "{message}");
        assert!(message.ends_with("and 80 more"), "{message}");
    }

    #[test]
    fn many_unknown_needs_are_each_reported() {
        let needs: Vec<String> = (0..5000).map(|k| format!("n{k}")).collect();
        let source = chain(500, false).replace("needs: s498 }", &format!("needs: [s498, {}] }}", needs.join(", ")));
        let found = timed_problems(&source);
        assert_eq!(found.len(), 5000, "{:#?}", &found[..3]);
        assert!(found.iter().all(|(_, _, message)| message.len() < 300), "{:#?}", &found[..3]);
    }

    #[test]
    fn unknown_input_placed_in_target_and_option() {
        let source = VALID.replace(
            "    target: \"${{ inputs.vm }}\"\n    with: { sever: true, incident: \"${{ inputs.incident }}\" }",
            "    target: \"${{ inputs.nothing }}\"\n    target_type: test.vm\n    with: { sever: true, incident: \"${{ inputs.nothing }}\" }",
        );
        let found = timed_problems(&source);
        let places: Vec<(u64, u64)> = found.iter().filter(|(_, _, m)| m.contains("unknown input `nothing`")).map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(places, [(11, 13), (13, 11)], "{found:#?}");
    }
}

#[test]
fn approval_values() {
    assert_problem("name: p\ndescription: d\napproval: maybe\nsteps: []\n", 3, 11, &["invalid approval `maybe`", "valid values are required, none"]);
}
