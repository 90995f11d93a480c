//! The plan-mode clients refuse every request that is not a read, before sending it.
//!
//! This file contains one test because it sets process environment variables for the AWS SDK.

use std::sync::Arc;

use contain_aws::AwsProvider;
use contain_core::{ActionKind, CallContext, ErrorKind, Mode, Operation, Provider};
use contain_e2e::{Harness, diff};
use contain_test_estate::FaultProxy;
use serde_json::json;

#[tokio::test]
async fn plan_mode_client_refuses_writes() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    for (key, value) in harness.account.env(&proxy.url) {
        // SAFETY: this test binary runs this one test, and sets the variables before any thread
        // of the SDK reads them.
        unsafe { std::env::set_var(key, value) };
    }
    let before = harness.describe().await;
    let provider: Arc<dyn Provider> = Arc::new(AwsProvider::new());
    let action = provider.action(ActionKind::Isolate, "aws.ec2.instance").unwrap();
    let target = provider.parse_target("aws.ec2.instance", &harness.estate.single.instance_id).unwrap();
    let plan_context = CallContext::new(Mode::Plan, "plan-guard-test");

    let state = action.inspect(&plan_context, &target).await.expect("inspect is allowed while planning");
    let plan = action.plan(&target, &Default::default(), &state).unwrap();
    let interface = plan.operations.iter().find(|o| o.kind == "ec2.interface_groups").unwrap();
    let bound = Operation { desired: json!({ "groups": [harness.estate.groups["web"]], "via": null }), ..interface.clone() };

    let error = action.apply(&plan_context, &target, &bound).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::DryRunRefused, "{}", error.message);
    assert!(error.message.contains("ModifyNetworkInterfaceAttribute"), "{}", error.message);
    let ensure = plan.operations.iter().find(|o| o.kind == "ec2.ensure_group").unwrap();
    let error = action.apply(&plan_context, &target, ensure).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::DryRunRefused, "{}", error.message);

    let sent: Vec<String> = proxy.seen().iter().map(|r| r.action.clone()).collect();
    assert!(sent.iter().all(|a| contain_aws::is_read_only_operation(a)), "a write reached the wire: {sent:?}");
    assert!(sent.iter().any(|a| a == "DescribeInstances"), "{sent:?}");
    let after = harness.describe().await;
    assert!(before == after, "{}", diff(&before, &after));

    // The same action with an apply-mode context does write, so the refusal came from the mode.
    let apply_context = CallContext::new(Mode::Apply, "plan-guard-test");
    action.apply(&apply_context, &target, &bound).await.expect("apply mode may write");
    assert_eq!(harness.interface_groups(&harness.estate.single.interface_ids[0]).await, vec![harness.estate.groups["web"].clone()]);
}
