use contain_core::{Target, TargetParseError};

pub(crate) const INSTANCE: &str = "aws.ec2.instance";
const INSTANCE_EXPECTED: &str =
    "an instance id such as i-0123456789abcdef0, or an instance ARN such as arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0";

/// Parses an EC2 instance id or ARN. An id alone takes its region from the AWS configuration.
pub fn parse_instance(value: &str) -> Result<Target, TargetParseError> {
    let invalid = || TargetParseError {
        resource_type: INSTANCE.to_string(),
        value: value.to_string(),
        expected: INSTANCE_EXPECTED.to_string(),
    };

    if let Some(rest) = value.strip_prefix("arn:") {
        let fields: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, "ec2", region, account, resource] = fields.as_slice() else {
            return Err(invalid());
        };
        let id = resource.strip_prefix("instance/").ok_or_else(invalid)?;
        let valid_account = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
        if partition.is_empty() || region.is_empty() || !valid_account || !is_instance_id(id) {
            return Err(invalid());
        }
        return Ok(Target {
            resource_type: INSTANCE.to_string(),
            id: id.to_string(),
            region: Some(region.to_string()),
            account: Some(account.to_string()),
        });
    }

    if !is_instance_id(value) {
        return Err(invalid());
    }
    Ok(Target { resource_type: INSTANCE.to_string(), id: value.to_string(), region: None, account: None })
}

fn is_instance_id(value: &str) -> bool {
    value
        .strip_prefix("i-")
        .is_some_and(|hex| (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_id_and_arn() {
        let target = parse_instance("i-0123456789abcdef0").unwrap();
        assert_eq!(target.id, "i-0123456789abcdef0");
        assert_eq!(target.region, None);

        let target = parse_instance("arn:aws:ec2:eu-west-1:123456789012:instance/i-12345678").unwrap();
        assert_eq!(target.id, "i-12345678");
        assert_eq!(target.region.as_deref(), Some("eu-west-1"));
        assert_eq!(target.account.as_deref(), Some("123456789012"));
    }

    #[test]
    fn invalid_instances_name_the_value() {
        for bad in ["i-xyz", "instance-1", "i-0123456789ABCDEF0", "arn:aws:ec2:us-east-1:1234:instance/i-12345678", "arn:aws:iam::123456789012:role/x"] {
            let err = parse_instance(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
            assert!(err.to_string().contains("i-0123456789abcdef0"), "{err}");
        }
    }
}
