use contain_core::{Target, TargetParseError};

pub(crate) const USER: &str = "aws.iam.user";
pub(crate) const ROLE: &str = "aws.iam.role";
pub(crate) const IDENTITY_PROVIDER: &str = "aws.iam.identity_provider";

fn invalid(resource_type: &str, value: &str, expected: &str) -> TargetParseError {
    TargetParseError { resource_type: resource_type.into(), value: value.into(), expected: expected.into() }
}

/// Splits `arn:PARTITION:iam::ACCOUNT:RESOURCE` into the account and the resource part.
fn iam_arn(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix("arn:")?;
    let fields: Vec<&str> = rest.splitn(5, ':').collect();
    match fields.as_slice() {
        [partition, "iam", "", account, resource] if !partition.is_empty() && account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) => {
            Some((*account, *resource))
        }
        _ => None,
    }
}

fn is_iam_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// Parses an IAM user ARN or user name. The target id is the user name.
pub(crate) fn parse_user(value: &str) -> Result<Target, TargetParseError> {
    const EXPECTED: &str = "a user name such as alice, or a user ARN such as arn:aws:iam::123456789012:user/alice";
    let (account, name) = match iam_arn(value) {
        Some((account, resource)) => {
            let path = resource.strip_prefix("user/").ok_or_else(|| invalid(USER, value, EXPECTED))?;
            (Some(account.to_string()), path.rsplit('/').next().unwrap_or_default())
        }
        None if value.starts_with("arn:") => return Err(invalid(USER, value, EXPECTED)),
        None => (None, value),
    };
    if !is_iam_name(name) {
        return Err(invalid(USER, value, EXPECTED));
    }
    Ok(Target { resource_type: USER.into(), id: name.to_string(), region: None, account })
}

/// Parses a role ARN, a role name, or an instance profile ARN, whose role inspect resolves
/// (a profile's name may differ from its role's). The target id is the role name, or the
/// profile ARN.
pub(crate) fn parse_role(value: &str) -> Result<Target, TargetParseError> {
    const EXPECTED: &str = "a role name, a role ARN such as arn:aws:iam::123456789012:role/web, or an instance profile ARN such as arn:aws:iam::123456789012:instance-profile/web";
    let (account, id) = match iam_arn(value) {
        Some((account, resource)) => {
            if let Some(path) = resource.strip_prefix("role/") {
                (Some(account.to_string()), path.rsplit('/').next().unwrap_or_default().to_string())
            } else if resource.starts_with("instance-profile/") {
                (Some(account.to_string()), value.to_string())
            } else {
                return Err(invalid(ROLE, value, EXPECTED));
            }
        }
        None if value.starts_with("arn:") => return Err(invalid(ROLE, value, EXPECTED)),
        None => (None, value.to_string()),
    };
    if !id.starts_with("arn:") && !is_iam_name(&id) {
        return Err(invalid(ROLE, value, EXPECTED));
    }
    Ok(Target { resource_type: ROLE.into(), id, region: None, account })
}

/// Parses a SAML or OIDC identity provider ARN. The target id is the ARN.
pub(crate) fn parse_identity_provider(value: &str) -> Result<Target, TargetParseError> {
    const EXPECTED: &str = "a SAML or OIDC provider ARN such as arn:aws:iam::123456789012:saml-provider/corp-idp or arn:aws:iam::123456789012:oidc-provider/token.example.com";
    let Some((account, resource)) = iam_arn(value) else {
        return Err(invalid(IDENTITY_PROVIDER, value, EXPECTED));
    };
    let name = resource.strip_prefix("saml-provider/").or_else(|| resource.strip_prefix("oidc-provider/"));
    match name {
        Some(name) if !name.is_empty() => Ok(Target { resource_type: IDENTITY_PROVIDER.into(), id: value.to_string(), region: None, account: Some(account.to_string()) }),
        _ => Err(invalid(IDENTITY_PROVIDER, value, EXPECTED)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_by_name_and_arn() {
        assert_eq!(parse_user("alice").unwrap().id, "alice");
        let target = parse_user("arn:aws:iam::123456789012:user/ops/alice").unwrap();
        assert_eq!(target.id, "alice");
        assert_eq!(target.account.as_deref(), Some("123456789012"));
        assert!(parse_user("arn:aws:iam::123456789012:role/alice").is_err());
        assert!(parse_user("bad name").unwrap_err().to_string().contains("`bad name`"));
    }

    #[test]
    fn role_by_name_arn_and_profile() {
        assert_eq!(parse_role("web").unwrap().id, "web");
        assert_eq!(parse_role("arn:aws:iam::123456789012:role/service/web").unwrap().id, "web");
        let profile = "arn:aws:iam::123456789012:instance-profile/web-profile";
        assert_eq!(parse_role(profile).unwrap().id, profile);
        assert!(parse_role("arn:aws:iam::123456789012:user/web").is_err());
    }

    #[test]
    fn identity_providers() {
        assert!(parse_identity_provider("arn:aws:iam::123456789012:saml-provider/corp").is_ok());
        assert!(parse_identity_provider("arn:aws:iam::123456789012:oidc-provider/token.example.com").is_ok());
        let err = parse_identity_provider("arn:aws:iam::123456789012:role/x").unwrap_err().to_string();
        assert!(err.contains("saml-provider"), "{err}");
    }
}
