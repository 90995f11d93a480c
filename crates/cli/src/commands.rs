//! The subcommands.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use contain_aws::{AccountRole, AwsProvider};
use contain_azure::{AzureProvider, AzureSettings, Cloud};
use contain_core::Provider;
use contain_engine::{Engine, EngineError, Guard, Plan, PlanFile, RetryPolicy, RunReport, RunStatus, TargetOutcome, run_summary};
use contain_journal::{journal_path, list_run_ids, read_journal};
use contain_playbook::Playbook;
use contain_server::tls::TlsFiles;
use contain_server::webhooks::Webhooks;
use contain_server::{AppState, Role, TokenStore};

use crate::args::{Cli, Command, JournalCommand, OutputFormat, RunsCommand, TokenCommand};
use crate::config::{Config, state_dir};
use crate::{InvalidInput, exit, render};

/// The maximum time of one attempt of a cloud call while applying, unless configured.
const DEFAULT_ATTEMPT_TIMEOUT_SECONDS: u64 = 30;

fn providers(config: &Config) -> Vec<Arc<dyn Provider>> {
    let accounts = config
        .aws
        .accounts
        .iter()
        .map(|(account, role)| (account.clone(), AccountRole { role_arn: role.role_arn.clone(), external_id: role.external_id.clone() }))
        .collect();
    let attempt_timeout = Duration::from_secs(config.aws.attempt_timeout_seconds.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT_SECONDS));
    vec![Arc::new(AwsProvider::with_accounts(accounts, Some(attempt_timeout))), Arc::new(AzureProvider::new(azure_settings(config)))]
}

