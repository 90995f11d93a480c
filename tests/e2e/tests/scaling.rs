//! isolate on an instance in an Auto Scaling group and an ELBv2 target group, against moto.

use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_ec2::types::{InstanceType, RequestLaunchTemplateData};
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription, TargetTypeEnum};
use contain_e2e::{EC2_PLAYBOOK, Harness, diff};
use serde_json::{Value, json};

struct Scaled {
    autoscaling: aws_sdk_autoscaling::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    instance: String,
    target_group: String,
}

/// Creates an Auto Scaling group of two instances (minimum `min`) and a target group in which
/// the first instance is registered on port 8080.
async fn scaled(harness: &Harness, min: i32) -> Scaled {
    let config = harness.account.sdk_config(&harness.endpoint).await;
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let image = contain_test_estate::any_image(&harness.ec2).await.unwrap();
    harness
        .ec2
        .create_launch_template()
        .launch_template_name("web")
        .launch_template_data(RequestLaunchTemplateData::builder().image_id(image).instance_type(InstanceType::T3Micro).build())
        .send()
        .await
        .unwrap();
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("web")
        .launch_template(LaunchTemplateSpecification::builder().launch_template_name("web").version("$Latest").build())
        .min_size(min)
        .max_size(3)
        .desired_capacity(2)
        .vpc_zone_identifier(&harness.estate.subnet_ids[0])
        .send()
        .await
        .unwrap();
    let groups = autoscaling.describe_auto_scaling_groups().auto_scaling_group_names("web").send().await.unwrap();
    let instance = groups.auto_scaling_groups()[0].instances()[0].instance_id().unwrap().to_string();

    let created = elbv2
        .create_target_group()
        .name("web")
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(&harness.estate.vpc_id)
        .target_type(TargetTypeEnum::Instance)
        .send()
        .await
        .unwrap();
    let target_group = created.target_groups()[0].target_group_arn().unwrap().to_string();
    elbv2.register_targets().target_group_arn(&target_group).targets(TargetDescription::builder().id(&instance).port(8080).build()).send().await.unwrap();
    Scaled { autoscaling, elbv2, instance, target_group }
}

async fn describe_scaling(scaled: &Scaled) -> Value {
    let groups = scaled.autoscaling.describe_auto_scaling_groups().auto_scaling_group_names("web").send().await.unwrap();
    let group = &groups.auto_scaling_groups()[0];
    let mut instances: Vec<Value> = group.instances().iter().map(|i| json!({ "id": i.instance_id(), "lifecycle": i.lifecycle_state().map(|l| l.as_str()) })).collect();
    instances.sort_by_key(|v| v.to_string());
    let health = scaled.elbv2.describe_target_health().target_group_arn(&scaled.target_group).send().await.unwrap();
    let mut targets: Vec<Value> = health.target_health_descriptions().iter().map(|d| json!({ "id": d.target().and_then(|t| t.id()), "port": d.target().and_then(|t| t.port()) })).collect();
    targets.sort_by_key(|v| v.to_string());
    json!({ "min": group.min_size(), "max": group.max_size(), "desired": group.desired_capacity(), "instances": instances, "targets": targets })
}

fn lifecycle_of(described: &Value, instance: &str) -> String {
    described["instances"].as_array().unwrap().iter().find(|i| i["id"] == instance).map(|i| i["lifecycle"].as_str().unwrap().to_string()).unwrap_or_else(|| "Detached".into())
}

#[tokio::test]
async fn standby_and_deregister_then_restore() {
    let harness = Harness::new().await;
    let scaled = scaled(&harness, 1).await;
    let before = describe_scaling(&scaled).await;
    let before_ec2 = harness.describe().await;
    assert_eq!(before["targets"], json!([{ "id": scaled.instance, "port": 8080 }]));

    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &format!("instance={}", scaled.instance), "-i", "incident=INC-60", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let contained = describe_scaling(&scaled).await;
    assert_eq!(lifecycle_of(&contained, &scaled.instance), "Standby");
    assert_eq!(contained["desired"], 1, "leaving the group lowers the desired capacity, so no replacement starts");
    assert_eq!(contained["targets"], json!([]), "the load balancer no longer sends it traffic");

    let rollback = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let restored = describe_scaling(&scaled).await;
    assert!(before == restored, "{}", diff(&before, &restored));
    let restored_ec2 = harness.describe().await;
    assert!(before_ec2 == restored_ec2, "{}", diff(&before_ec2, &restored_ec2));
}

#[tokio::test]
async fn minimum_size_is_lowered_and_restored() {
    let harness = Harness::new().await;
    let scaled = scaled(&harness, 2).await;
    let before = describe_scaling(&scaled).await;

    let plan = harness.contain(&["plan", EC2_PLAYBOOK, "-i", &format!("instance={}", scaled.instance), "-i", "incident=INC-61"]);
    assert!(plan.stdout.contains("lower the minimum size of Auto Scaling group web from 2 to 1"), "{}", plan.stdout);

    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &format!("instance={}", scaled.instance), "-i", "incident=INC-61", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let contained = describe_scaling(&scaled).await;
    assert_eq!(contained["min"], 1);
    assert_eq!(contained["desired"], 1);

    let rollback = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let restored = describe_scaling(&scaled).await;
    assert!(before == restored, "{}", diff(&before, &restored));
}

#[tokio::test]
async fn instance_not_in_service_fails_plan() {
    let harness = Harness::new().await;
    let scaled = scaled(&harness, 1).await;
    scaled.autoscaling.enter_standby().auto_scaling_group_name("web").instance_ids(&scaled.instance).should_decrement_desired_capacity(true).send().await.unwrap();
    let before = describe_scaling(&scaled).await;
    let before_ec2 = harness.describe().await;

    let run = harness.contain(&["run", EC2_PLAYBOOK, "-i", &format!("instance={}", scaled.instance), "-i", "incident=INC-62", "--yes"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("in lifecycle state Standby, not InService"), "{}", run.stdout);
    let after = describe_scaling(&scaled).await;
    assert!(before == after, "{}", diff(&before, &after));
    let after_ec2 = harness.describe().await;
    assert!(before_ec2 == after_ec2, "{}", diff(&before_ec2, &after_ec2));
}

#[tokio::test]
async fn detach_option_reattaches_on_rollback() {
    let harness = Harness::new().await;
    let scaled = scaled(&harness, 1).await;
    let before = describe_scaling(&scaled).await;
    let source = std::fs::read_to_string(contain_e2e::workspace_root().join(EC2_PLAYBOOK)).unwrap().replace("      protect: true\n", "      protect: true\n      auto_scaling: detach\n");
    let playbook = harness.write_playbook("detach.yaml", &source);

    let run = harness.contain(&["run", &playbook, "-i", &format!("instance={}", scaled.instance), "-i", "incident=INC-63", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(lifecycle_of(&describe_scaling(&scaled).await, &scaled.instance), "Detached");

    let rollback = harness.contain(&["rollback", run.json()["run_id"].as_str().unwrap(), "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let restored = describe_scaling(&scaled).await;
    assert!(before == restored, "{}", diff(&before, &restored));
}
