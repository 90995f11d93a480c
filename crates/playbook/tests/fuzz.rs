//! Bounded fuzzing of playbook parsing and input checks, on stable Rust.
//!
//! The seeds are the files in `fuzz/corpus`. A seed named `accept-*` must parse, one named
//! `reject-yaml-*` (alias bombs, deep nesting) must be rejected by the YAML reader, and every
//! other seed may parse or not but must not panic.
//!
//! The mutation tests run for `CONTAIN_FUZZ_SECONDS` seconds each (15 by default) and stop when
//! the time is up, whatever they reached. Each mutant is built by its own generator, seeded from
//! the run seed and the mutant's index, so `CONTAIN_FUZZ_SEED=N` replays a whole run and adding
//! `CONTAIN_FUZZ_MUTANT=I` runs and prints mutant `I` alone. A panic, a broken invariant or a
//! call slower than [`HANG_LIMIT`] is a finding: the test writes the input to `fuzz/findings/`
//! and fails with the seed, the index and the escaped input.

#[path = "../fuzz/support/fake_aws.rs"]
mod fake_aws;
#[path = "../fuzz/support/invariants.rs"]
mod invariants;

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use contain_core::Provider;
use contain_playbook::{Diagnostics, MAX_NODES, MAX_SOURCE_BYTES, Playbook, check_cidr, parse, resolve_inputs};
use serde_json::json;

/// The time each mutation test runs when `CONTAIN_FUZZ_SECONDS` is not set.
const DEFAULT_SECONDS: f64 = 15.0;

/// A single call slower than this is reported as a hang. Every input is at most
/// [`MAX_SOURCE_BYTES`] plus a little, so a call that takes seconds is a complexity bug, even in
/// the unoptimized test build. The limit leaves room for a CI machine busy with other tests: the
/// hangs this test found took 26 s and more.
const HANG_LIMIT: Duration = Duration::from_secs(5);

/// The findings kept and printed per test. Later failures are counted only.
const MAX_FINDINGS: usize = 10;

/// Seeds whose name starts with this are picked an eighth as often as the others: an alias
/// bomb takes over a hundred times as long to parse as a playbook, so its mutants would take
/// most of the time. The choice goes by name, not by a measured time, so that a run seed
/// replays the same mutants on any machine.
const SLOW_SEED_PREFIX: &str = "reject-yaml-alias-bomb-";

/// The characters of the first finding's input printed in the failure message. Longer inputs
/// are cut there, and the findings file and the seed still replay them in full.
const PRINTED_INPUT_CHARS: usize = 8192;

/// The largest mutant, a little past [`MAX_SOURCE_BYTES`] so that the size check runs too.
const MAX_MUTANT_BYTES: usize = MAX_SOURCE_BYTES + 64;

/// YAML and template fragments that the mutator inserts, so mutants reach past the tokenizer.
const TOKENS: &[&str] = &[
    "&a ", "*a", "&b ", "*b", "[", "]", "{", "}", ": ", ":", "- ", "-", "? ", ", ", "${{", "}}", "${{ inputs.", "${{ steps.", ".outputs.",
    "${{ inputs.instance }}", "${{ steps.isolate.outputs.role }}", "<<: ", "---\n", "...\n", "!!str ", "!!binary ", "!!map ", "!custom ",
    "|\n", ">-\n", "|+2\n", "\"", "'", "#", "\t", "\r\n", "\r", "\n", "\u{feff}", "\0", "\\u0000", "\\", "~", "null", "true", "y", "no",
    "1e999", "-0x1", ".nan", "-.inf", "99999999999999999999", "-9223372036854775808", "%YAML 1.2\n", "%TAG ! tag:x:\n", "name: ",
    "description: ", "inputs:\n", "steps:\n", "needs: ", "needs: [", "target: ", "target_type: aws.iam.role", "select: ", "with: ",
    "id: ", "action: isolate", "type: cidr", "type: integer", "list: true", "default: ", "pattern: ", "required: ", "max_targets: ",
    "irreversible: allow", "on_failure: rollback", "\u{202e}", "é", "😀", "\u{85}", "\u{2028}",
];

/// Bytes that mean something to YAML, or that parsers tend to mishandle.
const INTERESTING_BYTES: &[u8] = b"\0\t\r\n \"'#&*!|>-:?,[]{}%@`~\\\x7f\xc3\xef\xff";

// ---------------------------------------------------------------------------------------------
// Random numbers, corpus files and findings
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, fast and good enough to choose mutations. Not for anything secret.
struct Rng(u64);