/// The Azure settings of the configuration. `CONTAIN_AZURE_MANAGED_IDENTITY=false` leaves the
/// managed identity out of the credential chain, whatever the file sets.
fn azure_settings(config: &Config) -> AzureSettings {
    let defaults = AzureSettings::default();
    let managed_identity_env = std::env::var("CONTAIN_AZURE_MANAGED_IDENTITY").ok().map(|value| !matches!(value.as_str(), "0" | "false" | "off" | "no"));
    AzureSettings {
        // The configuration was checked when it was loaded.
        cloud: config.azure.cloud.as_deref().and_then(|cloud| Cloud::parse(cloud).ok()).unwrap_or_default(),
        managed_identity: managed_identity_env.unwrap_or(config.azure.managed_identity.unwrap_or(true)),
        operation_timeout: config.azure.operation_timeout_seconds.map(Duration::from_secs).unwrap_or(defaults.operation_timeout),
        poll_interval: config.azure.poll_interval_seconds.map(Duration::from_secs).unwrap_or(defaults.poll_interval),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    let config = Config::load(cli.config.as_deref())?;
    let engine = || -> anyhow::Result<Engine> {
        let dir = state_dir(cli.state_dir.as_deref(), &config)?;
        let mut engine = Engine::new(providers(&config), dir);
        if let Some(concurrency) = config.engine.concurrency {
            engine = engine.with_concurrency(concurrency);
        }
        let defaults = RetryPolicy::default();
        engine = engine.with_retry_policy(RetryPolicy {
            attempts: config.engine.retry_attempts.unwrap_or(defaults.attempts),
            base: config.engine.retry_base_ms.map(Duration::from_millis).unwrap_or(defaults.base),
            throttle_budget: config.engine.throttle_budget_seconds.map(Duration::from_secs).unwrap_or(defaults.throttle_budget),
            ..defaults
        });
        let limits = config.pacing.iter().map(|(bucket, l)| (bucket.clone(), contain_core::RateLimit { burst: l.burst, per_second: l.per_second })).collect();
        engine = engine.with_rate_limits(limits);
        Ok(engine)
    };

    match cli.command {
        Command::Validate { playbooks } => validate(&playbooks, &providers(&config)),
        Command::Plan { playbook, inputs, output, out } => {
            let engine = engine()?.with_guard(guard(&config, inputs.allow_self_lockout));
            let engine = engine.with_max_targets(inputs.max_targets.map(|m| m as usize));
            let (loaded, path) = load_playbook(&playbook, engine.providers())?;
            let plan = engine.plan(&loaded, &path, &inputs.inputs).await.map_err(engine_error)?;
            let file = PlanFile::new(plan);
            if let Some(out) = &out {
                write_plan(out, &file)?;
            }
            match output.output {
                OutputFormat::Json => crate::json_out::print_pretty(&file)?,
                OutputFormat::Text => {
                    print!("{}", render::plan(&file.plan));
                    match &out {
                        Some(out) if file.plan.errors().is_empty() => println!("Plan written to {}; apply it with `contain apply {}`.", out.display(), out.display()),
                        Some(out) => println!("Plan written to {} for review; it has errors, so `contain apply` refuses it.", out.display()),
                        None => {}
                    }
                }
            }
            Ok(if file.plan.errors().is_empty() { exit::OK } else { exit::ERROR })
        }
        Command::Apply { plan_file, confirm, output } => {
            let engine = engine()?;
            let text = std::fs::read_to_string(&plan_file).map_err(|e| InvalidInput(format!("cannot read the plan file {}: {e}", plan_file.display())))?;
            let file: PlanFile = serde_json::from_str(&text)
                .map_err(|e| InvalidInput(format!("{} is not a contain plan file: {e}", plan_file.display())))?;
            if file.format != PlanFile::FORMAT {
                bail!(InvalidInput(format!("plan file format {} is not supported: this contain reads format {}", file.format, PlanFile::FORMAT)));
            }
            let plan = file.verified().map_err(engine_error)?;
            if output.output == OutputFormat::Text {
                print!("{}", render::plan(&plan));
            }
            if !confirmed(confirm.yes, &plan, "Apply this plan?")? {
                return Ok(exit::INVALID);
            }
            let report = apply_with_progress(engine, &plan, output.output).await?;
            print_report(&report, output.output, Kind::Run)
        }
        Command::Run { playbook, inputs, confirm, output } => {
            let engine = engine()?.with_guard(guard(&config, inputs.allow_self_lockout)).with_max_targets(inputs.max_targets.map(|m| m as usize));
            let (loaded, path) = load_playbook(&playbook, engine.providers())?;
            let plan = engine.plan(&loaded, &path, &inputs.inputs).await.map_err(engine_error)?;
            if output.output == OutputFormat::Text {
                print!("{}", render::plan(&plan));
            }
            if !plan.errors().is_empty() {
                bail!("the plan has errors, so nothing was applied:\n  {}", plan.errors().join("\n  "));
            }
            if !confirmed(confirm.yes, &plan, "Apply this plan?")? {
                return Ok(exit::INVALID);
            }
            let report = apply_with_progress(engine, &plan, output.output).await?;
            print_report(&report, output.output, Kind::Run)
        }
        Command::Rollback { run_id, force, steps, confirm, output } => {
            let engine = engine()?;
            let which = if steps.is_empty() { String::new() } else { format!(" (step(s) {})", steps.join(", ")) };
            let question = format!("Roll back run {run_id}{which}{}?", if force { ", overriding later changes (--force)" } else { "" });
            if !confirm_run(&engine, &run_id, confirm.yes, &question, "Nothing was rolled back.")? {
                return Ok(exit::INVALID);
            }
            let options = contain_engine::RollbackOptions { force, steps: (!steps.is_empty()).then_some(steps), api_principal: None };
            let report = engine.rollback_with_options(&run_id, options).await.map_err(engine_error)?;
            print_report(&report, output.output, Kind::Rollback)
        }
        Command::Resume { run_id, confirm, output } => {
            let engine = engine()?;
            let question = format!("Resume run {run_id}, applying the rest of its plan?");
            if !confirm_run(&engine, &run_id, confirm.yes, &question, "Nothing was applied.")? {
                return Ok(exit::INVALID);
            }
            match engine.resume(&run_id).await {
                Ok(report) => print_report(&report, output.output, Kind::Run),
                // Resuming twice, or after a crash that came after the run's last record, is
                // not an error: the run is as its journal records it.
                Err(EngineError::AlreadyFinished { run_id, status }) => {
                    let message = EngineError::AlreadyFinished { run_id: run_id.clone(), status: status.clone() }.to_string();
                    match output.output {
                        OutputFormat::Json => println!("{}", serde_json::json!({ "run_id": run_id, "status": status, "notes": [message] })),
                        OutputFormat::Text => println!("{message}"),
                    }
                    Ok(if status == RunStatus::Succeeded.to_string() { exit::OK } else { exit::NOT_CONTAINED })
                }
                Err(error) => Err(engine_error(error)),
            }
        }
        Command::Runs { command: RunsCommand::List { output } } => {
            let dir = state_dir(cli.state_dir.as_deref(), &config)?;
            let mut summaries = Vec::new();
            for run_id in list_run_ids(&dir).with_context(|| format!("cannot list runs in {}", dir.display()))? {
                summaries.push(run_summary(&dir, &run_id).with_context(|| format!("cannot read the journal of {run_id}"))?);
            }
            summaries.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.run_id.cmp(&a.run_id)));
            match output.output {
                // The shape of the API's `GET /v1/runs`, as one page holding every run.
                OutputFormat::Json => {
                    let total = summaries.len();
                    let document = serde_json::json!({ "runs": summaries, "total": total, "offset": 0, "limit": total });
                    crate::json_out::print_pretty(&document)?;
                }
                OutputFormat::Text => print!("{}", render::runs(&summaries)),
            }
            Ok(exit::OK)
        }
        Command::Journal { command: JournalCommand::Verify { run_id, output } } => {
            check_run_id(&run_id)?;
            let dir = state_dir(cli.state_dir.as_deref(), &config)?;
            let path = journal_path(&dir, &run_id);
            if !path.exists() {
                bail!(InvalidInput(format!("run {run_id} has no journal at {}: check the id with `contain runs list`", path.display())));
            }
            let journal = read_journal(&path)?;
            let intact = journal.chain_intact();
            let problems: Vec<String> = journal.problems.iter().map(|p| format!("line {}: {}", p.line, p.message)).collect();
            match output.output {
                OutputFormat::Json => {
                    let document = serde_json::json!({ "run_id": run_id, "intact": intact, "records": journal.records.len(), "torn_tail": journal.torn_tail, "problems": problems });
                    crate::json_out::print_pretty(&document)?;
                }
                OutputFormat::Text => {
                    let verdict = if intact { "intact" } else { "BROKEN" };
                    println!("Journal of {run_id}: {verdict}, {} record(s) verified", journal.records.len());
                    for problem in &problems {
                        println!("  {problem}");
                    }
                }
            }
            Ok(if intact { exit::OK } else { exit::ERROR })
        }
        Command::Serve { listen, tokens, playbooks, webhooks, webhook_ca, allow_plain_http, tls_certificate, tls_key, client_ca, request_timeout_seconds, approval_required, shutdown_grace_seconds } => {
            let tls = match (tls_certificate, tls_key) {
                (Some(certificate), Some(key)) => {
                    let files = TlsFiles { certificate, key, client_ca };
                    Some(contain_server::tls::server_config(&files).map_err(|e| InvalidInput(e.to_string()))?)
                }
                (None, None) if client_ca.is_some() => bail!(InvalidInput("--client-ca needs TLS: give --tls-certificate and --tls-key too".into())),
                (None, None) => None,
                _ => bail!(InvalidInput("give both --tls-certificate and --tls-key, or neither".into())),
            };
            if tls.is_none() && !listen.ip().is_loopback() && !allow_plain_http {
                bail!(InvalidInput(format!(
                    "refusing to serve plain HTTP on {listen}, which is not a loopback address: give --tls-certificate and --tls-key, listen on 127.0.0.1, or pass --allow-plain-http behind a TLS proxy"
                )));
            }
            if request_timeout_seconds == 0 {
                bail!(InvalidInput("--request-timeout-seconds must be at least 1".into()));
            }
            let tokens_path = tokens;
            let tokens = TokenStore::load(&tokens_path).map_err(|e| InvalidInput(e.to_string()))?;
            if !playbooks.is_dir() {
                bail!(InvalidInput(format!("the playbooks directory {} does not exist", playbooks.display())));
            }
            let engine = Arc::new(engine()?);
            let mut state = AppState::new(engine, tokens, playbooks);
            state.request_timeout = std::time::Duration::from_secs(request_timeout_seconds);
            state.approval_required = approval_required;
            state.webhooks = Webhooks::new(webhooks, std::env::var("CONTAIN_WEBHOOK_SECRET").unwrap_or_default().into_bytes(), webhook_ca.as_deref()).map_err(InvalidInput)?;
            let state = Arc::new(state);
            let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            eprintln!("contain serve: listening on {scheme}://{}", listener.local_addr()?);

            // SIGHUP loads the tokens file again, so a token is added or revoked without a restart.
            let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("cannot watch for SIGHUP")?;
            let reloading = state.clone();
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    match reloading.reload_tokens(&tokens_path) {
                        Ok(count) => tracing::warn!(tokens = count, "SIGHUP: loaded the tokens file {} again", tokens_path.display()),
                        Err(error) => tracing::error!("SIGHUP: the tokens file was not loaded again, the previous tokens stay: {error}"),
                    }
                }
            });

            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("cannot watch for SIGTERM")?;
            contain_server::serve(listener, contain_server::router(state.clone()), tls, async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            })
            .await
            .context("the HTTP server failed")?;

            // New requests are refused from here; runs going on in the background may finish.
            let going_on = state.active.count();
            if going_on > 0 {
                eprintln!("contain serve: stopping; waiting up to {shutdown_grace_seconds} s for {going_on} run(s) or rollback(s) to finish");
            }
            let left = state.active.wait_idle(std::time::Duration::from_secs(shutdown_grace_seconds)).await;
            if left > 0 {
                eprintln!("contain serve: stopped with {left} run(s) or rollback(s) unfinished: they read `interrupted`; resume or roll them back");
                return Ok(exit::ERROR);
            }
            eprintln!("contain serve: stopped");
            Ok(exit::OK)
        }
        Command::Token { command: TokenCommand::New { principal, roles } } => {
            for role in &roles {
                if Role::parse(role).is_none() {
                    bail!(InvalidInput(format!("unknown role `{role}`: valid roles are viewer, responder, approver, admin")));
                }
            }
            if principal.trim().is_empty() || principal.contains(['{', '}', ',', ':', '\n']) {
                bail!(InvalidInput(format!("invalid principal `{principal}`: use a plain name such as alice or soar-prod")));
            }
            let (token, digest) = contain_server::tokens::new_token();
            println!("{token}");
            eprintln!("# The token is printed once, above. Add the line below to the tokens file.");
            eprintln!("- {{ principal: {principal}, roles: [{}], token_sha256: {digest} }}", roles.join(", "));
            Ok(exit::OK)
        }
        Command::Report { run_id, output } => {
            check_run_id(&run_id)?;
            crate::report::command(&state_dir(cli.state_dir.as_deref(), &config)?, &run_id, output)
        }
        Command::Runs { command: RunsCommand::Show { run_id, output } } => {
            check_run_id(&run_id)?;
            let dir = state_dir(cli.state_dir.as_deref(), &config)?;
            let path = journal_path(&dir, &run_id);
            if !path.exists() {
                bail!(InvalidInput(format!("run {run_id} has no journal at {}: check the id with `contain runs list`", path.display())));
            }
            let summary = run_summary(&dir, &run_id)?;
            let journal = read_journal(&path)?;
            match output.output {
                OutputFormat::Json => {
                    // The shape of the API's `GET /v1/runs/{id}`, with the journal's records.
                    let record = contain_engine::incident_record(&dir, &run_id)?;
                    let document = serde_json::json!({ "run": summary, "record": record, "records": journal.records });
                    crate::json_out::print_pretty(&document)?;
                }
                OutputFormat::Text => print!("{}", render::timeline(&summary, &journal.records)),
            }
            Ok(exit::OK)
        }
    }
}

