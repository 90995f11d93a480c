use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The configuration file: settings that outlive one command.
///
/// ```toml
/// [engine]
/// concurrency = 8            # targets changed at once
/// state_dir = "/var/lib/contain"
/// retry_attempts = 6         # attempts per cloud call that fails for a passing reason
/// retry_base_ms = 200        # first wait between attempts, doubled each time, with jitter
/// throttle_budget_seconds = 300  # how long throttled calls are retried
///
/// [pacing]                   # replaces the published limit of an API bucket
/// "ec2:mutating" = { burst = 50, per_second = 5 }
///
/// [aws]
/// attempt_timeout_seconds = 30   # the longest one attempt of a changing call may take
///
/// [azure]
/// cloud = "public"           # public, us_government or china: ARM, Graph and sign-in hosts
/// managed_identity = true    # try the managed identity (instance metadata) in the credential chain
/// operation_timeout_seconds = 600  # the longest wait for one long-running ARM operation
/// poll_interval_seconds = 2  # the wait between polls when ARM names none
///
/// [guard]
/// protected = ["i-0123456789abcdef0", "arn:aws:iam::123456789012:role/break-glass"]  # never changed
/// own_instance_id = "i-0fedcba9876543210"   # the instance contain runs on: never isolated
///
/// [aws.accounts.123456789012]  # targets in this account use this role
/// role_arn = "arn:aws:iam::123456789012:role/contain"
/// external_id = "…"          # when the role's trust policy requires one
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub aws: AwsConfig,
    #[serde(default)]
    pub azure: AzureConfig,
    #[serde(default)]
    pub guard: GuardConfig,
    /// API bucket limits by bucket name, replacing the published ones.
    #[serde(default)]
    pub pacing: std::collections::BTreeMap<String, PacingLimit>,
}

/// The limit of one API bucket.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacingLimit {
    /// The calls that may go at once.
    pub burst: f64,
    /// The calls per second after the burst.
    pub per_second: f64,
}

/// Resources contain must never change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Resource ids or ARNs: the responders' bastion, the break-glass role, the SOAR host.
    #[serde(default)]
    pub protected: Vec<String>,
    /// The instance contain runs on.
    pub own_instance_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    pub attempt_timeout_seconds: Option<u64>,
    /// The role to assume per account id.
    #[serde(default)]
    pub accounts: std::collections::BTreeMap<String, AccountConfig>,
}

/// Settings of the Azure provider.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    pub cloud: Option<String>,
    pub managed_identity: Option<bool>,
    pub operation_timeout_seconds: Option<u64>,
    pub poll_interval_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub role_arn: String,
    pub external_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub concurrency: Option<usize>,
    pub state_dir: Option<PathBuf>,
    pub retry_attempts: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub throttle_budget_seconds: Option<u64>,
}

impl Config {
    /// Loads the file named by `--config` or `CONTAIN_CONFIG` (which must exist), or else the
    /// default file, which may be absent.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Config> {
        let (path, required) = match explicit {
            Some(path) => (path.to_path_buf(), true),
            None => match default_path() {
                Some(path) => (path, false),
                None => return Ok(Config::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Config::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read the configuration file {}", path.display())),
        };
        let config: Config = toml::from_str(&text).with_context(|| format!("invalid configuration file {}", path.display()))?;
        for (bucket, limit) in &config.pacing {
            let valid = |v: f64| v.is_finite() && v > 0.0;
            if !valid(limit.burst) || !valid(limit.per_second) {
                anyhow::bail!("invalid configuration file {}: pacing.\"{bucket}\" needs a burst and a per_second above 0", path.display());
            }
        }
        if config.engine.concurrency == Some(0) {
            anyhow::bail!("invalid configuration file {}: engine.concurrency is 0; it must be at least 1", path.display());
        }
        if config.engine.retry_attempts == Some(0) {
            anyhow::bail!("invalid configuration file {}: engine.retry_attempts is 0; it must be at least 1 (1 means no retry)", path.display());
        }
        if let Some(empty) = config.guard.protected.iter().position(|entry| entry.trim().is_empty()) {
            anyhow::bail!("invalid configuration file {}: guard.protected entry {} is empty; list resource ids or ARNs", path.display(), empty + 1);
        }
        // A mistyped EC2 id would protect nothing, silently.
        if let Some(bad) = config.guard.protected.iter().find(|entry| looks_like_ec2_id(entry) && !is_ec2_id(entry)) {
            anyhow::bail!("invalid configuration file {}: guard.protected entry `{bad}` is not a valid EC2 id such as i-0123456789abcdef0 or sg-0123456789abcdef0", path.display());
        }
        if let Some(own) = &config.guard.own_instance_id {
            let valid = own.strip_prefix("i-").is_some_and(|hex| matches!(hex.len(), 8 | 17) && hex.chars().all(|c| c.is_ascii_hexdigit()));
            if !valid {
                anyhow::bail!("invalid configuration file {}: guard.own_instance_id `{own}` is not an instance id such as i-0123456789abcdef0", path.display());
            }
        }
        if config.aws.attempt_timeout_seconds == Some(0) {
            anyhow::bail!("invalid configuration file {}: aws.attempt_timeout_seconds is 0; it must be at least 1", path.display());
        }
        if let Some(cloud) = &config.azure.cloud {
            contain_azure::Cloud::parse(cloud).map_err(|why| anyhow::anyhow!("invalid configuration file {}: azure.cloud: {why}", path.display()))?;
        }
        if config.azure.operation_timeout_seconds == Some(0) {
            anyhow::bail!("invalid configuration file {}: azure.operation_timeout_seconds is 0; it must be at least 1", path.display());
        }
        for (account, role) in &config.aws.accounts {
            let valid_account = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
            if !valid_account || !role.role_arn.starts_with("arn:") {
                anyhow::bail!(
                    "invalid configuration file {}: aws.accounts.{account} needs a 12-digit account id and a role ARN, found role_arn `{}`",
                    path.display(),
                    role.role_arn
                );
            }
        }
        Ok(config)
    }
}

/// True when `entry` starts like an EC2 resource id.
fn looks_like_ec2_id(entry: &str) -> bool {
    ["i-", "sg-", "vpc-", "subnet-", "eni-", "acl-", "vol-", "snap-"].iter().any(|prefix| entry.starts_with(prefix))
}

/// True when `entry` is an EC2 resource id: a prefix, then 8 or 17 hexadecimal digits.
fn is_ec2_id(entry: &str) -> bool {
    entry.split_once('-').is_some_and(|(_, hex)| matches!(hex.len(), 8 | 17) && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("contain").join("config.toml"))
}

/// The state directory: `--state-dir`, `CONTAIN_STATE_DIR`, the configuration, then
/// `$XDG_STATE_HOME/contain` or `~/.local/state/contain`.
pub fn state_dir(explicit: Option<&Path>, config: &Config) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit.or(config.engine.state_dir.as_deref()) {
        return Ok(dir.to_path_buf());
    }
    if let Some(state) = std::env::var_os("XDG_STATE_HOME") {
        return Ok(PathBuf::from(state).join("contain"));
    }
    let home = std::env::var_os("HOME").context("cannot find a state directory: set --state-dir, CONTAIN_STATE_DIR or HOME")?;
    Ok(PathBuf::from(home).join(".local").join("state").join("contain"))
}
