//! IAM policy documents: decoding what IAM returns, and the documents contain writes.

use serde_json::{Value, json};

/// Decodes a policy document as IAM returns it. GetRole, ListRoles, GetRolePolicy and
/// GetUserPolicy return documents URL-encoded; moto 5.2.5 returns ListRoles documents as plain
/// JSON, which is taken as it is.
pub(crate) fn decode_document(raw: &str) -> String {
    if raw.trim_start().starts_with('{') {
        return raw.to_string();
    }
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

/// Builds a policy that denies everything to sessions issued before `issued_before` (RFC 3339, UTC):
/// credentials issued earlier stop working, new ones are unaffected.
pub(crate) fn revoke_older_sessions(issued_before: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ContainRevokeOlderSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": { "DateLessThan": { "aws:TokenIssueTime": issued_before } }
        }]
    })
    .to_string()
}

/// Builds a policy that denies everything.
pub(crate) fn deny_all() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Sid": "ContainDenyAll", "Effect": "Deny", "Action": "*", "Resource": "*" }]
    })
    .to_string()
}

/// Returns the sts action through which a provider's users assume roles.
pub(crate) fn federated_action(provider_arn: &str) -> &'static str {
    if provider_arn.contains(":saml-provider/") { "sts:AssumeRoleWithSAML" } else { "sts:AssumeRoleWithWebIdentity" }
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// True when a trust policy lets principals of `provider_arn` assume the role.
pub(crate) fn trusts_provider(document: &Value, provider_arn: &str) -> bool {
    as_list(&document["Statement"]).into_iter().any(|statement| {
        statement["Effect"] == "Allow" && as_list(&statement["Principal"]["Federated"]).iter().any(|p| p.as_str() == Some(provider_arn))
    })
}

/// The statement id of the deny contain adds to trust policies.
pub(crate) const FEDERATION_DENY_SID: &str = "ContainDenyFederation";

/// True when the trust policy already carries contain's deny for the provider.
pub(crate) fn denies_provider(document: &Value, provider_arn: &str) -> bool {
    as_list(&document["Statement"]).into_iter().any(|statement| {
        statement["Effect"] == "Deny" && as_list(&statement["Principal"]["Federated"]).iter().any(|p| p.as_str() == Some(provider_arn))
    })
}

/// Adds an explicit deny of the provider's federated sign-in to a trust policy, returned as
/// compact JSON. An explicit deny overrides every allow in the document.
pub(crate) fn with_federation_deny(document: &Value, provider_arn: &str) -> String {
    let mut document = document.clone();
    let deny = json!({
        "Sid": FEDERATION_DENY_SID,
        "Effect": "Deny",
        "Principal": { "Federated": provider_arn },
        "Action": federated_action(provider_arn)
    });
    let statements: Vec<Value> = as_list(&document["Statement"]).into_iter().cloned().chain([deny]).collect();
    document["Statement"] = Value::Array(statements);
    document.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: &str = "arn:aws:iam::123456789012:saml-provider/corp";

    #[test]
    fn decodes_url_encoded_and_plain() {
        assert_eq!(decode_document("%7B%22a%22%3A1%7D"), "{\"a\":1}");
        assert_eq!(decode_document("{\"a\":1}"), "{\"a\":1}");
    }

    #[test]
    fn finds_trusted_provider_in_lists_and_strings() {
        let single = json!({"Statement": {"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithSAML"}});
        let listed = json!({"Statement": [{"Effect": "Allow", "Principal": {"Federated": ["other", PROVIDER]}, "Action": "sts:AssumeRoleWithSAML"}]});
        let service = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        assert!(trusts_provider(&single, PROVIDER));
        assert!(trusts_provider(&listed, PROVIDER));
        assert!(!trusts_provider(&service, PROVIDER));
    }

    #[test]
    fn deny_is_added_and_recognised() {
        let document = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithSAML"}});
        let denied: Value = serde_json::from_str(&with_federation_deny(&document, PROVIDER)).unwrap();
        assert_eq!(denied["Statement"].as_array().unwrap().len(), 2);
        assert!(denies_provider(&denied, PROVIDER));
        assert!(!denies_provider(&document, PROVIDER));
        assert_eq!(denied["Statement"][1]["Action"], "sts:AssumeRoleWithSAML");
    }
}
