//! Resolves input values against the ready playbooks and checks the result's invariants.
//!
//! The first byte picks the playbook. The rest is read as lines of `NAME=VALUE`, the pairs a
//! user gives with `--input`. Every value also goes through `check_cidr`.

#![no_main]

#[path = "../support/fake_aws.rs"]
mod fake_aws;
// Each target uses only some of the shared checks.
#[allow(dead_code)]
#[path = "../support/invariants.rs"]
mod invariants;

use std::sync::{Arc, LazyLock};

use contain_core::Provider;
use contain_playbook::{Playbook, check_cidr, parse, resolve_inputs};
use libfuzzer_sys::fuzz_target;

static PROVIDERS: LazyLock<Vec<Arc<dyn Provider>>> = LazyLock::new(fake_aws::providers);

static PLAYBOOKS: LazyLock<Vec<Playbook>> = LazyLock::new(|| {
    [
        include_str!("../corpus/accept-all-input-types.yaml"),
        include_str!("../corpus/accept-aws-access-key-compromise.yaml"),
        include_str!("../corpus/accept-aws-block-addresses.yaml"),
        include_str!("../corpus/accept-aws-ec2-instance-compromise.yaml"),
        include_str!("../corpus/accept-aws-saml-provider-lockout.yaml"),
    ]
    .into_iter()
    .map(|source| parse(source, &PROVIDERS).unwrap_or_else(|d| panic!("a seed playbook does not parse: {:?}", d.0)))
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let playbook = &PLAYBOOKS[usize::from(choice) % PLAYBOOKS.len()];
    let text = String::from_utf8_lossy(rest);
    let given: Vec<(String, String)> = text
        .split('\n')
        .map(|line| match line.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (line.to_string(), String::new()),
        })
        .collect();

    for (_, value) in &given {
        if let Err(problem) = invariants::check_cidr_outcome(value, check_cidr(value).is_ok()) {
            panic!("{problem}");
        }
    }
    let result = resolve_inputs(playbook, &given, &PROVIDERS);
    if let Err(problem) = invariants::check_resolved(playbook, &result) {
        panic!("{problem}");
    }
});
