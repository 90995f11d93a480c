//! `contain-estate`: builds and describes the moto test estate, for the demo.
//!
//! Usage:
//!   contain-estate account            prints credentials of a fresh moto account as JSON
//!   contain-estate build              builds the estate in the account of the AWS_* environment
//!   contain-estate describe           prints the full description of that account's EC2 state
//!
//! The moto URL comes from CONTAIN_TEST_MOTO_URL or AWS_ENDPOINT_URL and must be a loopback
//! address.

use anyhow::{Context, bail};
use contain_test_estate::{Account, build, describe, fresh_account, moto_endpoint};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = moto_endpoint()?;
    let command = std::env::args().nth(1).unwrap_or_default();
    match command.as_str() {
        "account" => {
            let account = fresh_account(&endpoint).await?;
            println!("{}", serde_json::to_string_pretty(&account)?);
        }
        "build" | "describe" => {
            let account = Account {
                account_id: String::new(),
                access_key_id: std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID is not set")?,
                secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").context("AWS_SECRET_ACCESS_KEY is not set")?,
                session_token: std::env::var("AWS_SESSION_TOKEN").unwrap_or_default(),
            };
            let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(&endpoint).await);
            let output = if command == "build" { serde_json::to_value(build(&ec2).await?)? } else { describe(&ec2).await? };
            println!("{}", serde_json::to_string_pretty(&output)?);
        }
        other => bail!("unknown command `{other}`: use account, build or describe"),
    }
    Ok(())
}