fn guard(config: &Config, allow_self_lockout: bool) -> Guard {
    Guard { protected: config.guard.protected.clone(), own_instance: config.guard.own_instance_id.clone(), allow_self_lockout }
}

/// Checks that the run exists, then prompts `question` on the terminal unless `yes`.
fn confirm_run(engine: &Engine, run_id: &str, yes: bool, question: &str, declined: &str) -> anyhow::Result<bool> {
    check_run_id(run_id)?;
    if !journal_path(engine.state_dir(), run_id).exists() {
        bail!(InvalidInput(format!("run {run_id} has no journal in {}: check the id with `contain runs list`", engine.state_dir().display())));
    }
    if yes {
        return Ok(true);
    }
    require_terminal()?;
    let answer = ask(question)?;
    if !answer {
        eprintln!("{declined}");
    }
    Ok(answer)
}

fn check_run_id(run_id: &str) -> anyhow::Result<()> {
    if !contain_journal::is_valid_run_id(run_id) {
        bail!(InvalidInput(format!("invalid run id `{run_id}`: run ids hold letters, digits, `-`, `_` and `.`, such as run-20261204T201512Z-3f9a1c")));
    }
    Ok(())
}

fn validate(paths: &[PathBuf], providers: &[Arc<dyn Provider>]) -> anyhow::Result<u8> {
    let mut problems = 0;
    for path in paths {
        match load_playbook(path, providers) {
            Ok((playbook, _)) => {
                let count = playbook.steps.len();
                println!("{}: ok ({count} {})", path.display(), if count == 1 { "step" } else { "steps" });
            }
            Err(error) => {
                problems += 1;
                eprintln!("{error:#}");
            }
        }
    }
    Ok(if problems == 0 { exit::OK } else { exit::INVALID })
}

