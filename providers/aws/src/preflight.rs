//! The permission pre-flight: whether the caller may make the planned changes, checked without
//! making them.

use aws_sdk_iam::Client as Iam;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use contain_core::ActionError;

use crate::errors::map_sdk_error;

/// Interprets the response to a request sent with `DryRun=true`: `DryRunOperation` means the
/// caller may make the call, `UnauthorizedOperation` that it may not. Returns the missing
/// permission, if any.
pub(crate) fn dry_run_answer<O, E, R>(operation: &str, resource: &str, answer: Result<O, SdkError<E, R>>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    match answer {
        Err(error) if error.code() == Some("DryRunOperation") => None,
        Err(error) if matches!(error.code(), Some("UnauthorizedOperation" | "AccessDenied")) => Some(format!("ec2:{operation} on {resource}")),
        Err(error) => {
            tracing::debug!(operation, resource, code = ?error.code(), "the dry run did not tell whether the call is permitted");
            None
        }
        // A service that ignores DryRun made the change: report it loudly, because it should not.
        Ok(_) => {
            tracing::error!(operation, resource, "a request sent with DryRun=true was carried out");
            None
        }
    }
}

/// Converts the caller's ARN into the IAM ARN that SimulatePrincipalPolicy takes: an assumed-role session
/// (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) is checked as its role.
pub(crate) fn principal_arn(caller: &str) -> String {
    match caller.split_once(":assumed-role/") {
        Some((prefix, rest)) => {
            let role = rest.split('/').next().unwrap_or_default();
            format!("{}:role/{role}", prefix.replacen(":sts:", ":iam:", 1))
        }
        None => caller.to_string(),
    }
}

/// Checks with IAM whether `principal` may call `actions` on `resource`, and returns those it may not.
pub(crate) async fn simulate(iam: &Iam, principal: &str, actions: &[&str], resource: &str) -> Result<Vec<String>, ActionError> {
    let output = iam
        .simulate_principal_policy()
        .policy_source_arn(principal)
        .set_action_names(Some(actions.iter().map(|a| a.to_string()).collect()))
        .resource_arns(resource)
        .send()
        .await
        .map_err(|e| map_sdk_error("SimulatePrincipalPolicy", principal, e))?;
    let denied = output
        .evaluation_results()
        .iter()
        .filter(|r| r.eval_decision().as_str() != "allowed")
        .map(|r| format!("{} on {resource}", r.eval_action_name()))
        .collect();
    Ok(denied)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_is_checked_as_its_role() {
        assert_eq!(principal_arn("arn:aws:sts::123456789012:assumed-role/responder/alice"), "arn:aws:iam::123456789012:role/responder");
        assert_eq!(principal_arn("arn:aws:iam::123456789012:user/alice"), "arn:aws:iam::123456789012:user/alice");
    }
}
