//! The `contain` command line: validate, plan, apply, run, rollback, and the run history.
//!
//! With `--output json`, standard output carries one JSON document; logs and prompts go to
//! standard error.

mod args;
mod commands;
mod config;
mod json_out;
mod progress;
mod render;
mod report;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use args::Cli;

/// Exit statuses, documented in `contain --help`.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const INVALID: u8 = 2;
    pub const NOT_CONTAINED: u8 = 3;
    pub const DRIFT: u8 = 4;
}

/// An error in what the user gave: usage, playbook or input. Exits with status 2.
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("contain: error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("contain: error: {error:#}");
            let code = if error.downcast_ref::<InvalidInput>().is_some() { exit::INVALID } else { exit::ERROR };
            ExitCode::from(code)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let mut filter = EnvFilter::try_from_env("CONTAIN_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // At trace level the AWS SDK logs whole requests and the signing's canonical request, which
    // carry the session token: those targets stop at debug, whatever CONTAIN_LOG sets. Below
    // trace nothing is added, so that the cap never raises a level.
    if filter.max_level_hint().is_none_or(|level| level == tracing_subscriber::filter::LevelFilter::TRACE) {
        for target in ["aws_sigv4", "aws_smithy_runtime", "aws_smithy_runtime_api", "aws_smithy_http_client"] {
            filter = filter.add_directive(format!("{target}=debug").parse().expect("a valid directive"));
        }
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).with_ansi(ansi).init();
}