impl Rng {
    /// Creates the generator of one mutant, so that each mutant can be rebuilt on its own.
    fn for_case(run_seed: u64, index: u64) -> Rng {
        let mut rng = Rng(run_seed ^ index.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..n`. `n` must not be 0.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Returns true once in `n` calls on average.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

struct Seed {
    name: String,
    bytes: Vec<u8>,
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Reads every file of a directory, sorted by name. A missing directory has no files.
fn read_files(dir: &Path) -> Vec<Seed> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<Seed> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())).path())
        .filter(|path| path.is_file())
        .map(|path| Seed {
            name: path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())),
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

fn corpus() -> Vec<Seed> {
    let dir = fuzz_dir().join("corpus");
    let seeds = read_files(&dir);
    assert!(!seeds.is_empty(), "the fuzz corpus {} is empty or missing", dir.display());
    seeds
}

fn fuzz_seconds() -> Duration {
    let seconds = match std::env::var("CONTAIN_FUZZ_SECONDS") {
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or_else(|| panic!("invalid CONTAIN_FUZZ_SECONDS `{text}`: expected a number of seconds such as 600")),
        Err(_) => DEFAULT_SECONDS,
    };
    Duration::from_secs_f64(seconds)
}

/// Returns the run seed from `CONTAIN_FUZZ_SEED`, or a new one from the clock.
fn run_seed() -> u64 {
    match std::env::var("CONTAIN_FUZZ_SEED") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("invalid CONTAIN_FUZZ_SEED `{text}`: expected an unsigned integer")),
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
    }
}

/// Returns the mutant index from `CONTAIN_FUZZ_MUTANT`, set to run that one mutant of the run
/// `CONTAIN_FUZZ_SEED` and print it.
fn mutant_to_replay() -> Option<u64> {
    let text = std::env::var("CONTAIN_FUZZ_MUTANT").ok()?;
    Some(text.trim().parse().unwrap_or_else(|_| panic!("invalid CONTAIN_FUZZ_MUTANT `{text}`: expected a mutant index such as 4211")))
}

/// Decides whether a mutation loop goes on: once for a replay, else until the time is up.
fn keep_running(replay: Option<u64>, runs: u64, started: Instant, budget: Duration) -> bool {
    match replay {
        Some(_) => runs == 0,
        None => started.elapsed() < budget,
    }
}

/// Writes a line straight to the process's stderr. The test harness captures `eprintln!`, and a
/// stack overflow aborts the process before that capture is shown, so the seed goes here.
fn announce(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The kind of a failure (`panic`, `hang`, `invariant`, `cidr`) and what happened.
type Flaw = (&'static str, String);

/// One failure found by a mutation test.
struct Finding {
    kind: &'static str,
    detail: String,
    index: u64,
    input: Vec<u8>,
    file: Option<PathBuf>,
}

/// The findings of one test run, kept up to [`MAX_FINDINGS`] with distinct details.
struct Findings {
    test: &'static str,
    seed: u64,
    reported: Vec<Finding>,
    total: usize,
}

impl Findings {
    fn new(test: &'static str, seed: u64) -> Self {
        Findings { test, seed, reported: Vec::new(), total: 0 }
    }

    /// Records a finding and writes its input to `fuzz/findings/` as `{test}-{kind}-{hash}.{extension}`.
    fn record(&mut self, kind: &'static str, detail: String, index: u64, input: &[u8], extension: &str) {
        self.total += 1;
        if self.reported.len() >= MAX_FINDINGS || self.reported.iter().any(|f| f.kind == kind && f.detail == detail) {
            return;
        }
        let dir = fuzz_dir().join("findings");
        let path = dir.join(format!("{}-{kind}-{:016x}.{extension}", self.test, fnv1a(input)));
        let file = match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
            Ok(()) => Some(path),
            Err(error) => {
                announce(&format!("cannot write the finding to {}: {error}", path.display()));
                None
            }
        };
        self.reported.push(Finding { kind, detail, index, input: input.to_vec(), file });
    }

    /// Fails the test with every kept finding, the first one in full.
    fn assert_none(&self) {
        if self.total == 0 {
            return;
        }
        let mut report = format!(
            "{} finding(s) in {} with CONTAIN_FUZZ_SEED={}: set it to replay the run, and set CONTAIN_FUZZ_MUTANT to a mutant index to replay one. The first {}:\n",
            self.total,
            self.test,
            self.seed,
            self.reported.len()
        );
        for (number, finding) in self.reported.iter().enumerate() {
            let text = String::from_utf8_lossy(&finding.input);
            let limit = if number == 0 { PRINTED_INPUT_CHARS } else { 200 };
            let mut printed = format!("{:?}", text.chars().take(limit).collect::<String>());
            if text.chars().count() > limit {
                printed.push_str(&format!(" (the first {limit} characters; the saved file has all)"));
            }
            let file = finding.file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "not saved".to_string());
            report.push_str(&format!(
                "\n[{number}] {} at mutant {}: {}\n    saved to: {file}\n    input ({} bytes, escaped): {printed}\n",
                finding.kind,
                finding.index,
                finding.detail,
                finding.input.len()
            ));
        }
        panic!("{report}");
    }
}

/// FNV-1a, to name finding files after their content.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

// ---------------------------------------------------------------------------------------------
// Catching panics
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Set while this thread runs code under [`catch_panic`], so the hook records the panic
    /// quietly in place of printing it.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs, once per process, a panic hook that records the message and location of panics
/// under [`catch_panic`] and leaves every other panic to the previous hook.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                let location = info.location().map(|l| l.to_string()).unwrap_or_else(|| "an unknown place".to_string());
                let message = payload_text(info.payload());
                LAST_PANIC.with(|last| *last.borrow_mut() = Some(format!("panicked at {location}: {message}")));
            } else {
                previous(info);
            }
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a payload that is not text".to_string()
    }
}

/// Runs `f` and returns its result, or the panic message and location.
fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_panic_hook();
    CATCHING.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    result.map_err(|payload| LAST_PANIC.with(|last| last.borrow_mut().take()).unwrap_or_else(|| payload_text(payload.as_ref())))
}

/// Checks `check_cidr` on any text, with panics caught.
fn check_cidr_text(text: &str) -> Result<(), String> {
    let accepted = catch_panic(|| check_cidr(text))?.is_ok();
    invariants::check_cidr_outcome(text, accepted)
}

// ---------------------------------------------------------------------------------------------
// Mutation
// ---------------------------------------------------------------------------------------------

/// Returns a random position in `0..=len`.
fn position(rng: &mut Rng, len: usize) -> usize {
    rng.below(len + 1)
}

/// Returns a random span of a text `len` bytes long, mostly short.
fn span(rng: &mut Rng, len: usize) -> (usize, usize) {
    let start = rng.below(len + 1);
    let max = if rng.one_in(8) { len - start } else { (len - start).min(64) };
    (start, start + rng.below(max + 1))
}

/// Returns the byte offsets where lines start, including 0.
fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let after_breaks = bytes.iter().enumerate().filter(|(_, byte)| **byte == b'\n').map(|(i, _)| i + 1);
    std::iter::once(0).chain(after_breaks).collect()
}

fn line_span(rng: &mut Rng, bytes: &[u8]) -> (usize, usize) {
    let starts = line_starts(bytes);
    let line = rng.below(starts.len());
    let end = starts.get(line + 1).copied().unwrap_or(bytes.len());
    (starts[line], end)
}

/// Returns a malformed or odd template expression.
fn template(rng: &mut Rng) -> String {
    let heads = ["${{", "${{ ", "$ {{", "${", "${{{", "$${{", "{{", "${{\t", "${{\n"];
    let bodies = [
        "inputs.instance", "inputs.", "inputs", "inputs..x", "inputs.x.y", "steps.isolate.outputs.role", "steps..outputs.y", "steps.s.outputs",
        "steps.s.outputs.y.z", "steps.s", "env.HOME", "", " ", "inputs.é", "inputs.😀", "${{ inputs.x }}", "steps.${{", "INPUTS.x", "inputs.x y",
    ];
    let tails = ["}}", " }}", "}", "", "}}}}", " } }", "}}${{", "\n}}"];
    format!("{}{}{}", rng.pick(&heads), rng.pick(&bodies), rng.pick(&tails))
}

/// Returns an odd scalar to put in place of a word.
fn odd_scalar(rng: &mut Rng) -> String {
    let fixed = [
        "~", "null", "true", "no", "y", "0", "-1", "1.5", "1e400", ".nan", ".inf", "0x7fffffffffffffff", "0o777", "18446744073709551616",
        "-9223372036854775809", "\"\"", "''", "[]", "{}", "[a, b]", "{a: b}", "*a", "&a x", "!!binary aGk=", "\"\\0\"", "\"\\uD800\"",
        "i-0123", "arn:aws:iam::123456789012:role/x", "10.0.0.0/8", "::/0", "aws.ec2.instance", "aws.iam.role", "isolate", "block", "revoke",
        "disable_sso", "snapshot", "rollback", "halt", "allow",
    ];
    if rng.one_in(4) { template(rng) } else { rng.pick(&fixed).to_string() }
}

/// Returns `unit` repeated `times` times, cut so that a text of `len` bytes grows to at most
/// [`MAX_MUTANT_BYTES`]. Without the cut, repeating a long line would build gigabytes.
fn repeat_within(unit: &[u8], times: usize, len: usize) -> Vec<u8> {
    let room = MAX_MUTANT_BYTES.saturating_sub(len);
    let times = times.min(room / unit.len().max(1) + 1);
    let mut repeated = unit.repeat(times);
    repeated.truncate(room);
    repeated
}

/// Applies one random mutation to `bytes`. `others` supplies material for splices.
fn mutate_once(rng: &mut Rng, bytes: &mut Vec<u8>, others: &[Seed]) {
    let len = bytes.len();
    match rng.below(13) {
        0 if len > 0 => {
            let at = rng.below(len);
            bytes[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            bytes[at] = *rng.pick(INTERESTING_BYTES);
        }
        2 => {
            let at = position(rng, len);
            let count = 1 + rng.below(8);
            let inserted: Vec<u8> = (0..count).map(|_| if rng.one_in(2) { rng.next() as u8 } else { *rng.pick(INTERESTING_BYTES) }).collect();
            bytes.splice(at..at, inserted);
        }
        3 => {
            let (start, end) = span(rng, len);
            bytes.drain(start..end);
        }
        4 => {
            // Duplicating a span, sometimes many times, grows lists and nesting.
            let (start, end) = span(rng, len);
            let copy = bytes[start..end].to_vec();
            let times = if rng.one_in(32) { 1 + rng.below(2000) } else { 1 + rng.below(4) };
            let at = position(rng, len);
            let repeated = repeat_within(&copy, times, len);
            bytes.splice(at..at, repeated);
        }
        5 => {
            let other = &rng.pick(others).bytes;
            let (start, end) = span(rng, other.len());
            let at = position(rng, len);
            if rng.one_in(2) {
                bytes.truncate(at);
                bytes.extend_from_slice(&other[start..]);
            } else {
                bytes.splice(at..at, other[start..end].iter().copied());
            }
        }
        6 => {
            let at = position(rng, len);
            bytes.splice(at..at, rng.pick(TOKENS).bytes());
        }
        7 => {
            // Deep indentation or nesting, to probe the depth limit and the indentation rules.
            let at = position(rng, len);
            let max_depth = if rng.one_in(4) { 300 } else { 40 };
            let depth = 1 + rng.below(max_depth);
            let inserted = match rng.below(5) {
                0 => format!("\n{}", " ".repeat(depth)),
                1 => format!("\n{}- x", " ".repeat(depth)),
                2 => "[".repeat(depth) + &"]".repeat(rng.below(depth + 1)),
                3 => "{a: ".repeat(depth) + &"}".repeat(rng.below(depth + 1)),
                _ => (0..depth).map(|i| format!("\n{}k{i}:", "  ".repeat(i))).collect(),
            };
            bytes.splice(at..at, inserted.into_bytes());
        }
        8 if len > 0 => {
            let (start, end) = line_span(rng, bytes);
            let line = bytes[start..end].to_vec();
            match rng.below(3) {
                0 => {
                    let times = if rng.one_in(8) { 1 + rng.below(500) } else { 1 };
                    let repeated = repeat_within(&line, times, len);
                    bytes.splice(start..start, repeated);
                }
                1 => {
                    bytes.drain(start..end);
                }
                _ => {
                    let (other_start, other_end) = line_span(rng, bytes);
                    let other_line = bytes[other_start..other_end].to_vec();
                    if other_start >= end {
                        bytes.splice(other_start..other_end, line);
                        bytes.splice(start..end, other_line);
                    }
                }
            }
        }
        9 if len > 0 => {
            // Replaces a word (a run of letters, digits, `_`, `-` or `.`) with an odd scalar.
            let at = rng.below(len);
            let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.';
            let start = (0..=at).rev().take_while(|&i| is_word(bytes[i])).last().unwrap_or(at);
            let end = (at..len).find(|&i| !is_word(bytes[i])).unwrap_or(len);
            bytes.splice(start..end, odd_scalar(rng).into_bytes());
        }
        10 => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let changed = match rng.below(5) {
                0 => text.replace('\n', "\r\n"),
                1 => text.replace('\n', "\r"),
                2 => format!("\u{feff}{text}"),
                3 => text.replace("  ", "\t"),
                _ => text.replace(": ", ":\t"),
            };
            *bytes = changed.into_bytes();
        }
        11 => {
            let at = position(rng, len);
            bytes.splice(at..at, template(rng).into_bytes());
        }
        _ => {
            // A huge scalar: a long run of one character, sometimes past the size limit.
            let at = position(rng, len);
            let size = if rng.one_in(64) { MAX_SOURCE_BYTES - len.min(MAX_SOURCE_BYTES) + rng.below(3) } else { rng.below(20_000) };
            let fill = *rng.pick(b"a x\n-[");
            bytes.splice(at..at, std::iter::repeat_n(fill, size));
        }
    }
}

/// Builds one mutant from a seed chosen from `schedule` (indexes into `seeds`): one to five
/// stacked mutations, cut to [`MAX_MUTANT_BYTES`].
fn mutant(rng: &mut Rng, seeds: &[Seed], schedule: &[usize]) -> Vec<u8> {
    let mut bytes = seeds[*rng.pick(schedule)].bytes.clone();
    let rounds = 1 + rng.below(5);
    for _ in 0..rounds {
        mutate_once(rng, &mut bytes, seeds);
        bytes.truncate(MAX_MUTANT_BYTES);
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// Input values
// ---------------------------------------------------------------------------------------------

/// Returns a text value to give for an input: well-formed for some type, or odd.
fn input_value(rng: &mut Rng) -> String {
    let numbers = ["0", "-0", "+1", " 1", "1 ", "42", "-1", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1.5", "1e3", "0x10", "NaN", "inf", "٣"];
    let words = ["true", "false", "True", "yes", "", " ", ",", ",,", "a,b,,c", " , ", "null", "~", "[1, 2]", "{a: 1}", "{\"a\": 1}", "a=b", "${{ inputs.x }}", "INC-12", "INC-"];
    let ids = ["i-0123456789abcdef0", "vpc-1", "subnet-2", "sg-3", "arn:aws:iam::123456789012:saml-provider/x", "arn:", "i-", "alice", "role/x", "AKIA0123456789ABCDEF"];
    match rng.below(10) {
        0 => rng.pick(&numbers).to_string(),
        1 => rng.pick(&words).to_string(),
        2 => rng.pick(&ids).to_string(),
        3 => cidr_like(rng),
        4 => {
            // A list as the command line takes it: comma-separated, with odd items.
            let count = rng.below(6);
            (0..count).map(|_| if rng.one_in(2) { cidr_like(rng) } else { rng.pick(&ids).to_string() }).collect::<Vec<_>>().join(if rng.one_in(3) { ", " } else { "," })
        }
        5 => {
            // Control characters and multi-byte text, to catch byte-index slicing.
            let pieces = ["\0", "\x07", "\x1b[31m", "\r\n", "\n", "\t", "\u{7f}", "\u{85}", "\u{202e}", "\u{feff}", "é", "😀", "ß", "\u{0301}"];
            (0..1 + rng.below(12)).map(|_| *rng.pick(&pieces)).collect()
        }
        6 => {
            // A very long value, up to 256 KiB.
            let unit = rng.pick(&["a", "1", "1.", ",", "😀", "10.0.0.0/8,", "INC-9"]).to_string();
            let max_repeats = if rng.one_in(4) { 262_144 / unit.len() } else { 2000 };
            unit.repeat(1 + rng.below(max_repeats))
        }
        7 => (0..rng.below(40)).map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}')).collect(),
        8 => json!({ "k": [1, "two", { "three": null }] }).to_string(),
        _ => {
            let mut value = rng.pick(&ids).to_string();
            let at = rng.below(value.len() + 1);
            if value.is_char_boundary(at) {
                let piece = *rng.pick(&["\0", " ", ",", "é", "/"]);
                value.insert_str(at, piece);
            }
            value
        }
    }
}

/// Returns a string that looks more or less like a CIDR.
fn cidr_like(rng: &mut Rng) -> String {
    let addresses = [
        "10.0.0.0", "10.0.0.1", "0.0.0.0", "255.255.255.255", "256.0.0.0", "1.2.3", "01.2.3.4", "::", "::1", "2001:db8::", "::ffff:1.2.3.4",
        "fe80::1%eth0", "[::1]", "1.2.3.4.5", "", "x",
    ];
    let prefixes = ["0", "8", "24", "32", "33", "128", "129", "255", "256", "-1", "+8", "08", "", " 8", "8 ", "99999999999999999999", "8/8"];
    match rng.below(4) {
        0 => rng.pick(&addresses).to_string(),
        1 => format!("{}//{}", rng.pick(&addresses), rng.pick(&prefixes)),
        _ => format!("{}/{}", rng.pick(&addresses), rng.pick(&prefixes)),
    }
}

/// Returns random `(name, value)` pairs for a playbook: mostly its declared inputs, sometimes unknown
/// names, repeats and odd values.
fn given_inputs(rng: &mut Rng, playbook: &Playbook) -> Vec<(String, String)> {
    let count = rng.below(8);
    (0..count)
        .map(|_| {
            let name = if !playbook.inputs.is_empty() && !rng.one_in(8) {
                rng.pick(&playbook.inputs).name.clone()
            } else {
                rng.pick(&["", "unknown", "INSTANCE", "é", "a=b", "x".repeat(10_000).as_str()]).to_string()
            };
            (name, input_value(rng))
        })
        .collect()
}

/// Resolves random inputs for `playbook` and checks the outcome. Returns the inputs and the
/// flaw found, if any.
fn fuzz_inputs_once(rng: &mut Rng, playbook: &Playbook, providers: &[Arc<dyn Provider>]) -> (Vec<(String, String)>, Option<Flaw>) {
    let given = given_inputs(rng, playbook);
    for (_, value) in &given {
        if let Err(detail) = check_cidr_text(value) {
            return (given, Some(("cidr", detail)));
        }
    }
    let started = Instant::now();
    let outcome = catch_panic(|| resolve_inputs(playbook, &given, providers));
    let elapsed = started.elapsed();
    let finding = match outcome {
        Err(panic) => Some(("panic", panic)),
        Ok(_) if elapsed > HANG_LIMIT => Some(("hang", format!("resolve_inputs took {elapsed:?}"))),
        Ok(result) => invariants::check_resolved(playbook, &result).err().map(|detail| ("invariant", detail)),
    };
    (given, finding)
}

/// Serializes a playbook name and given values as JSON, for a findings file.
fn given_json(playbook: &str, given: &[(String, String)]) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({ "playbook": playbook, "given": given })).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Parses one input with panics caught, and returns the result, the time taken and the flaw
/// found, if any.
fn parse_checked(source: &str, providers: &[Arc<dyn Provider>]) -> (Option<Result<Playbook, Diagnostics>>, Duration, Option<Flaw>) {
    let started = Instant::now();
    let outcome = catch_panic(|| parse(source, providers));
    let elapsed = started.elapsed();
    match outcome {
        Err(panic) => (None, elapsed, Some(("panic", panic))),
        Ok(result) => {
            let finding = if elapsed > HANG_LIMIT {
                Some(("hang", format!("parse took {elapsed:?} on {} bytes", source.len())))
            } else {
                invariants::check_parse_result(source, &result).err().map(|detail| ("invariant", detail))
            };
            (Some(result), elapsed, finding)
        }
    }
}

#[test]
fn corpus_parses_without_panic() {
    let providers = fake_aws::providers();
    let seeds = corpus();
    let mut failures = Vec::new();

    for seed in &seeds {
        let source = String::from_utf8_lossy(&seed.bytes);
        let (result, elapsed, finding) = parse_checked(&source, &providers);
        if let Some((kind, detail)) = finding {
            failures.push(format!("{}: {kind}: {detail}", seed.name));
            continue;
        }
        let Some(result) = result else { continue };
        if seed.name.starts_with("accept-") && let Err(diagnostics) = &result {
            failures.push(format!("{}: expected to parse, but: {:?}", seed.name, diagnostics.0));
        }
        if seed.name.starts_with("reject-yaml-") {
            match &result {
                Ok(_) => failures.push(format!("{}: expected the YAML reader to reject it, but it parsed", seed.name)),
                Err(diagnostics) if !diagnostics.0.iter().any(|d| d.message.starts_with("invalid YAML")) => {
                    failures.push(format!("{}: expected an `invalid YAML` diagnostic, found {:?}", seed.name, diagnostics.0));
                }
                Err(_) => {}
            }
        }
        println!("{:>10.3?}  {}", elapsed, seed.name);
    }

    assert!(failures.is_empty(), "{} corpus file(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn corpus_has_every_required_kind() {
    let names: Vec<String> = corpus().into_iter().map(|seed| seed.name).collect();
    for prefix in ["accept-aws-", "reject-yaml-alias-bomb-", "reject-yaml-deep-nesting-"] {
        assert!(names.iter().any(|name| name.starts_with(prefix)), "the corpus has no `{prefix}*` file");
    }
}

/// Re-parses every saved parse finding, so that a fixed finding can be moved into the corpus
/// and a remaining one fails here with its file name.
#[test]
fn saved_findings_parse_without_panic() {
    let providers = fake_aws::providers();
    let findings: Vec<Seed> = read_files(&fuzz_dir().join("findings")).into_iter().filter(|f| f.name.starts_with("parse-")).collect();
    let mut failures = Vec::new();
    for finding in &findings {
        let source = String::from_utf8_lossy(&finding.bytes);
        if let (_, _, Some((kind, detail))) = parse_checked(&source, &providers) {
            failures.push(format!("{}: {kind}: {detail}", finding.name));
        }
    }
    assert!(failures.is_empty(), "{} saved finding(s) still fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn parse_survives_mutants() {
    let providers = fake_aws::providers();
    let seeds = corpus();
    let budget = fuzz_seconds();
    let seed = run_seed();
    announce(&format!("parse_survives_mutants: CONTAIN_FUZZ_SEED={seed}, running for {budget:?}"));

    let mut schedule = Vec::new();
    for (index, seed) in seeds.iter().enumerate() {
        let copies = if seed.name.starts_with(SLOW_SEED_PREFIX) { 1 } else { 8 };
        schedule.extend(std::iter::repeat_n(index, copies));
    }
    let replay = mutant_to_replay();

    let mut findings = Findings::new("parse", seed);
    let started = Instant::now();
    let (mut runs, mut accepted, mut total_bytes) = (0u64, 0u64, 0u64);
    let mut slowest = (Duration::ZERO, 0usize, 0u64);
    let mut resolved = 0u64;
    while keep_running(replay, runs, started, budget) {
        let index = replay.unwrap_or(runs);
        runs += 1;
        let mut rng = Rng::for_case(seed, index);
        let bytes = mutant(&mut rng, &seeds, &schedule);
        let source = String::from_utf8_lossy(&bytes).into_owned();
        total_bytes += source.len() as u64;

        let (result, elapsed, finding) = parse_checked(&source, &providers);
        if replay.is_some() {
            let outcome = match &result {
                Some(Ok(_)) => "accepted".to_string(),
                Some(Err(diagnostics)) => format!("rejected: {:?}", diagnostics.0),
                None => "panicked".to_string(),
            };
            println!("mutant {index} ({} bytes, escaped): {source:?}\nparsed in {elapsed:?}, {outcome}", source.len());
        }
        if elapsed > slowest.0 {
            slowest = (elapsed, source.len(), index);
        }
        if let Some((kind, detail)) = finding {
            findings.record(kind, detail, index, source.as_bytes(), "yaml");
            if kind == "hang" {
                break;
            }
            continue;
        }

        // An accepted mutant may declare odd inputs (patterns, defaults), so its inputs are
        // fuzzed too.
        if let Some(Ok(playbook)) = result {
            accepted += 1;
            let (_, finding) = fuzz_inputs_once(&mut rng, &playbook, &providers);
            resolved += 1;
            if let Some((kind, detail)) = finding {
                findings.record(kind, format!("resolve_inputs on this accepted mutant: {detail}"), index, source.as_bytes(), "yaml");
            }
        }
    }

    println!(
        "parse: {runs} mutants in {:.1?} ({accepted} accepted, {resolved} input sets resolved), mean size {} bytes",
        started.elapsed(),
        total_bytes / runs.max(1)
    );
    println!("parse: slowest parse {:?} on {} bytes (mutant {})", slowest.0, slowest.1, slowest.2);
    findings.assert_none();
}

#[test]
fn resolve_inputs_survives_random_values() {
    let providers = fake_aws::providers();
    let playbooks: Vec<(String, Playbook)> = corpus()
        .into_iter()
        .filter(|seed| seed.name.starts_with("accept-"))
        .map(|seed| {
            let source = String::from_utf8_lossy(&seed.bytes).into_owned();
            let playbook = parse(&source, &providers).unwrap_or_else(|d| panic!("{} does not parse: {:?}", seed.name, d.0));
            (seed.name, playbook)
        })
        .collect();
    let types: BTreeSet<&str> = playbooks.iter().flat_map(|(_, p)| p.inputs.iter().map(|i| i.input_type.name())).collect();
    for required in ["string", "integer", "boolean", "cidr", "aws.ec2.instance"] {
        assert!(types.contains(required), "no accepted corpus playbook declares an input of type {required}: found {types:?}");
    }

    let budget = fuzz_seconds();
    let seed = run_seed();
    announce(&format!("resolve_inputs_survives_random_values: CONTAIN_FUZZ_SEED={seed}, running for {budget:?}"));
    let mut findings = Findings::new("inputs", seed);
    let started = Instant::now();
    let mut runs = 0u64;
    let mut slowest = (Duration::ZERO, 0u64);
    let replay = mutant_to_replay();
    while keep_running(replay, runs, started, budget) {
        let index = replay.unwrap_or(runs);
        runs += 1;
        let mut rng = Rng::for_case(seed, index);
        let (name, playbook) = rng.pick(&playbooks);
        let call_started = Instant::now();
        let (given, finding) = fuzz_inputs_once(&mut rng, playbook, &providers);
        let elapsed = call_started.elapsed();
        if replay.is_some() {
            println!("input set {index} for {name}, resolved in {elapsed:?}: {given:?}");
        }
        if elapsed > slowest.0 {
            slowest = (elapsed, index);
        }
        if let Some((kind, detail)) = finding {
            findings.record(kind, detail, index, &given_json(name, &given), "json");
            if kind == "hang" {
                break;
            }
        }
    }

    println!("inputs: {runs} input sets in {:.1?}, slowest {:?} (set {})", started.elapsed(), slowest.0, slowest.1);
    findings.assert_none();
}

/// Builds a playbook with `inputs` string inputs named `i0`, `i1`, … (plus `vm`, an instance)
/// and the given steps, written in flow style to keep it short.
fn generated_playbook(inputs: usize, steps: impl IntoIterator<Item = String>) -> String {
    let mut text = String::from("name: generated\ndescription: d\ninputs:\n  vm: {type: aws.ec2.instance, description: d}\n");
    for k in 0..inputs {
        text.push_str(&format!("  i{k}: {{type: string, description: d}}\n"));
    }
    text.push_str("steps:\n");
    for step in steps {
        text.push_str(&step);
        text.push('\n');
    }
    text
}

/// Repeats `unit` as often as fits in `bytes`.
fn repeat_to(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes / unit.len())
}

/// Large documents of the shapes that stress the parser's limits, generated here because the
/// corpus stays small. Documents made of many nodes stay just under [`MAX_NODES`], so that
/// the checker, not the YAML reader, handles them. Each must finish under the hang limit.
#[test]
fn large_documents_finish_quickly() {
    let providers = fake_aws::providers();
    let bytes = MAX_SOURCE_BYTES - 4096;
    // A flow-style step with an id, an action, a target and needs is 9 nodes.
    let steps_in_budget = (MAX_NODES - 100) / 9;
    let chain = |k: usize, rest: &str| match k {
        0 => format!("- {{id: s0, action: isolate, target: \"${{{{ inputs.vm }}}}\"{rest}}}"),
        _ => format!("- {{id: s{k}, action: isolate, target: \"${{{{ inputs.vm }}}}\", needs: s{}{rest}}}", k - 1),
    };
    let one_step = |extra: &str| generated_playbook(0, [format!("- id: a\n  action: isolate\n  target: \"${{{{ inputs.vm }}}}\"\n{extra}")]);

    let cases: Vec<(&str, String)> = vec![
        ("plain scalar of 1 MiB", format!("name: x\ndescription: {}\n", "a".repeat(bytes))),
        ("quoted scalar of 1 MiB with escapes", format!("name: x\ndescription: \"{}\"\n", repeat_to("\\t", bytes))),
        ("block scalar of 1 MiB", format!("name: x\ndescription: |\n{}", repeat_to("  line of text\n", bytes))),
        ("flow list of 1 MiB", format!("name: [{}]\n", repeat_to("1,", bytes))),
        ("block list of 1 MiB", format!("name:\n{}", repeat_to("- x\n", bytes))),
        ("alias bomb at the alias limit", {
            let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
            for level in 1..10 {
                text.push_str(&format!("a{level}: &a{level} [{}]\n", vec![format!("*a{}", level - 1); 10].join(", ")));
            }
            text
        }),
        ("many mapping keys", (0..MAX_NODES / 2 - 10).map(|k| format!("k{k}: v\n")).collect()),
        ("many duplicate keys", repeat_to("name: x\n", bytes)),
        ("long chain of needs", generated_playbook(0, (0..steps_in_budget).map(|k| chain(k, "")))),
        ("long cycle of needs", generated_playbook(0, (0..steps_in_budget).map(|k| {
            let need = if k == 0 { steps_in_budget - 1 } else { k - 1 };
            format!("- {{id: s{k}, action: isolate, target: \"${{{{ inputs.vm }}}}\", needs: s{need}}}")
        }))),
        ("long chain using outputs of the step before", generated_playbook(0, (0..steps_in_budget * 9 / 11).map(|k| match k {
            0 => chain(0, ""),
            _ => format!("- {{id: s{k}, action: revoke, target: \"${{{{ steps.s{}.outputs.r }}}}\", target_type: aws.iam.role, needs: s{}}}", k - 1, k - 1),
        }))),
        ("many steps with unknown needs", generated_playbook(0, (0..steps_in_budget * 9 / 11).map(|k| format!("- {{id: s{k}, action: isolate, target: \"${{{{ inputs.vm }}}}\", needs: [x{k}, y{k}]}}")))),
        ("one step with many unknown needs", one_step(&format!("  needs: [{}]", (0..MAX_NODES - 100).map(|k| format!("n{k}")).collect::<Vec<_>>().join(",")))),
        ("many steps naming an unknown input", generated_playbook(0, (0..steps_in_budget).map(|k| format!("- {{id: s{k}, action: isolate, target: \"${{{{ inputs.none }}}}\"}}")))),
        ("many inputs and many steps naming an unknown input", generated_playbook(MAX_NODES / 12, (0..MAX_NODES / 16).map(|k| format!("- {{id: s{k}, action: isolate, target: \"${{{{ inputs.none }}}}\"}}")))),
        ("many inputs and an option naming unknown inputs", generated_playbook(MAX_NODES / 7, [format!(
            "- {{id: a, action: isolate, target: \"${{{{ inputs.vm }}}}\", with: {{incident: \"{}\"}}}}",
            (0..30_000).map(|k| format!("${{{{ inputs.u{k} }}}}")).collect::<String>()
        )])),
        ("many inputs and a target naming the last one", generated_playbook(MAX_NODES / 7, [format!(
            "- {{id: a, action: isolate, target: \"{}\"}}",
            repeat_to(&format!("${{{{ inputs.i{} }}}}", MAX_NODES / 7 - 1), bytes / 2)
        )])),
        ("a target naming many unknown inputs", generated_playbook(0, [format!(
            "- {{id: a, action: isolate, target: \"{}\", target_type: aws.ec2.instance}}",
            (0..40_000).map(|k| format!("${{{{ inputs.u{k} }}}}")).collect::<String>()
        )])),
        ("a target naming many step outputs", generated_playbook(0, [chain(0, ""), format!(
            "- {{id: b, action: revoke, target: \"{}\", target_type: aws.iam.role}}",
            (0..30_000).map(|k| format!("${{{{ steps.s{k}.outputs.r }}}}")).collect::<String>()
        )])),
        ("an option with many templated keys", one_step(&format!(
            "  with: {{{}}}",
            (0..MAX_NODES / 2 - 100).map(|k| format!("k{k}: \"${{{{ inputs.vm }}}}\"")).collect::<Vec<_>>().join(", ")
        ))),
        ("a selector with many filters", generated_playbook(0, [format!(
            "- {{id: a, action: isolate, target: {{select: aws.ec2.instance, {}}}}}",
            (0..MAX_NODES / 2 - 100).map(|k| format!("f{k}: x")).collect::<Vec<_>>().join(", ")
        )])),
        ("a step with many unknown keys", one_step(&(0..MAX_NODES / 2 - 100).map(|k| format!("  k{k}: x\n")).collect::<String>())),
        ("a step with many unknown keys and needs", one_step(&format!(
            "{}  needs: [{}]\n",
            (0..MAX_NODES / 4).map(|k| format!("  k{k}: x\n")).collect::<String>(),
            (0..MAX_NODES / 2 - 100).map(|k| format!("n{k}")).collect::<Vec<_>>().join(",")
        ))),
        ("many malformed templates", one_step(&format!("  with: {{incident: \"{}\"}}", repeat_to("${{ x }}", bytes / 2)))),
    ];

    let mut slow = Vec::new();
    for (name, source) in &cases {
        assert!(source.len() <= MAX_SOURCE_BYTES, "the `{name}` case is {} bytes, over the limit", source.len());
        let (result, elapsed, finding) = parse_checked(source, &providers);
        let outcome = match &result {
            Some(Ok(_)) => "accepted".to_string(),
            Some(Err(d)) => format!("{} diagnostic(s), the first: {}", d.0.len(), d.0[0].message.chars().take(100).collect::<String>()),
            None => "panicked".to_string(),
        };
        println!("{elapsed:>10.3?}  {name}: {} bytes, {outcome}", source.len());
        if let Some((kind, detail)) = finding {
            slow.push(format!("{name}: {kind}: {detail}"));
        }
    }
    assert!(slow.is_empty(), "{} large document(s) failed:\n{}", slow.len(), slow.join("\n"));
}
