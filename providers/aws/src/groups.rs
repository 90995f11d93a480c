//! The security groups contain creates per VPC: the isolation group (no rules at all) and the
//! allow-all group (all traffic in and out, which makes flows untracked).

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroup, Tag, TagSpecification};
use contain_core::{ActionError, ErrorKind};

use crate::clients::Clients;
use crate::errors::map_sdk_error;
use crate::reads::SharedReads;
use crate::tags;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum GroupRole {
    /// No inbound and no outbound rule.
    Isolation,
    /// Every protocol from and to 0.0.0.0/0 and ::/0.
    AllowAll,
}

impl GroupRole {
    /// The `contain:managed` tag value.
    pub(crate) fn tag_value(self) -> &'static str {
        match self {
            GroupRole::Isolation => "isolation-group",
            GroupRole::AllowAll => "allow-all-group",
        }
    }

    /// The name reviewers read in plans.
    pub(crate) fn label(self) -> &'static str {
        match self {
            GroupRole::Isolation => "isolation group",
            GroupRole::AllowAll => "allow-all group",
        }
    }

    pub(crate) fn group_name(self, vpc_id: &str) -> String {
        match self {
            GroupRole::Isolation => format!("contain-isolation-{vpc_id}"),
            GroupRole::AllowAll => format!("contain-allow-all-{vpc_id}"),
        }
    }

    fn description(self) -> &'static str {
        match self {
            GroupRole::Isolation => "contain isolation group: no inbound or outbound rules",
            GroupRole::AllowAll => "contain allow-all group: held for one call so tracked connections become untracked",
        }
    }
}

/// Finds the contain group of `role` in a VPC. A group with contain's name but without contain's
/// tag is an error: contain never adopts a group it did not make.
pub(crate) async fn find_group(ec2: &Client, vpc_id: &str, role: GroupRole) -> Result<Option<String>, ActionError> {
    let name = role.group_name(vpc_id);
    let output = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .filters(Filter::builder().name("group-name").values(&name).build())
        .send()
        .await
        .map_err(|e| map_sdk_error("DescribeSecurityGroups", vpc_id, e))?;
    pick_group(output.security_groups(), vpc_id, role)
}

/// Finds the contain group of `role` in a VPC as [`find_group`] does, in a describe call shared
/// with the run's other targets.
pub(crate) async fn find_group_shared(reads: &SharedReads, vpc_id: &str, role: GroupRole) -> Result<Option<String>, ActionError> {
    let groups = reads.contain_groups.get(vpc_id).await?.unwrap_or_default();
    pick_group(&groups, vpc_id, role)
}

fn pick_group(groups: &[SecurityGroup], vpc_id: &str, role: GroupRole) -> Result<Option<String>, ActionError> {
    let name = role.group_name(vpc_id);
    let Some(group) = groups.iter().find(|g| g.group_name() == Some(name.as_str()) && g.vpc_id() == Some(vpc_id)) else {
        return Ok(None);
    };
    let group_id = group.group_id().unwrap_or_default().to_string();
    let tagged = group.tags().iter().any(|t| t.key() == Some(tags::MANAGED) && t.value() == Some(role.tag_value()));
    if !tagged {
        return Err(ActionError::new(
            ErrorKind::Precondition,
            format!(
                "security group {group_id} in {vpc_id} is named {name} but has no {}={} tag, so contain did not make it: rename or delete it, then plan again",
                tags::MANAGED,
                role.tag_value()
            ),
        )
        .with_resource(group_id));
    }
    Ok(Some(group_id))
}

/// One lock per VPC and group role, so that the targets of one VPC changed at once ensure its
/// group one after the other: the first creates it, the others find it, instead of each racing
/// to create it. Other processes still race, which the `InvalidGroup.Duplicate` case handles.
static ENSURING: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>> =
    std::sync::LazyLock::new(Default::default);

/// Finds or creates the contain group of `role` in a VPC and makes its rules exactly what the
/// role requires. Returns the group id and whether this call created it. Once the run has
/// ensured a VPC's group, its other targets use it without reading it again.
///
/// NOTE: a rule someone adds to the group during the run is not removed for the run's later
/// targets; the next run removes it.
pub(crate) async fn ensure_group(clients: &Clients, vpc_id: &str, role: GroupRole) -> Result<(String, bool), ActionError> {
    if let Some(group_id) = clients.reads.ensured(vpc_id, role) {
        return Ok((group_id, false));
    }
    let lock = ENSURING.lock().expect("group locks").entry(format!("{vpc_id}/{}", role.tag_value())).or_default().clone();
    let _serialized = lock.lock().await;
    if let Some(group_id) = clients.reads.ensured(vpc_id, role) {
        return Ok((group_id, false));
    }
    let ec2 = &clients.ec2;
    let (group_id, created) = match find_group(ec2, vpc_id, role).await? {
        Some(group_id) => (group_id, false),
        None => match create_group(ec2, vpc_id, role).await {
            Ok(group_id) => (group_id, true),
            // Another run created it between the look-up and the create.
            Err(e) if e.code.as_deref() == Some("InvalidGroup.Duplicate") => {
                let found = find_group(ec2, vpc_id, role).await?;
                (found.ok_or(e)?, false)
            }
            Err(e) => return Err(e),
        },
    };

    match role {
        GroupRole::Isolation => remove_all_rules(ec2, &group_id).await?,
        GroupRole::AllowAll => add_allow_all_rules(ec2, &group_id).await?,
    }
    clients.reads.remember_ensured(vpc_id, role, &group_id);
    Ok((group_id, created))
}

