//! Guard rails checked while planning: resources contain must never change, and changes that
//! would lock contain out half-way through a containment.

use contain_core::{ActionKind, Target, TargetPlan};

/// The guard rails of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    /// Resource ids or ARNs contain must never change: the responders' bastion, the break-glass
    /// role, the SOAR host.
    pub protected: Vec<String>,
    /// The id of the instance contain runs on, when configured.
    pub own_instance: Option<String>,
    /// Lets a plan revoke contain's own identity or isolate its own instance.
    pub allow_self_lockout: bool,
}

impl Guard {
    /// Returns why the guard refuses a change to `target` by an action of `kind`, if it does.
    /// `own` lists the resources behind the identities contain runs as. `plan` is `None` before
    /// the target is inspected; after, the subjects of its operations are checked too.
    pub(crate) fn refusal(&self, kind: ActionKind, target: &Target, plan: Option<&TargetPlan>, own: &[Target]) -> Option<String> {
        // A subject names its resource as `<kind> <id>` (`role web-role`) or as the bare id. A
        // target given as something else, such as an instance profile, changes the resources
        // its subjects name, so those are checked too.
        let subjects: Vec<&str> = plan.map(|p| p.operations.iter().flat_map(|o| o.subject.split_whitespace()).collect()).unwrap_or_default();
        let names = |entry: &str| names_resource(entry, &target.id) || subjects.iter().any(|s| names_resource(entry, s));

        if let Some(entry) = self.protected.iter().find(|entry| names(entry)) {
            return Some(format!(
                "{target} is protected by the configuration (guard.protected lists {entry}): contain never changes it; remove the step's target, or the entry if it is wrong"
            ));
        }
        if self.allow_self_lockout {
            return None;
        }

        let touches = |own: &Target| {
            own.resource_type == target.resource_type
                && (own.id == target.id || subjects.contains(&own.id.as_str()))
                && (own.account.is_none() || target.account.is_none() || own.account == target.account)
        };
        if kind == ActionKind::Revoke {
            if let Some(own) = own.iter().find(|own| touches(own)) {
                return Some(format!(
                    "contain runs as {} {}, so revoking it would cut contain off half-way through this containment: run contain as another identity, or pass --allow-self-lockout if that is intended",
                    own.resource_type, own.id
                ));
            }
        }
        if kind == ActionKind::Isolate && self.own_instance.as_deref() == Some(target.id.as_str()) {
            return Some(format!(
                "{target} is the instance contain runs on (guard.own_instance_id), so isolating it would cut contain off half-way: run contain elsewhere, or pass --allow-self-lockout if that is intended"
            ));
        }
        None
    }
}

/// True when a configured entry names the resource `id`: the same id, or an ARN whose last
/// part is the id (`arn:aws:iam::123456789012:role/break-glass` names `break-glass`).
fn names_resource(entry: &str, id: &str) -> bool {
    entry == id || (entry.starts_with("arn:") && (entry.ends_with(&format!("/{id}")) || entry.ends_with(&format!(":{id}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(resource_type: &str, id: &str) -> Target {
        Target { resource_type: resource_type.into(), id: id.into(), region: None, account: Some("123456789012".into()) }
    }

    #[test]
    fn protected_by_id_or_arn() {
        let guard = Guard { protected: vec!["i-0bastion".into(), "arn:aws:iam::123456789012:role/break-glass".into()], ..Guard::default() };
        let bastion = guard.refusal(ActionKind::Isolate, &target("aws.ec2.instance", "i-0bastion"), None, &[]);
        assert!(bastion.is_some_and(|m| m.contains("guard.protected lists i-0bastion")));
        assert!(guard.refusal(ActionKind::Revoke, &target("aws.iam.role", "break-glass"), None, &[]).is_some());
        assert_eq!(guard.refusal(ActionKind::Revoke, &target("aws.iam.role", "glass"), None, &[]), None);
    }

    /// A role reached through an instance profile is guarded as the role.
    #[test]
    fn guarded_through_instance_profile() {
        let profile = target("aws.iam.role", "arn:aws:iam::123456789012:instance-profile/web-profile");
        let plan = TargetPlan {
            state: serde_json::Value::Null,
            operations: vec![contain_core::Operation {
                id: "inline-policy".into(),
                kind: "iam.inline_policy".into(),
                subject: "role web-role".into(),
                description: "revoke the sessions of role web-role".into(),
                prior: serde_json::Value::Null,
                desired: serde_json::Value::Null,
                reversible: true,
            }],
            notes: Vec::new(),
            outputs: Default::default(),
            uncontainable: None,
            missing_permissions: Vec::new(),
        };
        let protected = Guard { protected: vec!["arn:aws:iam::123456789012:role/web-role".into()], ..Guard::default() };
        assert_eq!(protected.refusal(ActionKind::Revoke, &profile, None, &[]), None, "the profile itself is not listed");
        let refused = protected.refusal(ActionKind::Revoke, &profile, Some(&plan), &[]);
        assert!(refused.is_some_and(|m| m.contains("guard.protected lists arn:aws:iam::123456789012:role/web-role")));

        let own = [target("aws.iam.role", "web-role")];
        let lockout = Guard::default().refusal(ActionKind::Revoke, &profile, Some(&plan), &own);
        assert!(lockout.is_some_and(|m| m.contains("contain runs as aws.iam.role web-role")));
    }

    #[test]
    fn self_lockout() {
        let own = [target("aws.iam.role", "responder")];
        let guard = Guard { own_instance: Some("i-0self".into()), ..Guard::default() };
        assert!(guard.refusal(ActionKind::Revoke, &target("aws.iam.role", "responder"), None, &own).is_some());
        assert!(guard.refusal(ActionKind::Isolate, &target("aws.ec2.instance", "i-0self"), None, &own).is_some());
        // Keeping evidence of its own instance does not lock contain out.
        assert_eq!(guard.refusal(ActionKind::Snapshot, &target("aws.ec2.instance", "i-0self"), None, &own), None);

        let forced = Guard { allow_self_lockout: true, ..guard };
        assert_eq!(forced.refusal(ActionKind::Revoke, &target("aws.iam.role", "responder"), None, &own), None);
    }
}
