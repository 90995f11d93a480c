//! `snapshot` for `aws.ec2.instance`: snapshot every EBS volume of the instance as evidence,
//! tagged with the incident and run, and optionally shared with a forensic account. Rollback
//! never deletes evidence.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::{Filter, OperationType, ResourceType, SnapshotAttributeName, Tag, TagSpecification};
use contain_core::{Action, ActionError, ActionKind, Assessment, CallContext, ErrorKind, Operation, OptionProblem, Target, TargetPlan, is_template};
use serde_json::{Map, Value, json};

use crate::clients::ClientFactory;
use crate::errors::map_sdk_error;
use crate::tags;
use crate::target::INSTANCE;

const VOLUME_SNAPSHOT: &str = "ec2.volume_snapshot";
const SNAPSHOT_SHARE: &str = "ec2.snapshot_share";
const RUN_PLACEHOLDER: &str = "<this run's id>";
const OPTION_KEYS: &[&str] = &["incident", "share_with_account"];

pub(crate) struct SnapshotVolumes {
    factory: Arc<ClientFactory>,
}

impl SnapshotVolumes {
    pub(crate) fn new(factory: Arc<ClientFactory>) -> Self {
        SnapshotVolumes { factory }
    }
}

fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.chars().all(|c| c.is_ascii_digit())
}

/// Lists the accounts a snapshot is shared with.
async fn shared_with(ec2: &Client, snapshot_id: &str) -> Result<Vec<String>, ActionError> {
    let output = ec2
        .describe_snapshot_attribute()
        .snapshot_id(snapshot_id)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .map_err(|e| map_sdk_error("DescribeSnapshotAttribute", snapshot_id, e))?;
    Ok(output.create_volume_permissions().iter().filter_map(|p| p.user_id().map(str::to_string)).collect())
}

async fn share(ec2: &Client, snapshot_id: &str, account: &str) -> Result<(), ActionError> {
    ec2.modify_snapshot_attribute()
        .snapshot_id(snapshot_id)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .operation_type(OperationType::Add)
        .user_ids(account)
        .send()
        .await
        .map(drop)
        .map_err(|e| map_sdk_error("ModifySnapshotAttribute", snapshot_id, e))
}

/// Finds the evidence snapshot of a volume for an incident, if one exists.
async fn find_snapshot(ec2: &Client, volume_id: &str, incident: &str) -> Result<Option<String>, ActionError> {
    let output = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(Filter::builder().name("volume-id").values(volume_id).build())
        .filters(Filter::builder().name(format!("tag:{}", tags::INCIDENT)).values(incident).build())
        .send()
        .await
        .map_err(|e| map_sdk_error("DescribeSnapshots", volume_id, e))?;
    Ok(output.snapshots().iter().find_map(|s| s.snapshot_id().map(str::to_string)))
}

#[async_trait]
impl Action for SnapshotVolumes {
    fn kind(&self) -> ActionKind {
        ActionKind::Snapshot
    }

