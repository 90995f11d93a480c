//! Turns playbook source text into a validated [`Playbook`], collecting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use contain_core::{ActionKind, Provider};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::inputs::check_default;
use crate::model::{DEFAULT_MAX_TARGETS, InputSpec, InputType, OnFailure, Playbook, Step, TargetSpec};
use crate::needs::NeedsGraph;
use crate::node::{Node, NodeValue, Position};
use crate::template::{Expression, Template};

/// The largest playbook accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;

/// The maximum number of YAML nodes (scalars, lists and mappings, each alias expansion counted
/// again) in a playbook. It bounds the work of a long list or an alias bomb: at the serde-saphyr
/// default of 250,000, a 1 MiB list or a 500-byte alias bomb took 2 to 4 seconds to reject in
/// the unoptimized test build. A real playbook has a few hundred nodes.
pub const MAX_NODES: usize = 20_000;

/// The maximum number of names a message lists, such as the valid step ids after an unknown one.
const LISTED_NAMES: usize = 20;

const TOP_KEYS: &[&str] = &["name", "description", "inputs", "on_failure", "approval", "steps"];
const INPUT_KEYS: &[&str] = &["type", "description", "required", "default", "pattern", "list"];
const STEP_KEYS: &[&str] = &["id", "action", "target", "target_type", "with", "needs", "irreversible", "max_targets"];

/// Parses and validates a playbook. Pure: reads nothing but `source` and calls no cloud.
///
/// `providers` supply the resource types and check each step's options.
pub fn parse(source: &str, providers: &[Arc<dyn Provider>]) -> Result<Playbook, Diagnostics> {
    let start = Position { line: 1, column: 1 };
    if source.len() > MAX_SOURCE_BYTES {
        return Err(Diagnostics(vec![Diagnostic::new(
            start,
            format!("playbook is {} bytes: the maximum is {MAX_SOURCE_BYTES}", source.len()),
        )]));
    }

    let root = read_tree(source)?;
    let mut checker = Checker { catalog: Catalog::new(providers), diagnostics: Vec::new(), declared_inputs: BTreeSet::new(), declared_steps: Vec::new() };
    let playbook = checker.playbook(&root, source);

    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(|d| d.position);
    match playbook {
        Some(playbook) if diagnostics.is_empty() => Ok(playbook),
        _ => Err(Diagnostics(diagnostics)),
    }
}

fn read_tree(source: &str) -> Result<Node, Diagnostics> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_aliases = 100;
    budget.max_anchors = 100;
    budget.max_depth = 32;
    budget.max_nodes = MAX_NODES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);

    serde_saphyr::from_str_with_options::<Node>(source, options).map_err(|error| {
        let position = error
            .location()
            .map(|location| Position { line: location.line().max(1), column: location.column().max(1) })
            .unwrap_or(Position { line: 1, column: 1 });
        let message = error.to_string();
        let first_line = message.lines().next().unwrap_or("invalid YAML").trim().to_string();
        Diagnostics(vec![Diagnostic::new(position, format!("invalid YAML: {first_line}"))])
    })
}

struct Checker<'a> {
    catalog: Catalog<'a>,
    diagnostics: Vec<Diagnostic>,
    /// Every input name declared, valid or not, so a reference to a faulty input is not also
    /// reported as unknown.
    declared_inputs: BTreeSet<String>,
    /// Every step id declared, valid or not, for the same reason.
    declared_steps: Vec<String>,
}

type Entries<'n> = &'n [(Node, Node)];

/// The valid inputs by name, so that each template expression is looked up in log time.
type InputsByName<'i> = BTreeMap<&'i str, &'i InputSpec>;