/// Reads and validates a playbook. Every problem is one `FILE:LINE:COLUMN: message` line.
fn load_playbook(path: &Path, providers: &[Arc<dyn Provider>]) -> anyhow::Result<(Playbook, String)> {
    let display = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| InvalidInput(format!("{display}: cannot read the playbook: {e}")))?;
    match contain_playbook::parse(&source, providers) {
        Ok(playbook) => Ok((playbook, display)),
        Err(diagnostics) => {
            let lines: Vec<String> = diagnostics.0.iter().map(|d| d.display_in(&display).to_string()).collect();
            Err(InvalidInput(lines.join("\n")).into())
        }
    }
}

fn write_plan(path: &Path, file: &PlanFile) -> anyhow::Result<()> {
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        serde_json::to_writer_pretty(&mut out, file)?;
        out.write_all(b"\n")?;
        out.flush()
    };
    write().with_context(|| format!("cannot write the plan file {}", path.display()))
}

/// Applies a plan, with a progress bar on a terminal when it has many targets.
async fn apply_with_progress(engine: Engine, plan: &Plan, format: OutputFormat) -> anyhow::Result<RunReport> {
    let bar = crate::progress::Bar::for_plan(plan, format == OutputFormat::Text);
    let engine = match &bar {
        Some(bar) => engine.with_observer(bar.clone()),
        None => engine,
    };
    let report = engine.apply(plan).await;
    if let Some(bar) = &bar {
        bar.finish();
    }
    report.map_err(engine_error)
}

