//! Parses any input as a playbook and checks the result's invariants. A panic or a failed
//! check is a crash that libFuzzer saves under `artifacts/parse/`.

#![no_main]

#[path = "../support/fake_aws.rs"]
mod fake_aws;
// Each target uses only some of the shared checks.
#[allow(dead_code)]
#[path = "../support/invariants.rs"]
mod invariants;

use std::sync::{Arc, LazyLock};

use contain_core::Provider;
use libfuzzer_sys::fuzz_target;

static PROVIDERS: LazyLock<Vec<Arc<dyn Provider>>> = LazyLock::new(fake_aws::providers);

fuzz_target!(|data: &[u8]| {
    // Playbooks are read as UTF-8 text, so other bytes become U+FFFD as a lossy reader would
    // leave them, and every input still reaches the parser.
    let source = String::from_utf8_lossy(data);
    let result = contain_playbook::parse(&source, &PROVIDERS);
    if let Err(problem) = invariants::check_parse_result(&source, &result) {
        panic!("{problem}");
    }
});
