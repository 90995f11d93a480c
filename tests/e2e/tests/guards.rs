//! Guard rails: protected resources and self-lockout fail in the plan, before any change.

use contain_e2e::{EC2_PLAYBOOK, Harness, diff};

fn write_config(harness: &Harness, text: &str) -> String {
    let path = harness.state_dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write the configuration");
    path.display().to_string()
}

#[tokio::test]
async fn protected_instance() {
    let harness = Harness::new().await;
    let before = harness.describe().await;
    let instance = harness.estate.single.instance_id.clone();
    let config = write_config(&harness, &format!("[guard]\nprotected = [\"i-0123456789abcdef0\", \"{instance}\"]\n"));
    let input = format!("instance={instance}");

    let plan = harness.contain(&["--config", &config, "plan", EC2_PLAYBOOK, "-i", &input, "-i", "incident=INC-G1", "-o", "json"]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    let errors = plan.json()["plan"]["steps"].to_string();
    assert!(errors.contains(&format!("guard.protected lists {instance}")), "{errors}");

    let run = harness.contain(&["--config", &config, "run", EC2_PLAYBOOK, "-i", &input, "-i", "incident=INC-G1", "--yes"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("nothing was applied"), "{}", run.stderr);
    assert!(harness.run_ids().is_empty(), "no run started");
    let after = harness.describe().await;
    assert!(after == before, "{}", diff(&before, &after));
}

#[tokio::test]
async fn own_instance() {
    let harness = Harness::new().await;
    let instance = harness.estate.double.instance_id.clone();
    let config = write_config(&harness, &format!("[guard]\nown_instance_id = \"{instance}\"\n"));
    let input = format!("instance={instance}");

    let plan = harness.contain(&["--config", &config, "plan", EC2_PLAYBOOK, "-i", &input, "-i", "incident=INC-G2"]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("is the instance contain runs on"), "{}", plan.stdout);
    assert!(plan.stdout.contains("--allow-self-lockout"), "{}", plan.stdout);

    let allowed = harness.contain(&["--config", &config, "plan", EC2_PLAYBOOK, "-i", &input, "-i", "incident=INC-G2", "--allow-self-lockout"]);
    assert_eq!(allowed.code, 0, "{}{}", allowed.stdout, allowed.stderr);
    assert!(allowed.stdout.contains("WARNING: made with --allow-self-lockout"), "the reviewer sees the lifted guard: {}", allowed.stdout);

    // A mistyped id would protect nothing, so the configuration is refused.
    let typo = write_config(&harness, "[guard]\nprotected = [\"i-bad\"]\n");
    let refused = harness.contain(&["--config", &typo, "plan", EC2_PLAYBOOK, "-i", &input, "-i", "incident=INC-G2"]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("`i-bad` is not a valid EC2 id"), "{}", refused.stderr);
}

#[tokio::test]
async fn own_role() {
    let harness = Harness::new().await;
    // The test credentials are an assumed-role session of the role contain-test (see
    // contain_test_estate::fresh_account).
    let source = "name: revoke-role\ndescription: Revoke a role's sessions.\ninputs:\n  role: { type: aws.iam.role, description: The role. }\nsteps:\n  - id: revoke\n    action: revoke\n    target: \"${{ inputs.role }}\"\n    with: { revoke_sessions: true }\n";
    let playbook = harness.write_playbook("revoke-role.yaml", source);
    let arn = format!("role=arn:aws:iam::{}:role/contain-test", harness.account.account_id);

    let plan = harness.contain(&["plan", &playbook, "-i", &arn]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("contain runs as aws.iam.role contain-test"), "{}", plan.stdout);

    // The same role through an instance profile is refused too, and so is a protected one.
    let iam = harness.iam().await;
    // moto lets the test credentials assume contain-test without the role existing.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role().role_name("contain-test").assume_role_policy_document(trust).send().await.unwrap();
    iam.create_instance_profile().instance_profile_name("contain-test-profile").send().await.unwrap();
    iam.add_role_to_instance_profile().instance_profile_name("contain-test-profile").role_name("contain-test").send().await.unwrap();
    let profile = format!("role=arn:aws:iam::{}:instance-profile/contain-test-profile", harness.account.account_id);
    let through_profile = harness.contain(&["plan", &playbook, "-i", &profile]);
    assert_eq!(through_profile.code, 1, "{}{}", through_profile.stdout, through_profile.stderr);
    assert!(through_profile.stdout.contains("contain runs as aws.iam.role contain-test"), "{}", through_profile.stdout);

    let config = harness.state_dir.path().join("protected.toml");
    std::fs::write(&config, format!("[guard]\nprotected = [\"arn:aws:iam::{}:role/contain-test\"]\n", harness.account.account_id)).unwrap();
    let forced = harness.contain(&["--config", config.to_str().unwrap(), "plan", &playbook, "-i", &profile, "--allow-self-lockout"]);
    assert_eq!(forced.code, 1, "{}{}", forced.stdout, forced.stderr);
    assert!(forced.stdout.contains("guard.protected lists"), "protected even with --allow-self-lockout: {}", forced.stdout);
}