async fn create_group(ec2: &Client, vpc_id: &str, role: GroupRole) -> Result<String, ActionError> {
    let output = ec2
        .create_security_group()
        .group_name(role.group_name(vpc_id))
        .description(role.description())
        .vpc_id(vpc_id)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SecurityGroup)
                .tags(Tag::builder().key(tags::MANAGED).value(role.tag_value()).build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| map_sdk_error("CreateSecurityGroup", vpc_id, e))?;
    let group_id = output.group_id().unwrap_or_default().to_string();
    tracing::info!(group_id = %group_id, vpc_id, role = role.tag_value(), "created security group");
    Ok(group_id)
}

/// Removes every inbound and outbound rule, including the allow-all egress rule a new group has.
async fn remove_all_rules(ec2: &Client, group_id: &str) -> Result<(), ActionError> {
    let group = describe_group(ec2, group_id).await?;
    if !group.ip_permissions().is_empty() {
        ec2.revoke_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(group.ip_permissions().to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_sdk_error("RevokeSecurityGroupIngress", group_id, e))
            .or_else(|e| raced(e, "InvalidPermission.NotFound"))?;
    }
    if !group.ip_permissions_egress().is_empty() {
        ec2.revoke_security_group_egress()
            .group_id(group_id)
            .set_ip_permissions(Some(group.ip_permissions_egress().to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_sdk_error("RevokeSecurityGroupEgress", group_id, e))
            .or_else(|e| raced(e, "InvalidPermission.NotFound"))?;
    }
    Ok(())
}

/// Adds the all-traffic rules from and to 0.0.0.0/0 and ::/0 that are missing.
async fn add_allow_all_rules(ec2: &Client, group_id: &str) -> Result<(), ActionError> {
    let group = describe_group(ec2, group_id).await?;
    let missing = |rules: &[IpPermission]| -> Option<IpPermission> {
        let all_traffic = rules.iter().filter(|r| r.ip_protocol() == Some("-1"));
        let has_v4 = all_traffic.clone().any(|r| r.ip_ranges().iter().any(|x| x.cidr_ip() == Some("0.0.0.0/0")));
        let has_v6 = all_traffic.clone().any(|r| r.ipv6_ranges().iter().any(|x| x.cidr_ipv6() == Some("::/0")));
        if has_v4 && has_v6 {
            return None;
        }
        let mut rule = IpPermission::builder().ip_protocol("-1");
        if !has_v4 {
            rule = rule.ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build());
        }
        if !has_v6 {
            rule = rule.ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build());
        }
        Some(rule.build())
    };

    if let Some(rule) = missing(group.ip_permissions()) {
        ec2.authorize_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(rule)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_sdk_error("AuthorizeSecurityGroupIngress", group_id, e))
            .or_else(|e| raced(e, "InvalidPermission.Duplicate"))?;
    }
    if let Some(rule) = missing(group.ip_permissions_egress()) {
        ec2.authorize_security_group_egress()
            .group_id(group_id)
            .ip_permissions(rule)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_sdk_error("AuthorizeSecurityGroupEgress", group_id, e))
            .or_else(|e| raced(e, "InvalidPermission.Duplicate"))?;
    }
    Ok(())
}

/// Accepts the error that reports another target already made the same rule change: two targets
/// in one VPC ensure the same group at once.
fn raced(error: ActionError, code: &str) -> Result<(), ActionError> {
    if error.code.as_deref() == Some(code) { Ok(()) } else { Err(error) }
}

async fn describe_group(ec2: &Client, group_id: &str) -> Result<aws_sdk_ec2::types::SecurityGroup, ActionError> {
    let output = ec2
        .describe_security_groups()
        .group_ids(group_id)
        .send()
        .await
        .map_err(|e| map_sdk_error("DescribeSecurityGroups", group_id, e))?;
    output
        .security_groups()
        .first()
        .cloned()
        .ok_or_else(|| ActionError::new(ErrorKind::NotFound, format!("security group {group_id} not found")).with_resource(group_id))
}

/// True when `group_id` is the contain group of `role`, by its tag.
pub(crate) async fn is_contain_group(reads: &SharedReads, group_id: &str, role: GroupRole) -> Result<bool, ActionError> {
    let Some(group) = reads.groups.get(group_id).await? else {
        return Ok(false);
    };
    Ok(group.tags().iter().any(|t| t.key() == Some(tags::MANAGED) && t.value() == Some(role.tag_value())))
}

/// The result of [`delete_if_unused`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cleanup {
    Deleted,
    AlreadyGone,
    /// Kept because these interfaces still use it (another run's isolation, for example).
    InUse(Vec<String>),
}

/// Deletes a contain group once no network interface uses it.
pub(crate) async fn delete_if_unused(ec2: &Client, group_id: &str) -> Result<Cleanup, ActionError> {
    let users = ec2
        .describe_network_interfaces()
        .filters(Filter::builder().name("group-id").values(group_id).build())
        .send()
        .await
        .map_err(|e| map_sdk_error("DescribeNetworkInterfaces", group_id, e))?;
    let in_use: Vec<String> = users
        .network_interfaces()
        .iter()
        .filter_map(|eni| eni.network_interface_id().map(str::to_string))
        .collect();
    if !in_use.is_empty() {
        return Ok(Cleanup::InUse(in_use));
    }

    match ec2.delete_security_group().group_id(group_id).send().await {
        Ok(_) => {
            tracing::info!(group_id, "deleted security group that contain made");
            Ok(Cleanup::Deleted)
        }
        Err(e) => {
            let error = map_sdk_error("DeleteSecurityGroup", group_id, e);
            if error.kind == ErrorKind::NotFound { Ok(Cleanup::AlreadyGone) } else { Err(error) }
        }
    }
}
