//! revoke and disable_sso on IAM users, roles and SAML providers, against moto.

use contain_e2e::{Harness, diff};
use serde_json::Value;

const ACCESS_KEY_PLAYBOOK: &str = "playbooks/aws/access-key-compromise.yaml";
const SAML_PLAYBOOK: &str = "playbooks/aws/saml-provider-lockout.yaml";

fn user<'v>(described: &'v Value, name: &str) -> &'v Value {
    described["users"].as_array().unwrap().iter().find(|u| u["name"] == name).unwrap()
}

fn role<'v>(described: &'v Value, name: &str) -> &'v Value {
    described["roles"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()
}

fn key_status(described: &Value, user_name: &str, key: &str) -> String {
    let keys = user(described, user_name)["access_keys"].as_array().unwrap();
    keys.iter().find(|k| k["id"] == key).unwrap()["status"].as_str().unwrap().to_string()
}

fn operation_ids(plan: &Value) -> Vec<String> {
    plan["plan"]["steps"][0]["targets"][0]["operations"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn access_key_playbook_revokes_one_key() {
    let harness = Harness::new().await;
    let estate = harness.build_iam().await;
    let before = harness.describe_iam().await;
    let args = ["run", ACCESS_KEY_PLAYBOOK, "-i", "user=analyst", "-i", &format!("access_key_id={}", estate.fresh_key), "-i", "incident=INC-11", "--yes", "-o", "json"];

    let run = harness.contain(&args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let contained = harness.describe_iam().await;
    assert_eq!(key_status(&contained, "analyst", &estate.fresh_key), "Inactive");
    assert_eq!(key_status(&contained, "analyst", &estate.stale_key), "Active", "only the named key changes");

    let policies = user(&contained, "analyst")["inline_policies"].as_array().unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0]["name"], format!("contain-revoke-sessions-{run_id}").as_str());
    let statement = &policies[0]["document"]["Statement"][0];
    assert_eq!(statement["Effect"], "Deny");
    assert_eq!(statement["Action"], "*");
    assert!(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str().unwrap().ends_with('Z'));

    let again = harness.contain(&args);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json()["steps"][0]["targets"][0]["outcome"], "already_contained");
    let after_again = harness.describe_iam().await;
    assert!(contained == after_again, "{}", diff(&contained, &after_again));

    let rollback = harness.contain(&["rollback", &run_id, "--yes", "-o", "json"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let notes = rollback.json()["notes"].to_string();
    assert!(notes.contains("valid again until they expire"), "rollback must warn that revoked sessions live again: {notes}");
    let restored = harness.describe_iam().await;
    assert!(before == restored, "{}", diff(&before, &restored));

    let twice = harness.contain(&["rollback", &run_id, "--yes"]);
    assert_eq!(twice.code, 0, "{}", twice.stderr);
    let still = harness.describe_iam().await;
    assert!(before == still, "{}", diff(&before, &still));
}

#[tokio::test]
async fn key_selector_picks_unused_keys() {
    let harness = Harness::new().await;
    let estate = harness.build_iam().await;
    let before = harness.describe_iam().await;
    let playbook = harness.write_playbook(
        "stale-keys.yaml",
        "name: stale-keys\ndescription: Deactivate keys unused for 90 days.\ninputs:\n  user: { type: aws.iam.user, description: The user. }\nsteps:\n  - id: revoke\n    action: revoke\n    target: \"${{ inputs.user }}\"\n    with: { select: { unused_days_over: 90 }, revoke_sessions: false }\n",
    );

    let plan = harness.contain(&["plan", &playbook, "-i", "user=analyst", "-o", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(operation_ids(&plan.json()), [format!("access_key:{}", estate.stale_key)]);

    let run = harness.contain(&["run", &playbook, "-i", "user=analyst", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let contained = harness.describe_iam().await;
    assert_eq!(key_status(&contained, "analyst", &estate.stale_key), "Inactive");
    assert_eq!(key_status(&contained, "analyst", &estate.fresh_key), "Active");

    let rollback = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    let restored = harness.describe_iam().await;
    assert!(before == restored, "{}", diff(&before, &restored));
}

#[tokio::test]
async fn login_profile_deletion_needs_irreversible_allow() {
    let harness = Harness::new().await;
    harness.build_iam().await;
    let source = "name: lock-user\ndescription: Lock a user out.\ninputs:\n  user: { type: aws.iam.user, description: The user. }\nsteps:\n  - id: revoke\n    action: revoke\n    target: \"${{ inputs.user }}\"\n    with: { delete_login_profile: true, revoke_sessions: false }\n";
    let refused = harness.write_playbook("refused.yaml", source);

    // Refused when the playbook is read, before any cloud call, at the option's line and column.
    let validate = harness.contain(&["validate", &refused]);
    assert_eq!(validate.code, 2, "{}{}", validate.stdout, validate.stderr);
    assert!(validate.stderr.contains(":9:"), "{}", validate.stderr);
    assert!(validate.stderr.contains("`delete_login_profile` makes changes that rollback cannot undo"), "{}", validate.stderr);
    let plan = harness.contain(&["plan", &refused, "-i", "user=analyst"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stderr.contains("add `irreversible: allow` to step `revoke`"), "{}", plan.stderr);

    let allowed = harness.write_playbook("allowed.yaml", &source.replace("    with:", "    irreversible: allow\n    with:"));
    let plan = harness.contain(&["plan", &allowed, "-i", "user=analyst"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("! IRREVERSIBLE delete the console password"), "{}", plan.stdout);
    let listed = plan.stdout.split("Irreversible changes").nth(1).unwrap_or_default();
    assert!(listed.contains("step revoke"), "listed apart: {}", plan.stdout);
    assert!(listed.contains("delete the console password"), "listed apart: {}", plan.stdout);

    let run = harness.contain(&["run", &allowed, "-i", "user=analyst", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(user(&harness.describe_iam().await, "analyst")["login_profile"], false);

    let rollback = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes", "-o", "json"]);
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    assert!(rollback.json()["notes"].to_string().contains("cannot be undone"), "{}", rollback.stdout);
    assert_eq!(user(&harness.describe_iam().await, "analyst")["login_profile"], false, "a deleted password cannot come back");
}

#[tokio::test]
async fn saml_lockout_denies_trusting_roles() {
    let harness = Harness::new().await;
    let estate = harness.build_iam().await;
    let before = harness.describe_iam().await;
    let args = ["run", SAML_PLAYBOOK, "-i", &format!("provider={}", estate.saml_provider_arn), "-i", "incident=INC-12", "--yes", "-o", "json"];

    let plan = harness.contain(&["plan", SAML_PLAYBOOK, "-i", &format!("provider={}", estate.saml_provider_arn), "-i", "incident=INC-12"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains(&format!("not containable here: role {} is service-linked", estate.service_linked_role)), "{}", plan.stdout);

    let run = harness.contain(&args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let contained = harness.describe_iam().await;
    for name in &estate.federated_roles {
        let role = role(&contained, name);
        let statements = role["trust_policy"]["Statement"].as_array().unwrap();
        let deny = statements.iter().find(|s| s["Effect"] == "Deny").unwrap_or_else(|| panic!("{name} has no deny: {role}"));
        assert_eq!(deny["Principal"]["Federated"], estate.saml_provider_arn.as_str());
        assert_eq!(deny["Action"], "sts:AssumeRoleWithSAML");
        let policies = role["inline_policies"].as_array().unwrap();
        assert_eq!(policies.len(), 1, "{name}: sessions revoked");
    }
    assert_eq!(role(&contained, &estate.service_linked_role), role(&before, &estate.service_linked_role));
    assert_eq!(role(&contained, &estate.other_role), role(&before, &estate.other_role));

    let again = harness.contain(&args);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json()["steps"][0]["targets"][0]["outcome"], "already_contained");

    let rollback = harness.contain(&["rollback", &run_id, "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let restored = harness.describe_iam().await;
    assert!(before == restored, "trust policies were not restored:\n{}", diff(&before, &restored));
}

#[tokio::test]
async fn oversized_trust_policy_fails_the_plan() {
    let harness = Harness::new().await;
    let estate = harness.build_iam().await;
    let iam = harness.iam().await;
    let audiences: Vec<String> = (0..60).map(|i| format!("https://app{i}.example.com/saml")).collect();
    let document = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Federated": estate.saml_provider_arn}, "Action": "sts:AssumeRoleWithSAML", "Condition": {"StringEquals": {"SAML:aud": audiences}}}]
    })
    .to_string();
    // moto 5.2.5 does not enforce the 2,048-character quota that AWS applies, so it accepts this.
    iam.create_role().role_name("big-trust").assume_role_policy_document(document).send().await.unwrap();
    let before = harness.describe_iam().await;

    let run = harness.contain(&["run", SAML_PLAYBOOK, "-i", &format!("provider={}", estate.saml_provider_arn), "-i", "incident=INC-13", "--yes"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("role big-trust"), "{}", run.stdout);
    assert!(run.stdout.contains("2048"), "{}", run.stdout);
    let after = harness.describe_iam().await;
    assert!(before == after, "nothing may change when the plan fails:\n{}", diff(&before, &after));
}

#[tokio::test]
async fn role_found_through_instance_profile() {
    let harness = Harness::new().await;
    let estate = harness.build_iam().await;
    let before = harness.describe_iam().await;
    let playbook = harness.write_playbook(
        "role.yaml",
        "name: role-sessions\ndescription: Revoke a role's sessions.\ninputs:\n  role: { type: aws.iam.role, description: The role or instance profile. }\nsteps:\n  - id: revoke\n    action: revoke\n    target: \"${{ inputs.role }}\"\n",
    );

    let run = harness.contain(&["run", &playbook, "-i", &format!("role={}", estate.instance_profile_arn), "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let contained = harness.describe_iam().await;
    let policies = role(&contained, &estate.profile_role)["inline_policies"].as_array().unwrap().clone();
    assert_eq!(policies.len(), 1, "the profile's role, web-app, gets the policy");
    assert!(policies[0]["name"].as_str().unwrap().starts_with("contain-revoke-sessions-"));

    let rollback = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    let restored = harness.describe_iam().await;
    assert!(before == restored, "{}", diff(&before, &restored));

    let linked = harness.contain(&["run", &playbook, "-i", &format!("role={}", estate.service_linked_role), "--yes", "-o", "json"]);
    assert_eq!(linked.code, 3, "{}{}", linked.stdout, linked.stderr);
    let target = &linked.json()["steps"][0]["targets"][0];
    assert_eq!(target["outcome"], "not_containable");
    assert!(target["error"].as_str().unwrap().contains("service-linked"), "{target}");
    let after = harness.describe_iam().await;
    assert!(before == after, "{}", diff(&before, &after));
}

#[tokio::test]
async fn ec2_playbook_revokes_profile_role_sessions() {
    let harness = Harness::new().await;
    let estate = harness.build_iam().await;
    let instance = harness.estate.single.instance_id.clone();
    harness
        .ec2
        .associate_iam_instance_profile()
        .instance_id(&instance)
        .iam_instance_profile(aws_sdk_ec2::types::IamInstanceProfileSpecification::builder().arn(&estate.instance_profile_arn).build())
        .send()
        .await
        .unwrap();
    let before_ec2 = harness.describe().await;
    let before_iam = harness.describe_iam().await;

    let run = harness.contain(&["run", contain_e2e::EC2_PLAYBOOK, "-i", &format!("instance={instance}"), "-i", "incident=INC-14", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["steps"][2]["id"], "revoke-role-sessions");
    assert_eq!(report["steps"][2]["targets"][0]["outcome"], "contained");
    let contained = harness.describe_iam().await;
    assert_eq!(role(&contained, &estate.profile_role)["inline_policies"].as_array().unwrap().len(), 1);

    let rollback = harness.contain(&["rollback", report["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let after_ec2 = harness.describe().await;
    let after_iam = harness.describe_iam().await;
    assert!(before_ec2 == after_ec2, "{}", diff(&before_ec2, &after_ec2));
    assert!(before_iam == after_iam, "{}", diff(&before_iam, &after_iam));
}

async fn permission_set_policy(sso: &aws_sdk_ssoadmin::Client, instance: &str, permission_set: &str) -> Option<String> {
    let output = sso.get_inline_policy_for_permission_set().instance_arn(instance).permission_set_arn(permission_set).send().await.unwrap();
    output.inline_policy().filter(|p| !p.is_empty()).map(str::to_string)
}

#[tokio::test]
async fn permission_set_denies_older_sessions() {
    let harness = Harness::new().await;
    let sso = aws_sdk_ssoadmin::Client::new(&harness.account.sdk_config(&harness.endpoint).await);
    let instance = sso.list_instances().send().await.unwrap().instances()[0].instance_arn().unwrap().to_string();
    // moto 5.2.5 returns SessionDuration as a number unless one is given; AWS returns an
    // ISO 8601 duration, which the SDK requires, so the test gives one.
    let created = sso.create_permission_set().instance_arn(&instance).name("IncidentAdmins").session_duration("PT1H").send().await.unwrap();
    let permission_set = created.permission_set().unwrap().permission_set_arn().unwrap().to_string();
    let prior = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadLogs","Effect":"Allow","Action":"logs:Get*","Resource":"*"}]}"#;
    sso.put_inline_policy_to_permission_set().instance_arn(&instance).permission_set_arn(&permission_set).inline_policy(prior).send().await.unwrap();
    sso.provision_permission_set()
        .instance_arn(&instance)
        .permission_set_arn(&permission_set)
        .target_type(aws_sdk_ssoadmin::types::ProvisionTargetType::AllProvisionedAccounts)
        .send()
        .await
        .unwrap();
    let playbook = harness.write_playbook(
        "permission-set.yaml",
        "name: permission-set\ndescription: Cut off a permission set's sessions.\ninputs:\n  set: { type: aws.sso.permission_set, description: The permission set. }\nsteps:\n  - id: lockout\n    action: disable_sso\n    target: \"${{ inputs.set }}\"\n",
    );
    let set = format!("set={permission_set}");

    let plan = harness.contain(&["plan", &playbook, "-i", &set]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert_eq!(permission_set_policy(&sso, &instance, &permission_set).await.as_deref(), Some(prior), "plan wrote nothing");

    let run = harness.contain(&["run", &playbook, "-i", &set, "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let contained: serde_json::Value = serde_json::from_str(&permission_set_policy(&sso, &instance, &permission_set).await.unwrap()).unwrap();
    let statements = contained["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "the existing statement stays: {contained}");
    assert_eq!(statements[1]["Effect"], "Deny");
    assert!(statements[1]["Condition"]["DateLessThan"]["aws:TokenIssueTime"].is_string());

    let again = harness.contain(&["run", &playbook, "-i", &set, "--yes", "-o", "json"]);
    assert_eq!(again.json()["steps"][0]["targets"][0]["outcome"], "already_contained");

    let rollback = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    assert_eq!(permission_set_policy(&sso, &instance, &permission_set).await.as_deref(), Some(prior), "the prior policy is restored verbatim");
    let twice = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(twice.code, 0, "{}", twice.stderr);
    assert_eq!(permission_set_policy(&sso, &instance, &permission_set).await.as_deref(), Some(prior));
}

fn service_credentials_answer(status: &str) -> String {
    format!(
        "<ListServiceSpecificCredentialsResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ListServiceSpecificCredentialsResult><ServiceSpecificCredentials><member><UserName>analyst</UserName><Status>{status}</Status><ServiceUserName>analyst-at-1</ServiceUserName><CreateDate>2026-01-01T00:00:00Z</CreateDate><ServiceSpecificCredentialId>ACCAEXAMPLE123456789</ServiceSpecificCredentialId><ServiceName>codecommit.amazonaws.com</ServiceName></member></ServiceSpecificCredentials></ListServiceSpecificCredentialsResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></ListServiceSpecificCredentialsResponse>"
    )
}

fn answer(action: &str, body: String) -> contain_test_estate::Fault {
    contain_test_estate::Fault {
        body_contains: vec![format!("Action={action}")],
        body_lacks: Vec::new(),
        body: Some(body),
        skip: 0,
        times: 1000,
        status: 200,
        code: String::new(),
        message: String::new(),
        effect: contain_test_estate::Effect::Answer,
    }
}

#[tokio::test]
async fn service_specific_credentials_through_fake() {
    let harness = Harness::new().await;
    harness.build_iam().await;
    // moto 5.2.5 lacks the service-specific credential calls; the test proxy returns IAM-shaped
    // responses to those two calls, and forwards everything else to moto.
    let proxy = contain_test_estate::FaultProxy::start(&harness.endpoint).await.unwrap();
    proxy.add_fault(answer("ListServiceSpecificCredentials", service_credentials_answer("Active")));
    proxy.add_fault(answer(
        "UpdateServiceSpecificCredential",
        "<UpdateServiceSpecificCredentialResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></UpdateServiceSpecificCredentialResponse>".into(),
    ));
    let playbook = harness.write_playbook(
        "service-credentials.yaml",
        "name: service-credentials\ndescription: Deactivate service-specific credentials.\ninputs:\n  user: { type: aws.iam.user, description: The user. }\nsteps:\n  - id: revoke\n    action: revoke\n    target: \"${{ inputs.user }}\"\n    with: { access_keys: false, revoke_sessions: false, service_specific_credentials: true }\n",
    );

    let run = harness.contain_via(&proxy.url, &["run", &playbook, "-i", "user=analyst", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let operations = run.json()["steps"][0]["targets"][0]["operations"].clone();
    assert_eq!(operations[0]["id"], "service_credential:ACCAEXAMPLE123456789", "{operations}");
    let updates: Vec<String> = proxy.seen().into_iter().filter(|r| r.action == "UpdateServiceSpecificCredential").map(|r| r.body).collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(updates[0].contains("Status=Inactive"), "{}", updates[0]);

    proxy.clear_faults();
    proxy.add_fault(answer("ListServiceSpecificCredentials", service_credentials_answer("Inactive")));
    proxy.add_fault(answer(
        "UpdateServiceSpecificCredential",
        "<UpdateServiceSpecificCredentialResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></UpdateServiceSpecificCredentialResponse>".into(),
    ));
    let rollback = harness.contain_via(&proxy.url, &["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let updates: Vec<String> = proxy.seen().into_iter().filter(|r| r.action == "UpdateServiceSpecificCredential").map(|r| r.body).collect();
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert!(updates[1].contains("Status=Active"), "rollback sets the journaled status again: {}", updates[1]);
}

#[tokio::test]
async fn user_without_console_password() {
    let harness = Harness::new().await;
    harness.build_iam().await;
    let iam = harness.iam().await;
    iam.create_user().user_name("ci-bot").send().await.unwrap();
    let key = iam.create_access_key().user_name("ci-bot").send().await.unwrap().access_key().unwrap().access_key_id().to_string();

    let run = harness.contain(&["run", ACCESS_KEY_PLAYBOOK, "-i", "user=ci-bot", "-i", &format!("access_key_id={key}"), "-i", "incident=INC-15", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "IAM answers NoSuchEntity for the missing login profile: {}{}", run.stdout, run.stderr);
    assert_eq!(key_status(&harness.describe_iam().await, "ci-bot", &key), "Inactive");
}
