//! Two runs that would change the same target at once: the second is refused, naming the run
//! that locked the target, and the target is free again when the first run ends.

use std::time::{Duration, Instant};

use contain_e2e::{EC2_PLAYBOOK, Harness};
use contain_test_estate::{Fault, FaultProxy};

#[tokio::test]
async fn second_run_on_a_locked_target() {
    let harness = Harness::new().await;
    let proxy = FaultProxy::start(&harness.endpoint).await.unwrap();
    // Slow the first run's interface moves so that it is still running when the second starts.
    proxy.add_fault(Fault::delay("ModifyNetworkInterfaceAttribute", 10_000));
    let instance = format!("instance={}", harness.estate.single.instance_id);

    std::thread::scope(|scope| {
        let first = scope.spawn(|| harness.contain_via(&proxy.url, &["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-L1", "--yes", "-o", "json"]));

        let started = Instant::now();
        while harness.run_ids().is_empty() {
            assert!(started.elapsed() < Duration::from_secs(30), "the first run never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        let holder = harness.run_ids()[0].clone();

        let second = harness.contain(&["run", EC2_PLAYBOOK, "-i", &instance, "-i", "incident=INC-L2", "--yes"]);
        assert_eq!(second.code, 1, "{}{}", second.stdout, second.stderr);
        assert!(second.stderr.contains(&format!("is being changed by run {holder}")), "{}", second.stderr);
        assert_eq!(harness.run_ids(), [holder.clone()], "the refused run wrote no journal");

        let first = first.join().unwrap();
        assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    });

    // The first run ended, so its rollback (another process) takes the locks at once.
    let run_id = harness.run_ids()[0].clone();
    let rollback = harness.contain(&["rollback", &run_id, "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
}