    fn resource_type(&self) -> &'static str {
        INSTANCE
    }

    fn option_names(&self) -> Vec<&'static str> {
        OPTION_KEYS.to_vec()
    }

    fn check_options(&self, options: &Map<String, Value>) -> Vec<OptionProblem> {
        let mut problems: Vec<OptionProblem> = options
            .iter()
            .filter_map(|(key, value)| {
                let message = match key.as_str() {
                    _ if is_template(value) && OPTION_KEYS.contains(&key.as_str()) => return None,
                    "incident" if !value.is_string() => format!("`incident` must be a string, found {value}"),
                    "share_with_account" if !value.as_str().is_some_and(is_account_id) => format!("`share_with_account` must be a 12-digit account id, found {value}"),
                    "incident" | "share_with_account" => return None,
                    _ => format!("unknown option `{key}` for snapshot on aws.ec2.instance: valid options are {}", OPTION_KEYS.join(", ")),
                };
                Some(OptionProblem { key: Some(key.clone()), message })
            })
            .collect();
        if !options.contains_key("incident") {
            problems.push(OptionProblem { key: None, message: "snapshot needs `incident`, which tags the evidence and finds it again on a re-run".into() });
        }
        problems
    }

    async fn inspect(&self, context: &CallContext, target: &Target) -> Result<Value, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        let output = ec2.describe_instances().instance_ids(&target.id).send().await.map_err(|e| map_sdk_error("DescribeInstances", &target.id, e))?;
        let instance = output
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .ok_or_else(|| ActionError::new(ErrorKind::NotFound, format!("instance {} not found", target.id)).with_resource(&target.id))?;
        let volumes: Vec<Value> = instance
            .block_device_mappings()
            .iter()
            .filter_map(|m| Some(json!({ "device": m.device_name(), "volume_id": m.ebs()?.volume_id()? })))
            .collect();
        let mut existing = Map::new();
        for volume in &volumes {
            let volume_id = volume["volume_id"].as_str().unwrap_or_default();
            let tagged = ec2
                .describe_snapshots()
                .owner_ids("self")
                .filters(Filter::builder().name("volume-id").values(volume_id).build())
                .filters(Filter::builder().name("tag-key").values(tags::INCIDENT).build())
                .send()
                .await
                .map_err(|e| map_sdk_error("DescribeSnapshots", volume_id, e))?;
            let mut by_incident: Vec<Value> = Vec::new();
            for snapshot in tagged.snapshots() {
                let incident = snapshot.tags().iter().find(|t| t.key() == Some(tags::INCIDENT)).and_then(|t| t.value());
                let snapshot_id = snapshot.snapshot_id().unwrap_or_default();
                by_incident.push(json!({ "snapshot_id": snapshot_id, "incident": incident, "shared_with": shared_with(ec2, snapshot_id).await? }));
            }
            existing.insert(volume_id.to_string(), Value::Array(by_incident));
        }
        Ok(json!({ "instance_id": target.id, "volumes": volumes, "snapshots": existing }))
    }

    fn plan(&self, target: &Target, options: &Map<String, Value>, state: &Value) -> Result<TargetPlan, ActionError> {
        let incident = options.get("incident").and_then(Value::as_str).ok_or_else(|| ActionError::new(ErrorKind::Invalid, "snapshot needs `incident`"))?;
        let share = options.get("share_with_account").and_then(Value::as_str);
        if share.is_some_and(|s| !is_account_id(s)) {
            return Err(ActionError::new(ErrorKind::Invalid, format!("`share_with_account` must be a 12-digit account id, found {share:?}")));
        }

        let mut operations = Vec::new();
        let mut notes = Vec::new();
        for volume in state["volumes"].as_array().into_iter().flatten() {
            let volume_id = volume["volume_id"].as_str().unwrap_or_default();
            let existing = state["snapshots"][volume_id].as_array().into_iter().flatten().find(|s| s["incident"] == incident);
            if let Some(existing) = existing {
                let snapshot_id = existing["snapshot_id"].as_str().unwrap_or("?");
                notes.push(format!("volume {volume_id} already has evidence snapshot {snapshot_id} for {incident}"));
                let shared = existing["shared_with"].as_array().is_some_and(|a| a.iter().any(|v| v.as_str() == share));
                if let (Some(account), false) = (share, shared) {
                    operations.push(Operation {
                        id: format!("share:{snapshot_id}"),
                        kind: SNAPSHOT_SHARE.into(),
                        subject: snapshot_id.to_string(),
                        description: format!("share the existing evidence snapshot {snapshot_id} with account {account}"),
                        prior: json!({ "shared": false }),
                        desired: json!({ "shared": true, "account": account }),
                        reversible: true,
                    });
                }
                continue;
            }
            let sharing = share.map(|account| format!(", shared with account {account}")).unwrap_or_default();
            operations.push(Operation {
                id: format!("snapshot:{volume_id}"),
                kind: VOLUME_SNAPSHOT.into(),
                subject: volume_id.to_string(),
                description: format!("snapshot volume {volume_id} ({}) of {} as evidence{sharing}", volume["device"].as_str().unwrap_or("?"), target.id),
                prior: json!({ "snapshot": null }),
                desired: json!({ "snapshot": "<created by this run>", "incident": incident, "run": RUN_PLACEHOLDER, "share_with_account": share }),
                reversible: true,
            });
        }
        if state["volumes"].as_array().is_none_or(Vec::is_empty) {
            notes.push(format!("{} has no EBS volume: nothing to snapshot", target.id));
        } else if operations.is_empty() {
            notes.insert(0, format!("already done: every volume of {} has an evidence snapshot for {incident}", target.id));
        }
        notes.push("rollback never deletes evidence: the snapshots stay, and the run report lists them".into());
        Ok(TargetPlan { state: state.clone(), operations, notes, outputs: Map::new(), uncontainable: None, missing_permissions: Vec::new() })
    }

    fn bind(&self, context: &CallContext, operation: &Operation, _earlier: &[(Operation, Value)]) -> Operation {
        let mut bound = operation.clone();
        if bound.desired["run"] == RUN_PLACEHOLDER {
            bound.desired["run"] = json!(context.run_id);
        }
        bound
    }

    fn assess(&self, operation: &Operation, current: &Value, applied: Option<&Value>) -> Assessment {
        if operation.kind == SNAPSHOT_SHARE {
            return if current["shared"] == true { Assessment::Applied } else { Assessment::Prior };
        }
        match (current["snapshot"].is_null(), applied) {
            (true, _) => Assessment::Prior,
            (false, None) => Assessment::Applied,
            (false, Some(applied)) if applied["snapshot"] == current["snapshot"] => Assessment::Applied,
            (false, Some(_)) => operation.assess_exact(current, applied),
        }
    }

    async fn preflight(&self, context: &CallContext, target: &Target, plan: &TargetPlan) -> Result<Vec<String>, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        let mut missing = Vec::new();
        for operation in plan.operations.iter().filter(|o| o.kind == VOLUME_SNAPSHOT) {
            let request = ec2.create_snapshot().volume_id(&operation.subject).dry_run(true);
            missing.extend(crate::preflight::dry_run_answer("CreateSnapshot", &operation.subject, request.send().await));
        }
        Ok(missing)
    }

    async fn read(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        if operation.kind == SNAPSHOT_SHARE {
            let account = operation.desired["account"].as_str().unwrap_or_default();
            return Ok(json!({ "shared": shared_with(ec2, &operation.subject).await?.iter().any(|a| a == account) }));
        }
        let incident = operation.desired["incident"].as_str().unwrap_or_default();
        // The evidence list lets the incident record name a snapshot that a crash left without
        // an outcome record, from the value reconciliation read.
        let snapshot = find_snapshot(ec2, &operation.subject, incident).await?;
        Ok(json!({ "snapshot": snapshot, "evidence": snapshot.iter().collect::<Vec<_>>() }))
    }

    async fn apply(&self, context: &CallContext, target: &Target, operation: &Operation) -> Result<Value, ActionError> {
        let ec2 = &self.factory.for_target(context, target).await?.ec2;
        if operation.kind == SNAPSHOT_SHARE {
            share(ec2, &operation.subject, operation.desired["account"].as_str().unwrap_or_default()).await?;
            return Ok(json!({ "shared": true, "evidence": [operation.subject] }));
        }
        let incident = operation.desired["incident"].as_str().unwrap_or_default();
        let run = operation.desired["run"].as_str().unwrap_or_default();
        let created = ec2
            .create_snapshot()
            .volume_id(&operation.subject)
            .description(format!("contain evidence of {} for {incident}, run {run}", target.id))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .tags(Tag::builder().key(tags::INCIDENT).value(incident).build())
                    .tags(Tag::builder().key(tags::RUN).value(run).build())
                    .tags(Tag::builder().key(tags::MANAGED).value("evidence").build())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| map_sdk_error("CreateSnapshot", &operation.subject, e))?;
        let snapshot_id = created.snapshot_id().unwrap_or_default().to_string();

        if let Some(account) = operation.desired["share_with_account"].as_str() {
            // NOTE: EC2 shares a snapshot only once it is completed; moto 5.2.5 completes
            // snapshots at once, so the wait for completion is not exercised by the tests.
            ec2.wait_until_snapshot_completed()
                .snapshot_ids(&snapshot_id)
                .wait(std::time::Duration::from_secs(3600))
                .await
                .map_err(|e| ActionError::new(ErrorKind::Transient, format!("snapshot {snapshot_id} did not complete: {e}")).with_resource(&snapshot_id))?;
            share(ec2, &snapshot_id, account).await?;
        }
        tracing::info!(snapshot_id = %snapshot_id, volume = %operation.subject, "evidence snapshot created");
        Ok(json!({ "snapshot": snapshot_id, "evidence": [snapshot_id] }))
    }

    async fn revert(&self, _context: &CallContext, _target: &Target, operation: &Operation, applied: &Value) -> Result<Vec<String>, ActionError> {
        if operation.kind == SNAPSHOT_SHARE {
            return Ok(vec![format!("kept evidence snapshot {} shared with account {}: rollback never withdraws evidence", operation.subject, operation.desired["account"].as_str().unwrap_or("?"))]);
        }
        Ok(vec![format!("kept evidence snapshot {}: rollback never deletes evidence", applied["snapshot"].as_str().unwrap_or("?"))])
    }
}