fn engine_error(error: EngineError) -> anyhow::Error {
    match error {
        EngineError::Inputs(_) | EngineError::Target { .. } | EngineError::DigestMismatch { .. } | EngineError::NoSuchStep { .. } => InvalidInput(error.to_string()).into(),
        other => other.into(),
    }
}

/// Whether a report comes from applying a plan or from an explicit rollback.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Run,
    Rollback,
}

/// Prints a report and returns the exit status: a run succeeds only when every target was
/// contained, and a rollback only when every change was reverted.
fn print_report(report: &RunReport, format: OutputFormat, kind: Kind) -> anyhow::Result<u8> {
    match format {
        OutputFormat::Json => crate::json_out::print_pretty(report)?,
        OutputFormat::Text => print!("{}", render::run(report)),
    }
    let drift = report
        .steps
        .iter()
        .flat_map(|s| &s.targets)
        .any(|t| matches!(t.outcome, TargetOutcome::Drift | TargetOutcome::RollbackRefused));
    Ok(match (kind, report.status) {
        _ if drift => exit::DRIFT,
        (Kind::Run, RunStatus::Succeeded) => exit::OK,
        (Kind::Rollback, RunStatus::RolledBack | RunStatus::PartlyRolledBack) => exit::OK,
        // A rollback that found nothing left to revert reports the run's own status.
        (Kind::Rollback, _) if report.steps.is_empty() => exit::OK,
        _ => exit::NOT_CONTAINED,
    })
}

/// Asks on the terminal unless `yes`. A run whose plan changes nothing needs no confirmation.
fn confirmed(yes: bool, plan: &Plan, question: &str) -> anyhow::Result<bool> {
    if yes || plan.operation_count() == 0 {
        return Ok(true);
    }
    require_terminal()?;
    let answer = ask(question)?;
    if !answer {
        eprintln!("Nothing was applied.");
    }
    Ok(answer)
}

fn require_terminal() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(InvalidInput("standard input is not a terminal, so contain cannot ask for confirmation: pass --yes to proceed".into()));
    }
    Ok(())
}

fn ask(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
