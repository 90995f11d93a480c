use contain_core::{Target, TargetParseError};

pub(crate) const VPC: &str = "aws.ec2.vpc";
pub(crate) const SUBNET: &str = "aws.ec2.subnet";
pub(crate) const SECURITY_GROUP: &str = "aws.ec2.security_group";

/// Parses an EC2 id with the prefix of `resource_type` (`vpc-`, `subnet-`, `sg-`), or the ARN
/// of such a resource.
pub(crate) fn parse_ec2_resource(resource_type: &str, value: &str) -> Result<Target, TargetParseError> {
    let (prefix, arn_kind) = match resource_type {
        VPC => ("vpc-", "vpc"),
        SUBNET => ("subnet-", "subnet"),
        _ => ("sg-", "security-group"),
    };
    let invalid = || TargetParseError {
        resource_type: resource_type.to_string(),
        value: value.to_string(),
        expected: format!("an id such as {prefix}0123456789abcdef0, or its ARN (arn:aws:ec2:REGION:ACCOUNT:{arn_kind}/{prefix}…)"),
    };
    let valid_id = |id: &str| id.strip_prefix(prefix).is_some_and(|hex| (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));

    if let Some(rest) = value.strip_prefix("arn:") {
        let fields: Vec<&str> = rest.splitn(5, ':').collect();
        let [_, "ec2", region, account, resource] = fields.as_slice() else {
            return Err(invalid());
        };
        let id = resource.strip_prefix(&format!("{arn_kind}/")).ok_or_else(invalid)?;
        if !valid_id(id) || region.is_empty() || account.len() != 12 {
            return Err(invalid());
        }
        return Ok(Target { resource_type: resource_type.into(), id: id.into(), region: Some(region.to_string()), account: Some(account.to_string()) });
    }
    if !valid_id(value) {
        return Err(invalid());
    }
    Ok(Target { resource_type: resource_type.into(), id: value.into(), region: None, account: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_arns() {
        assert_eq!(parse_ec2_resource(VPC, "vpc-0123456789abcdef0").unwrap().id, "vpc-0123456789abcdef0");
        assert_eq!(parse_ec2_resource(SUBNET, "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-12345678").unwrap().region.as_deref(), Some("eu-west-1"));
        assert!(parse_ec2_resource(SECURITY_GROUP, "sg-1234567").is_err());
        assert!(parse_ec2_resource(VPC, "subnet-12345678").unwrap_err().to_string().contains("vpc-0123456789abcdef0"));
    }
}
