use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  error: a cloud call, the journal or the configuration failed, or a plan could not inspect a target
  2  invalid usage, playbook or input (nothing was sent to the cloud)
  3  the run did not contain every target: it ended partial, failed or rolled_back
  4  drift: a target changed since the plan (apply) or since the run (rollback refused it)

Environment:
  CONTAIN_STATE_DIR  where journals are kept (default $XDG_STATE_HOME/contain or ~/.local/state/contain)
  CONTAIN_CONFIG     the configuration file (default $XDG_CONFIG_HOME/contain/config.toml)
  CONTAIN_LOG        log filter, such as info or contain_engine=debug (logs go to standard error)
  AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL and the other standard AWS settings";

/// Contain a cloud incident from a playbook: plan, apply, roll back.
#[derive(Debug, Parser)]
#[command(name = "contain", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Directory that contains the run journals.
    #[arg(long, global = true, env = "CONTAIN_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Configuration file (TOML).
    #[arg(long, global = true, env = "CONTAIN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// More log output on standard error: -v for info, -vv for debug.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks and report every problem as FILE:LINE:COLUMN: message.
    Validate {
        /// Playbook files to check.
        #[arg(required = true, value_name = "PLAYBOOK")]
        playbooks: Vec<PathBuf>,
    },
    /// Show what a playbook would change, sending read-only requests only.
    Plan {
        /// The playbook file.
        #[arg(value_name = "PLAYBOOK")]
        playbook: PathBuf,
        #[command(flatten)]
        inputs: InputArgs,
        #[command(flatten)]
        output: OutputArgs,
        /// Write the plan to this file, for `contain apply`.
        #[arg(long, value_name = "PLAN_FILE")]
        out: Option<PathBuf>,
    },
    /// Apply a plan file exactly as it was reviewed (its digest is checked).
    Apply {
        /// A plan file written by `contain plan --out`.
        #[arg(value_name = "PLAN_FILE")]
        plan_file: PathBuf,
        #[command(flatten)]
        confirm: ConfirmArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Plan a playbook, then apply it after confirmation.
    Run {
        /// The playbook file.
        #[arg(value_name = "PLAYBOOK")]
        playbook: PathBuf,
        #[command(flatten)]
        inputs: InputArgs,
        #[command(flatten)]
        confirm: ConfirmArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Revert a run's changes from its journal.
    Rollback {
        /// The run to revert, as `contain runs list` shows it.
        #[arg(value_name = "RUN_ID")]
        run_id: String,
        /// Revert targets that someone changed since the run too, restoring the state before it.
        #[arg(long)]
        force: bool,
        /// Roll back only this step's changes; repeat it for several steps. Every step when
        /// left out.
        #[arg(long = "step", value_name = "STEP_ID")]
        steps: Vec<String>,
        #[command(flatten)]
        confirm: ConfirmArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Finish a run that was interrupted (its process stopped), from its journal: operations
    /// that took effect are kept, the one in flight is checked, the rest is applied.
    Resume {
        /// The interrupted run, as `contain runs list` shows it.
        #[arg(value_name = "RUN_ID")]
        run_id: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// List runs and show their journals.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Check journals.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Serve the HTTP API for SOAR systems over the same engine and journals.
    Serve {
        /// The address to listen on. Plain HTTP only on a loopback address, unless
        /// --allow-plain-http; give --tls-certificate and --tls-key for HTTPS.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8750")]
        listen: std::net::SocketAddr,
        /// The tokens file: a YAML list of `{ principal, roles, token_sha256 }`.
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
        /// The directory of the playbooks the API offers.
        #[arg(long, value_name = "DIR", default_value = "playbooks")]
        playbooks: PathBuf,
        /// Send run state changes (awaiting approval, finished, rolled back) to this http:// or
        /// https:// URL, signed with HMAC-SHA256 using CONTAIN_WEBHOOK_SECRET. Repeat it for
        /// several URLs.
        #[arg(long = "webhook", value_name = "URL")]
        webhooks: Vec<String>,
        /// PEM certificate authorities that https webhooks must chain to, instead of the
        /// system's.
        #[arg(long, value_name = "FILE")]
        webhook_ca: Option<PathBuf>,
        /// Serve plain HTTP on an address that is not loopback. Bearer tokens then cross the
        /// network in clear text.
        #[arg(long)]
        allow_plain_http: bool,
        /// PEM certificate chain of the server, for HTTPS.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_certificate: Option<PathBuf>,
        /// PEM private key of the server certificate.
        #[arg(long, value_name = "FILE", requires = "tls_certificate")]
        tls_key: Option<PathBuf>,
        /// PEM certificate authorities: every client must present a certificate they signed.
        #[arg(long, value_name = "FILE")]
        client_ca: Option<PathBuf>,
        /// The time limit of one request, in seconds. Runs and rollbacks go on past it.
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        request_timeout_seconds: u64,
        /// Every run started over the API waits for a second person's approval, whatever its
        /// playbook sets.
        #[arg(long)]
        approval_required: bool,
        /// On SIGTERM or Ctrl-C, how long to wait for runs and rollbacks going on to finish
        /// before stopping, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        shutdown_grace_seconds: u64,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Write a run's incident record from its journal: who ran it, every change with the value
    /// before and after, what rollback undid and when, the evidence kept, and the journal check.
    /// Exits 0 whatever the run's status.
    Report {
        /// The run, as `contain runs list` shows it.
        #[arg(value_name = "RUN_ID")]
        run_id: String,
        /// Output format: Markdown for people, or one JSON document.
        #[arg(long, short = 'o', value_enum, default_value_t = crate::report::ReportFormat::Markdown)]
        output: crate::report::ReportFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a fresh random token once, and the line to add to the tokens file, which stores
    /// only its SHA-256.
    New {
        /// The principal the token belongs to, recorded in the journal of every run it starts.
        #[arg(long, value_name = "NAME")]
        principal: String,
        /// Roles, comma-separated: viewer, responder, approver, admin.
        #[arg(long, value_name = "ROLE,...", value_delimiter = ',', required = true)]
        roles: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Check a run's hash chain and report the first record that was edited, removed or
    /// reordered. Exits 1 when the chain is broken; a torn last line is reported, not an error.
    Verify {
        /// The run, as `contain runs list` shows it.
        #[arg(value_name = "RUN_ID")]
        run_id: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show a run's journal as a timeline.
    Show {
        /// The run, as `contain runs list` shows it.
        #[arg(value_name = "RUN_ID")]
        run_id: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Args)]
pub struct InputArgs {
    /// Maximum number of targets any step may change, replacing the playbook's max_targets.
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_targets: Option<u32>,

    /// Allow the plan to revoke the identity contain runs as, or to isolate the instance it runs
    /// on (guard.own_instance_id). Without it such a step fails in the plan, because it would cut
    /// contain off half-way through the containment.
    #[arg(long)]
    pub allow_self_lockout: bool,

    /// A playbook input as NAME=VALUE. Repeat it for several inputs or for a list input's
    /// values; a list input also takes comma-separated values.
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE", value_parser = parse_input)]
    pub inputs: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// Do not ask for confirmation. Required when standard input is not a terminal.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format. With json, standard output carries one JSON document and nothing else.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

fn parse_input(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("`{value}` is not NAME=VALUE")),
    }
}
