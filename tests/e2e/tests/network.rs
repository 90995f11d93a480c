//! block and isolate on VPCs, subnets and security groups, against moto.

use contain_e2e::{Harness, diff};
use serde_json::Value;

const BLOCK_PLAYBOOK: &str = "playbooks/aws/block-addresses.yaml";

fn acls_of<'v>(described: &'v Value, vpc: &str) -> Vec<&'v Value> {
    described["network_acls"].as_array().unwrap().iter().filter(|a| a["vpc"] == vpc).collect()
}

#[tokio::test]
async fn block_playbook_denies_below_lowest_allow() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let vpc = harness.estate.vpc_id.clone();
    let args = ["run", BLOCK_PLAYBOOK, "-i", &format!("vpc={vpc}"), "-i", "addresses=198.51.100.7/32,2001:db8::/32", "-i", "incident=INC-21", "--yes", "-o", "json"];

    let run = harness.contain(&args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let contained = harness.describe().await;
    let acls = acls_of(&contained, &vpc);
    assert_eq!(acls.len(), 1, "the VPC's subnets share its default ACL");
    let entries = acls[0]["entries"].as_array().unwrap();
    for egress in [false, true] {
        let lowest_allow = entries.iter().filter(|e| e["egress"] == egress && e["action"] == "allow").map(|e| e["rule"].as_i64().unwrap()).min().unwrap();
        for cidr in ["198.51.100.7/32", "2001:db8::/32"] {
            let deny = entries.iter().find(|e| e["egress"] == egress && e["action"] == "deny" && e["cidr"] == cidr).unwrap_or_else(|| panic!("no deny for {cidr}: {entries:?}"));
            assert!(deny["rule"].as_i64().unwrap() < lowest_allow, "{deny} is not evaluated before the allow at {lowest_allow}");
        }
    }

    let again = harness.contain(&args);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json()["steps"][0]["targets"][0]["outcome"], "already_contained");

    let rollback = harness.contain(&["rollback", &run_id, "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let restored = harness.describe().await;
    assert!(before == restored, "{}", diff(&before, &restored));
}

#[tokio::test]
async fn block_checks_quota_before_any_write() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let vpc = harness.estate.vpc_id.clone();
    // 19 addresses: with the allow entry and the default deny, 21 entries in each direction, over
    // AWS's default quota of 20 (moto 5.2.5 does not enforce it).
    let addresses: Vec<String> = (1..=19).map(|i| format!("198.51.100.{i}/32")).collect();
    let run = harness.contain(&["run", BLOCK_PLAYBOOK, "-i", &format!("vpc={vpc}"), "-i", &format!("addresses={}", addresses.join(",")), "-i", "incident=INC-22", "--yes"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("over the quota of 20"), "{}", run.stdout);
    let after = harness.describe().await;
    assert!(before == after, "a step over quota must write nothing:\n{}", diff(&before, &after));

    let raised = harness.write_playbook("raised.yaml", &std::fs::read_to_string(contain_e2e::workspace_root().join(BLOCK_PLAYBOOK)).unwrap().replace("      direction: both", "      direction: both\n      entry_quota: 40"));
    let run = harness.contain(&["run", &raised, "-i", &format!("vpc={vpc}"), "-i", &format!("addresses={}", addresses.join(",")), "-i", "incident=INC-22", "--yes"]);
    assert_eq!(run.code, 0, "a raised quota from the playbook admits the step: {}{}", run.stdout, run.stderr);
}

#[tokio::test]
async fn isolate_vpc_uses_deny_all_acl() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let vpc = harness.estate.vpc_id.clone();
    let playbook = harness.write_playbook(
        "isolate-vpc.yaml",
        "name: isolate-vpc\ndescription: Isolate every subnet of a VPC.\ninputs:\n  vpc: { type: aws.ec2.vpc, description: The VPC. }\nsteps:\n  - id: isolate\n    action: isolate\n    target: \"${{ inputs.vpc }}\"\n",
    );

    let plan = harness.contain(&["plan", &playbook, "-i", &format!("vpc={vpc}")]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("blast radius: 2 instance(s) and 3 network interface(s) in 2 subnet(s)"), "{}", plan.stdout);

    let run = harness.contain(&["run", &playbook, "-i", &format!("vpc={vpc}"), "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let contained = harness.describe().await;
    let isolation = acls_of(&contained, &vpc).into_iter().find(|a| a["tags"]["contain:managed"] == "isolation-acl").expect("an isolation ACL");
    assert_eq!(isolation["subnets"].as_array().unwrap().len(), 2);
    assert!(isolation["entries"].as_array().unwrap().iter().all(|e| e["action"] == "deny"), "{isolation}");

    let rollback = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let restored = harness.describe().await;
    assert!(before == restored, "{}", diff(&before, &restored));
}

#[tokio::test]
async fn block_removes_one_range_of_several() {
    let harness = Harness::new().await;
    let group = harness.estate.groups["ssh"].clone();
    harness
        .ec2
        .authorize_security_group_ingress()
        .group_id(&group)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("192.0.2.0/24").description("vendor").build())
                .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("198.51.100.0/24").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let before = harness.describe().await;
    let playbook = harness.write_playbook(
        "group.yaml",
        "name: group-block\ndescription: Remove ranges from a group.\ninputs:\n  group: { type: aws.ec2.security_group, description: The group. }\nsteps:\n  - id: block\n    action: block\n    target: \"${{ inputs.group }}\"\n    with: { addresses: [192.0.2.0/24], direction: inbound }\n",
    );

    let run = harness.contain(&["run", &playbook, "-i", &format!("group={group}"), "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let after = harness.describe().await;
    let described = after["security_groups"].as_array().unwrap().iter().find(|g| g["id"] == group.as_str()).unwrap();
    let ipv4: Vec<&str> = described["ingress"].as_array().unwrap().iter().flat_map(|r| r["ipv4"].as_array().unwrap()).map(|c| c.as_str().unwrap()).collect();
    assert!(!ipv4.contains(&"192.0.2.0/24"), "{ipv4:?}");
    assert!(ipv4.contains(&"198.51.100.0/24"), "the other range of the rule stays: {ipv4:?}");
    assert!(ipv4.contains(&"10.1.0.0/16"), "the other rule stays: {ipv4:?}");

    let rollback = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let restored = harness.describe().await;
    assert!(before == restored, "{}", diff(&before, &restored));
}

#[tokio::test]
async fn wider_range_is_reported() {
    let harness = Harness::new().await;
    let group = harness.estate.groups["web"].clone();
    let playbook = harness.write_playbook(
        "wider.yaml",
        "name: wider\ndescription: Block one address.\ninputs:\n  group: { type: aws.ec2.security_group, description: The group. }\nsteps:\n  - id: block\n    action: block\n    target: \"${{ inputs.group }}\"\n    with: { addresses: [203.0.113.7/32], direction: inbound }\n",
    );
    let plan = harness.contain(&["plan", &playbook, "-i", &format!("group={group}")]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("still admits 203.0.113.7/32 through the wider range(s) 0.0.0.0/0"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("note: already contained"), "{}", plan.stdout);
}
