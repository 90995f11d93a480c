//! The least-privilege IAM policy in docs/aws-iam-policy.json names exactly the AWS APIs the
//! provider calls: every SDK call in the provider's source is in it, and it grants nothing else.

use std::collections::BTreeSet;
use std::path::Path;

/// Finds `ec2.describe_instances()`, `iam.put_user_policy()` and the like in the source, across
/// line breaks, and returns them as IAM actions such as `ec2:DescribeInstances`.
fn called_actions(source: &str) -> BTreeSet<String> {
    // Whitespace is folded, then dropped around dots, so chained calls across lines read as one.
    let text = source.split_whitespace().collect::<Vec<_>>().join(" ").replace(" .", ".").replace(". ", ".");
    let mut actions = BTreeSet::new();
    // The client variable names the provider uses, with the IAM prefix of each service.
    for (service, prefix) in [("ec2", "ec2"), ("iam", "iam"), ("sts", "sts"), ("autoscaling", "autoscaling"), ("elbv2", "elasticloadbalancing"), ("sso", "sso")] {
        for (index, _) in text.match_indices(&format!("{service}.")) {
            let preceded_by_name = text[..index].chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if preceded_by_name {
                continue;
            }
            let rest = &text[index + service.len() + 1..];
            let method: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            // Config builders share the clients' names; their methods are not API calls.
            if method.is_empty() || !rest[method.len()..].starts_with("()") || matches!(method.as_str(), "clone" | "build") {
                continue;
            }
            actions.insert(format!("{prefix}:{}", api_name(&method)));
        }
    }
    actions
}

/// Converts an SDK method name into the API name, with AWS's capitalisation of acronyms.
fn api_name(method: &str) -> String {
    if method == "wait_until_snapshot_completed" {
        return "DescribeSnapshots".to_string();
    }
    let method = method.replace("open_id_connect", "openidconnect");
    method
        .split('_')
        .map(|word| match word {
            "ssh" => "SSH".to_string(),
            "saml" => "SAML".to_string(),
            "openidconnect" => "OpenIDConnect".to_string(),
            other => {
                let mut chars = other.chars();
                chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
            }
        })
        .collect()
}

fn source_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn policy_names_every_called_api() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    let called: BTreeSet<String> = files.iter().flat_map(|f| called_actions(&std::fs::read_to_string(f).unwrap())).collect();
    assert!(called.contains("ec2:ModifyNetworkInterfaceAttribute"), "the scan finds calls: {called:?}");
    assert!(called.contains("iam:ListSSHPublicKeys"), "{called:?}");

    let policy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("../../docs/aws-iam-policy.json")).unwrap()).unwrap();
    let granted: BTreeSet<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()))
        .collect();

    // The credentials provider for other accounts calls AssumeRole, outside the provider's code.
    let mut called = called;
    called.insert("sts:AssumeRole".to_string());
    let missing: Vec<&String> = called.difference(&granted).collect();
    assert!(missing.is_empty(), "docs/aws-iam-policy.json lacks APIs the provider calls: {missing:?}");
    let unused: Vec<&String> = granted.difference(&called).collect();
    assert!(unused.is_empty(), "docs/aws-iam-policy.json grants APIs the provider never calls: {unused:?}");
}

#[test]
fn api_names_follow_aws_capitalisation() {
    assert_eq!(api_name("list_ssh_public_keys"), "ListSSHPublicKeys");
    assert_eq!(api_name("get_open_id_connect_provider"), "GetOpenIDConnectProvider");
    assert_eq!(api_name("create_network_acl_entry"), "CreateNetworkAclEntry");
}
