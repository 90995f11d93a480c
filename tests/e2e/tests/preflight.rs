//! The permission pre-flight in the plan: EC2 calls sent with DryRun=true, IAM checked with
//! SimulatePrincipalPolicy, each missing permission listed by step and target.

use contain_e2e::{EC2_PLAYBOOK, Harness, diff};
use contain_test_estate::{Effect, Fault, FaultProxy};

fn fault(body_contains: &[&str], status: u16, code: &str, body: Option<String>) -> Fault {
    Fault {
        body_contains: body_contains.iter().map(|s| s.to_string()).collect(),
        body_lacks: Vec::new(),
        body,
        skip: 0,
        times: 100,
        status,
        code: code.into(),
        message: "answered by the test proxy".into(),
        effect: Effect::Answer,
    }
}

#[tokio::test]
async fn plan_sends_ec2_dry_runs_only() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let instance = format!("instance={}", harness.estate.double.instance_id);

    let plan = harness.contain_via(&proxy.url, &["plan", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-80", "-o", "json"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.json()["plan"]["steps"][1]["targets"][0].get("missing_permissions").is_none(), "moto permits every call");

    let seen = proxy.seen();
    for action in ["ModifyNetworkInterfaceAttribute", "CreateSecurityGroup", "ModifyInstanceAttribute", "CreateTags", "CreateSnapshot"] {
        assert!(seen.iter().any(|r| r.action == action && r.body.contains("DryRun=true")), "no dry run of {action}");
    }
    let writes: Vec<&str> = seen.iter().filter(|r| !contain_aws::is_read_only_operation(&r.action) && !r.body.contains("DryRun=true")).map(|r| r.action.as_str()).collect();
    assert!(writes.is_empty(), "the plan sent writes: {writes:?}");
    let after = harness.describe().await;
    assert!(before == after, "{}", diff(&before, &after));
}

#[tokio::test]
async fn plan_lists_missing_ec2_permission() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    proxy.add_fault(fault(&["Action=ModifyInstanceAttribute", "DryRun=true"], 403, "UnauthorizedOperation", None));
    let instance = harness.estate.single.instance_id.clone();

    let plan = harness.contain_via(&proxy.url, &["plan", EC2_PLAYBOOK, "-i", &format!("instance={instance}"), "-i", "incident=INC-81"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains(&format!("MISSING PERMISSION: ec2:ModifyInstanceAttribute on {instance}")), "{}", plan.stdout);
}

#[tokio::test]
async fn plan_simulates_iam_permissions() {
    let harness = Harness::new().await;
    harness.build_iam().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let playbook = "playbooks/aws/access-key-compromise.yaml";
    let key = harness.iam().await.list_access_keys().user_name("analyst").send().await.unwrap().access_key_metadata()[0].access_key_id().unwrap().to_string();
    let args = ["plan", playbook, "-i", "user=analyst", "-i", &format!("access_key_id={key}"), "-i", "incident=INC-82"];

    // moto 5.2.5 returns HTTP 500 for SimulatePrincipalPolicy, so the plan notes that the check
    // could not run.
    let unchecked = harness.contain_via(&proxy.url, &args);
    assert_eq!(unchecked.code, 0, "{}{}", unchecked.stdout, unchecked.stderr);
    assert!(unchecked.stdout.contains("the permission pre-flight could not run"), "{}", unchecked.stdout);

    // A fake for that one call responds as IAM would: PutUserPolicy is denied.
    let user_arn = format!("arn:aws:iam::{}:user/analyst", harness.account.account_id);
    let member = |action: &str, decision: &str| {
        format!("<member><EvalActionName>{action}</EvalActionName><EvalResourceName>{user_arn}</EvalResourceName><EvalDecision>{decision}</EvalDecision><MatchedStatements/><MissingContextValues/></member>")
    };
    let body = format!(
        "<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>{}{}{}</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>",
        member("iam:UpdateAccessKey", "allowed"),
        member("iam:PutUserPolicy", "implicitDeny"),
        member("iam:DeleteUserPolicy", "allowed"),
    );
    proxy.add_fault(fault(&["Action=SimulatePrincipalPolicy"], 200, "", Some(body)));
    let checked = harness.contain_via(&proxy.url, &args);
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    assert!(checked.stdout.contains(&format!("MISSING PERMISSION: iam:PutUserPolicy on {user_arn}")), "{}", checked.stdout);
    assert!(!checked.stdout.contains("MISSING PERMISSION: iam:UpdateAccessKey"), "{}", checked.stdout);
    let simulated = proxy.seen().into_iter().filter(|r| r.action == "SimulatePrincipalPolicy").last().unwrap();
    assert!(simulated.body.contains("PolicySourceArn=arn%3Aaws%3Aiam%3A%3A"), "the caller is checked as its IAM role: {}", simulated.body);
}

#[tokio::test]
async fn acl_changes_get_no_dry_run() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    let plan = harness.contain_via(
        &proxy.url,
        &["plan", "playbooks/aws/block-addresses.yaml", "-i", &format!("vpc={}", harness.estate.vpc_id), "-i", "addresses=198.51.100.0/24", "-i", "incident=INC-83"],
    );
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    // moto 5.2.5 ignores DryRun on network ACL calls and makes the change, so none is sent.
    assert!(!proxy.seen().iter().any(|r| r.action.contains("NetworkAcl") && !r.action.starts_with("Describe")), "{:?}", proxy.seen().iter().map(|r| &r.action).collect::<Vec<_>>());
}