impl Checker<'_> {
    fn error(&mut self, position: Position, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(position, message));
    }

    fn playbook(&mut self, root: &Node, source: &str) -> Option<Playbook> {
        let entries = self.mapping(root, "the playbook")?;
        self.check_keys(entries, TOP_KEYS, "playbook");

        let name = self.required_string(root, entries, "name", "the playbook");
        if let (Some(name), Some(node)) = (&name, lookup(entries, "name")) {
            if !is_identifier(name, true) {
                self.error(
                    node.position,
                    format!("invalid playbook name `{name}`: use lowercase letters, digits, `-` and `_`"),
                );
            }
        }
        let description = self.required_string(root, entries, "description", "the playbook");

        let on_failure = match lookup(entries, "on_failure") {
            None => Some(OnFailure::Halt),
            Some(node) => self.string(node, "on_failure").and_then(|value| {
                let parsed = OnFailure::parse(&value);
                if parsed.is_none() {
                    self.error(
                        node.position,
                        format!("invalid on_failure `{value}`: valid values are {}", OnFailure::VALID),
                    );
                }
                parsed
            }),
        };

        let approval_required = match lookup(entries, "approval") {
            None => Some(false),
            Some(node) => self.string(node, "approval").and_then(|value| match value.as_str() {
                "required" => Some(true),
                "none" => Some(false),
                other => {
                    self.error(node.position, format!("invalid approval `{other}`: valid values are required, none"));
                    None
                }
            }),
        };

        let inputs = match lookup(entries, "inputs") {
            None => Vec::new(),
            Some(node) => self.inputs(node),
        };
        let mut inputs_by_name = InputsByName::new();
        for input in &inputs {
            inputs_by_name.entry(input.name.as_str()).or_insert(input);
        }
        let steps = self.steps(root, entries, &inputs_by_name);

        let digest = hex::encode(Sha256::digest(source.as_bytes()));
        Some(Playbook { name: name?, description: description?, inputs, on_failure: on_failure?, approval_required: approval_required?, steps: steps?, digest })
    }

    fn inputs(&mut self, node: &Node) -> Vec<InputSpec> {
        let Some(entries) = self.mapping(node, "inputs") else {
            return Vec::new();
        };
        let mut inputs = Vec::new();
        for (key, value) in entries {
            let Some(name) = self.string(key, "an input name") else {
                continue;
            };
            self.declared_inputs.insert(name.clone());
            if !is_identifier(&name, false) || name.contains('-') {
                self.error(
                    key.position,
                    format!("invalid input name `{name}`: use lowercase letters, digits and `_`, starting with a letter"),
                );
                continue;
            }
            if let Some(input) = self.input(&name, key.position, value) {
                inputs.push(input);
            }
        }
        inputs
    }

    fn input(&mut self, name: &str, position: Position, node: &Node) -> Option<InputSpec> {
        let what = format!("input `{name}`");
        let entries = self.mapping(node, &what)?;
        self.check_keys(entries, INPUT_KEYS, &what);

        let type_name = self.required_string(node, entries, "type", &what);
        let input_type = type_name.and_then(|type_name| {
            let type_node = lookup(entries, "type")?;
            self.input_type(&type_name, type_node.position)
        });
        let description = self.required_string(node, entries, "description", &what);
        let list = lookup(entries, "list").map(|n| self.boolean(n, "list")).unwrap_or(Some(false));
        let default = lookup(entries, "default");
        let required = match lookup(entries, "required") {
            Some(n) => self.boolean(n, "required"),
            None => Some(default.is_none()),
        };

        if let (Some(true), Some(default_node)) = (required, default) {
            if lookup(entries, "required").is_some() {
                self.error(
                    default_node.position,
                    format!("{what} is required and also has a default: remove one of them"),
                );
            }
        }

        let pattern = lookup(entries, "pattern").and_then(|n| {
            let pattern = self.string(n, "pattern")?;
            if let Err(error) = regex_lite::Regex::new(&pattern) {
                self.error(n.position, format!("invalid pattern `{pattern}`: {error}"));
            }
            Some(pattern)
        });

        let input_type = input_type?;
        let list = list?;
        let default_value = match default {
            Some(default_node) => {
                let value = default_node.to_json();
                for problem in check_default(&input_type, list, pattern.as_deref(), &value, &self.catalog) {
                    self.error(default_node.position, format!("invalid default of {what}: {problem}"));
                }
                Some(value)
            }
            None => None,
        };

        Some(InputSpec {
            name: name.to_string(),
            input_type,
            list,
            description: description?,
            required: required?,
            default: default_value,
            pattern,
            position,
        })
    }

    fn input_type(&mut self, name: &str, position: Position) -> Option<InputType> {
        let builtin = match name {
            "string" => Some(InputType::String),
            "integer" => Some(InputType::Integer),
            "boolean" => Some(InputType::Boolean),
            "cidr" => Some(InputType::Cidr),
            _ => None,
        };
        if builtin.is_some() {
            return builtin;
        }
        if self.catalog.resource_type(name).is_some() {
            return Some(InputType::Resource(name.to_string()));
        }
        let mut valid: Vec<&str> = InputType::BUILTIN.to_vec();
        valid.extend(self.catalog.type_names());
        self.error(position, format!("unknown input type `{name}`: valid types are {}", valid.join(", ")));
        None
    }

    fn steps(&mut self, root: &Node, entries: Entries<'_>, inputs: &InputsByName<'_>) -> Option<Vec<Step>> {
        let Some(node) = lookup(entries, "steps") else {
            self.error(root.position, "the playbook has no `steps`: add a list of at least one step");
            return None;
        };
        let NodeValue::Sequence(items) = &node.value else {
            self.error(node.position, format!("`steps` must be a list of steps, found {}", node.type_name()));
            return None;
        };
        if items.is_empty() {
            self.error(node.position, "`steps` is empty: add at least one step");
            return None;
        }

        for item in items {
            if let Some(id) = item.mapping_entry("id").and_then(|(_, v)| v.as_str()) {
                self.declared_steps.push(id.to_string());
            }
        }
        let mut steps = Vec::new();
        let mut complete = true;
        let mut seen: BTreeMap<String, Position> = BTreeMap::new();
        for item in items {
            match self.step(item, inputs) {
                Some((step, id_position)) => {
                    if let Some(first) = seen.get(&step.id) {
                        self.error(
                            id_position,
                            format!("duplicate step id `{}`: first used at line {}", step.id, first.line),
                        );
                        complete = false;
                        continue;
                    }
                    seen.insert(step.id.clone(), id_position);
                    steps.push(step);
                }
                None => complete = false,
            }
        }

        self.check_dependencies(items, &steps);
        complete.then_some(steps)
    }

    /// Parses one step. Returns the step and the position of its id.
    fn step(&mut self, node: &Node, inputs: &InputsByName<'_>) -> Option<(Step, Position)> {
        let entries = self.mapping(node, "a step")?;
        let what = match lookup(entries, "id").and_then(Node::as_str) {
            Some(id) => format!("step `{id}`"),
            None => "a step".to_string(),
        };
        self.check_keys(entries, STEP_KEYS, &what);

        let id = self.required_string(node, entries, "id", &what);
        let id_position = lookup(entries, "id").map(|n| n.position).unwrap_or(node.position);
        if let Some(id) = &id {
            if !is_identifier(id, true) {
                self.error(id_position, format!("invalid step id `{id}`: use letters, digits, `-` and `_`"));
            }
        }

        let action = self.required_string(node, entries, "action", &what).and_then(|name| {
            let position = lookup(entries, "action")?.position;
            match name.parse::<ActionKind>() {
                Ok(kind) => Some(kind),
                Err(message) => {
                    self.error(position, message);
                    None
                }
            }
        });

        let target_node = lookup(entries, "target");
        let target = match target_node {
            Some(selector @ Node { value: NodeValue::Mapping(_), .. }) => self.selector(selector),
            _ => self.required_string(node, entries, "target", &what).and_then(|text| {
                let position = target_node?.position;
                match Template::parse(&text) {
                    Ok(template) => Some(TargetSpec::Template(template)),
                    Err(message) => {
                        self.error(position, message);
                        None
                    }
                }
            }),
        };
        let irreversible = match lookup(entries, "irreversible") {
            None => Some(false),
            Some(n) => match n.as_str() {
                Some("allow") => Some(true),
                Some("deny") => Some(false),
                _ => {
                    self.error(n.position, format!("invalid irreversible `{}`: valid values are allow, deny", n.scalar_text()));
                    None
                }
            },
        };
        let max_targets = match lookup(entries, "max_targets") {
            None => Some(DEFAULT_MAX_TARGETS),
            Some(n) => match n.value {
                NodeValue::Integer(count) if count >= 1 => Some(count as usize),
                _ => {
                    self.error(n.position, format!("invalid max_targets `{}`: expected a whole number of at least 1", n.scalar_text()));
                    None
                }
            },
        };

        let explicit_type = lookup(entries, "target_type").and_then(|n| {
            let name = self.string(n, "target_type")?;
            if self.catalog.resource_type(&name).is_none() {
                self.error(
                    n.position,
                    format!("unknown target_type `{name}`: valid types are {}", self.catalog.type_names().join(", ")),
                );
                return None;
            }
            Some(name)
        });

        let with = match lookup(entries, "with") {
            None => Some(Map::new()),
            Some(n) => match n.to_json() {
                Value::Object(map) => Some(map),
                Value::Null => Some(Map::new()),
                _ => {
                    self.error(n.position, format!("`with` must be a mapping of options, found {}", n.type_name()));
                    None
                }
            },
        };
        let needs = match lookup(entries, "needs") {
            None => Some(Vec::new()),
            Some(n) => self.string_list(n, "needs"),
        };

        let option_templates = match (&with, lookup(entries, "with")) {
            (Some(with), Some(with_node)) => self.option_templates(with, with_node),
            _ => Vec::new(),
        };
        let (id, action, target, with, needs, irreversible, max_targets) = (id?, action?, target?, with?, needs?, irreversible?, max_targets?);
        let target_position = target_node.map(|n| n.position).unwrap_or(node.position);
        let target_type = match &target {
            TargetSpec::Selector { resource_type, .. } => resource_type.clone(),
            TargetSpec::Template(template) => self.target_type(template, explicit_type, inputs, target_position)?,
        };

        match self.catalog.action(action, &target_type) {
            None => {
                let available: Vec<&str> = self
                    .catalog
                    .resource_type(&target_type)
                    .map(|info| info.actions.iter().map(|k| k.as_str()).collect())
                    .unwrap_or_default();
                self.error(
                    lookup(entries, "action").map(|n| n.position).unwrap_or(node.position),
                    format!(
                        "action `{action}` is not available for {target_type}: valid actions for it are {}",
                        if available.is_empty() { "none".to_string() } else { available.join(", ") }
                    ),
                );
                return None;
            }
            Some(handler) => {
                let with_node = lookup(entries, "with");
                let with_entries = with_node.map(Node::entries_by_key).unwrap_or_default();
                for problem in handler.check_options(&with) {
                    let position = problem
                        .key
                        .as_deref()
                        .and_then(|key| with_entries.get(key).map(|(k, _)| k.position))
                        .or(with_node.map(|w| w.position))
                        .unwrap_or(node.position);
                    self.error(position, format!("{what}: {}", problem.message));
                }
                if !irreversible {
                    for key in handler.irreversible_options(&with) {
                        let position = with_entries.get(key.as_str()).map(|(k, _)| k.position).or(with_node.map(|w| w.position)).unwrap_or(node.position);
                        self.error(position, format!("{what}: `{key}` makes changes that rollback cannot undo: add `irreversible: allow` to step `{id}` if that is intended"));
                    }
                }
            }
        }

        let step = Step { id, action, target, target_type, with, option_templates, needs, irreversible, max_targets, position: node.position };
        Some((step, id_position))
    }

    /// Parses a selector target: `select` names the resource type, the other keys are filters that
    /// the type's provider checks.
    fn selector(&mut self, node: &Node) -> Option<TargetSpec> {
        let Value::Object(mut filters) = node.to_json() else {
            return None;
        };
        let Some(select_node) = node.mapping_entry("select").map(|(_, v)| v) else {
            self.error(node.position, "the target selector has no `select`: name the resource type to select, such as aws.ec2.instance");
            return None;
        };
        let resource_type = self.string(select_node, "select")?;
        filters.remove("select");
        let Some(provider) = self.catalog.provider(&resource_type) else {
            self.error(
                select_node.position,
                format!("unknown resource type `{resource_type}` to select: valid types are {}", self.catalog.type_names().join(", ")),
            );
            return None;
        };
        let filter_entries = node.entries_by_key();
        for problem in provider.check_selector(&resource_type, &filters) {
            let position = problem.key.as_deref().and_then(|k| filter_entries.get(k)).map(|(k, _)| k.position).unwrap_or(node.position);
            self.error(position, format!("target selector: {}", problem.message));
        }
        let templates = self.option_templates(&filters, node);
        Some(TargetSpec::Selector { resource_type, filters, templates })
    }

    /// Parses every templated string among a step's options.
    fn option_templates(&mut self, with: &Map<String, Value>, with_node: &Node) -> Vec<Template> {
        fn strings<'v>(value: &'v Value, found: &mut Vec<&'v str>) {
            match value {
                Value::String(text) if text.contains("${{") => found.push(text),
                Value::Array(items) => items.iter().for_each(|v| strings(v, found)),
                Value::Object(map) => map.values().for_each(|v| strings(v, found)),
                _ => {}
            }
        }
        let mut templates = Vec::new();
        let with_entries = with_node.entries_by_key();
        for (key, value) in with {
            let mut found = Vec::new();
            strings(value, &mut found);
            for text in found {
                let position = with_entries.get(key.as_str()).map(|(_, v)| v.position).unwrap_or(with_node.position);
                match Template::parse(text) {
                    Ok(template) => templates.push(template),
                    Err(message) => self.error(position, format!("option `{key}`: {message}")),
                }
            }
        }
        templates
    }

    /// Decides a step target's resource type from `target_type` or the input the target names.
    fn target_type(
        &mut self,
        target: &Template,
        explicit: Option<String>,
        inputs: &InputsByName<'_>,
        position: Position,
    ) -> Option<String> {
        if let Some(explicit) = explicit {
            return Some(explicit);
        }
        for expression in target.expressions() {
            if let Expression::Input(name) = expression {
                if !self.declared_inputs.contains(name) {
                    let names = join(self.declared_inputs.iter().map(String::as_str));
                    self.error(position, format!("target uses unknown input `{name}`: inputs are {names}"));
                    return None;
                }
            }
        }
        let from_input = target.expressions().find_map(|expression| match expression {
            Expression::Input(name) => match &inputs.get(name.as_str())?.input_type {
                InputType::Resource(type_name) => Some(type_name.clone()),
                _ => None,
            },
            Expression::StepOutput { .. } => None,
        });
        if from_input.is_none() {
            self.error(
                position,
                format!(
                    "cannot tell the resource type of target `{}`: name an input of a resource type or set `target_type` (valid types are {})",
                    target.source,
                    self.catalog.type_names().join(", ")
                ),
            );
        }
        from_input
    }

    /// Checks `needs` and template references across steps, and looks for cycles.
    ///
    /// Steps, positions and inputs are looked up in maps, and each step's list of steps it comes
    /// after is computed once, so the time grows about linearly with the number of steps and
    /// expressions.
    fn check_dependencies(&mut self, items: &[Node], steps: &[Step]) {
        let declared = self.declared_steps.clone();
        let ids: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
        let step_names = join(ids.iter().copied());
        let mut items_by_position: BTreeMap<Position, &Node> = BTreeMap::new();
        for item in items {
            items_by_position.entry(item.position).or_insert(item);
        }
        let position_of = |step: &Step, key: &str| -> Position {
            items_by_position
                .get(&step.position)
                .and_then(|item| item.mapping_entry(key))
                .map(|(_, value)| value.position)
                .unwrap_or(step.position)
        };

        for step in steps {
            let needs_position = position_of(step, "needs");
            for need in &step.needs {
                if need == &step.id {
                    self.error(needs_position, format!("step `{}` needs itself", step.id));
                } else if !ids.contains(need.as_str()) {
                    self.error(needs_position, format!("step `{}` needs unknown step `{need}`: steps are {step_names}", step.id));
                }
            }
        }

        let graph = NeedsGraph::new(steps);
        let order = match graph.order() {
            Ok(order) => order,
            Err(cycle) => {
                let first = steps.iter().find(|s| s.id == cycle[0]).expect("cycle names known steps");
                self.error(first.position, format!("steps depend on each other in a cycle: {}", cycle.join(" -> ")));
                return;
            }
        };
        let ancestors = graph.ancestor_sets(&order);

        let input_names = join(self.declared_inputs.iter().map(String::as_str));
        for (index, step) in steps.iter().enumerate() {
            let (target_position, with_position) = (position_of(step, "target"), position_of(step, "with"));
            let in_target = step.target.templates().into_iter().flat_map(Template::expressions).map(|e| (e, target_position));
            let in_options = step.option_templates.iter().flat_map(Template::expressions).map(|e| (e, with_position));
            for (expression, position) in in_target.chain(in_options) {
                match expression {
                    Expression::Input(name) if !self.declared_inputs.contains(name) => {
                        self.error(position, format!("step `{}` uses unknown input `{name}`: inputs are {input_names}", step.id));
                    }
                    Expression::StepOutput { step: source, .. }
                        if !graph.index_of(source).is_some_and(|source_index| ancestors[index].contains(source_index)) =>
                    {
                        self.error(
                            position,
                            format!(
                                "step `{}` uses an output of step `{source}`, which it does not need: add `{source}` to its `needs`",
                                step.id
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<Entries<'n>> {
        match &node.value {
            NodeValue::Mapping(entries) => Some(entries),
            _ => {
                self.error(node.position, format!("{what} must be a mapping, found {}", node.type_name()));
                None
            }
        }
    }

    fn check_keys(&mut self, entries: Entries<'_>, allowed: &[&str], what: &str) {
        for (key, _) in entries {
            let name = key.scalar_text();
            if !allowed.contains(&name.as_str()) {
                self.error(key.position, format!("unknown key `{name}` in {what}: valid keys are {}", allowed.join(", ")));
            }
        }
    }

    fn required_string(&mut self, parent: &Node, entries: Entries<'_>, key: &str, what: &str) -> Option<String> {
        match lookup(entries, key) {
            Some(node) => self.string(node, key),
            None => {
                self.error(parent.position, format!("{what} has no `{key}`"));
                None
            }
        }
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            NodeValue::String(s) if !s.trim().is_empty() => Some(s.clone()),
            NodeValue::String(_) => {
                self.error(node.position, format!("`{what}` is empty"));
                None
            }
            NodeValue::Bool(_) => {
                self.error(
                    node.position,
                    format!("`{what}` must be a string, found a boolean: YAML reads y, n, yes, no, on, off, true and false as booleans, so quote the value"),
                );
                None
            }
            _ => {
                self.error(node.position, format!("`{what}` must be a string, found {}", node.type_name()));
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            NodeValue::Bool(b) => Some(b),
            _ => {
                self.error(node.position, format!("`{what}` must be true or false, found {}", node.type_name()));
                None
            }
        }
    }

    /// Reads a list of strings, or one string as a list of one.
    fn string_list(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        match &node.value {
            NodeValue::String(s) => Some(vec![s.clone()]),
            NodeValue::Sequence(items) => {
                let strings: Vec<Option<String>> = items.iter().map(|item| self.string(item, what)).collect();
                strings.into_iter().collect()
            }
            _ => {
                self.error(node.position, format!("`{what}` must be a list of step ids, found {}", node.type_name()));
                None
            }
        }
    }
}

impl Node {
    fn mapping_entry(&self, key: &str) -> Option<&(Node, Node)> {
        match &self.value {
            NodeValue::Mapping(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)),
            _ => None,
        }
    }

    /// Indexes a mapping's entries by their string keys, the first entry winning as in
    /// [`Node::mapping_entry`], so that placing a diagnostic on each of thousands of keys does
    /// not scan the mapping each time.
    fn entries_by_key(&self) -> BTreeMap<&str, &(Node, Node)> {
        let mut index = BTreeMap::new();
        if let NodeValue::Mapping(entries) = &self.value {
            for entry in entries {
                if let Some(key) = entry.0.as_str() {
                    index.entry(key).or_insert(entry);
                }
            }
        }
        index
    }
}

fn lookup<'n>(entries: Entries<'n>, key: &str) -> Option<&'n Node> {
    entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
}

fn is_identifier(value: &str, allow_upper: bool) -> bool {
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || (allow_upper && c.is_ascii_alphabetic()) || c.is_ascii_digit());
    first_ok
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || (allow_upper && c.is_ascii_uppercase()))
}

/// Lists names for a message, up to [`LISTED_NAMES`] of them, so that a playbook with
/// thousands of steps or inputs cannot make every message thousands of names long.
fn join<'n>(names: impl ExactSizeIterator<Item = &'n str>) -> String {
    let count = names.len();
    if count == 0 {
        return "none".to_string();
    }
    let listed = names.take(LISTED_NAMES).collect::<Vec<_>>().join(", ");
    match count.saturating_sub(LISTED_NAMES) {
        0 => listed,
        more => format!("{listed} and {more} more"),
    }
}

/// Collects every step that `id` needs, directly or through other steps.
pub(crate) fn ancestors<'s>(steps: &'s [Step], id: &str) -> BTreeSet<&'s str> {
    let graph = NeedsGraph::new(steps);
    let starts = steps.iter().enumerate().filter(|(_, step)| step.id == id).map(|(index, _)| index);
    graph.ancestors_of(starts).into_iter().map(|index| steps[index].id.as_str()).collect()
}
