//! The IAM part of the test estate, and a full description of IAM state for comparisons.

use anyhow::Context;
use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Account, REGION};

/// The tag that makes the moto launcher create a user's next access keys this many days old.
const KEY_AGE_TAG: &str = "contain-test:key-age-days";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IamEstate {
    pub account_id: String,
    /// A user with a console password and two access keys.
    pub user: String,
    /// Created 400 days ago and never used.
    pub stale_key: String,
    /// Used today.
    pub fresh_key: String,
    /// The role behind `instance_profile_arn`; its name differs from the profile's.
    pub profile_role: String,
    pub instance_profile_arn: String,
    pub saml_provider_arn: String,
    /// Roles whose trust policy lets the SAML provider's users in.
    pub federated_roles: Vec<String>,
    /// A role at a service-linked path that also trusts the SAML provider.
    pub service_linked_role: String,
    /// A role that trusts EC2 only.
    pub other_role: String,
}

fn trust_ec2() -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}).to_string()
}

fn trust_saml(provider_arn: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithSAML",
            "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}
        }]
    })
    .to_string()
}

/// Builds the IAM estate in the account of `account`.
pub async fn build_iam(account: &Account, endpoint: &str) -> anyhow::Result<IamEstate> {
    let config = account.sdk_config(endpoint).await;
    let iam = Client::new(&config);
    let user = "analyst".to_string();
    iam.create_user().user_name(&user).send().await.context("CreateUser")?;
    iam.create_login_profile().user_name(&user).password("correct-Horse-battery-9").send().await.context("CreateLoginProfile")?;

    let fresh = iam.create_access_key().user_name(&user).send().await.context("CreateAccessKey")?;
    let fresh = fresh.access_key().context("no access key")?.clone();
    iam.tag_user().user_name(&user).tags(Tag::builder().key(KEY_AGE_TAG).value("400").build()?).send().await.context("TagUser")?;
    let stale = iam.create_access_key().user_name(&user).send().await.context("CreateAccessKey")?;
    let stale_key = stale.access_key().context("no access key")?.access_key_id().to_string();
    iam.untag_user().user_name(&user).tag_keys(KEY_AGE_TAG).send().await.context("UntagUser")?;

    // Signing one request with the fresh key makes moto record its last use as now.
    let credentials = aws_sdk_sts::config::Credentials::new(fresh.access_key_id(), fresh.secret_access_key(), None, None, "contain-test-estate");
    let sts_config = aws_sdk_sts::config::Builder::from(&config).credentials_provider(credentials).region(aws_sdk_sts::config::Region::new(REGION)).build();
    aws_sdk_sts::Client::from_conf(sts_config).get_caller_identity().send().await.context("GetCallerIdentity with the fresh key")?;

    let profile_role = "web-app".to_string();
    iam.create_role().role_name(&profile_role).assume_role_policy_document(trust_ec2()).send().await.context("CreateRole")?;
    let profile = iam.create_instance_profile().instance_profile_name("web-profile").send().await.context("CreateInstanceProfile")?;
    let instance_profile_arn = profile.instance_profile().context("no instance profile")?.arn().to_string();
    iam.add_role_to_instance_profile().instance_profile_name("web-profile").role_name(&profile_role).send().await.context("AddRoleToInstanceProfile")?;

    let metadata = "<EntityDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"https://idp.example.com\"></EntityDescriptor>";
    let provider = iam.create_saml_provider().name("corp-idp").saml_metadata_document(metadata).send().await.context("CreateSAMLProvider")?;
    let saml_provider_arn = provider.saml_provider_arn().context("no provider ARN")?.to_string();

    let federated_roles = vec!["federated-admins".to_string(), "federated-readers".to_string()];
    for role in &federated_roles {
        iam.create_role().role_name(role).assume_role_policy_document(trust_saml(&saml_provider_arn)).max_session_duration(43200).send().await.context("CreateRole")?;
    }
    let service_linked_role = "AWSServiceRoleForFederation".to_string();
    iam.create_role()
        .role_name(&service_linked_role)
        .path("/aws-service-role/federation.example.com/")
        .assume_role_policy_document(trust_saml(&saml_provider_arn))
        .send()
        .await
        .context("CreateRole at a service-linked path")?;
    let other_role = "batch".to_string();
    iam.create_role().role_name(&other_role).assume_role_policy_document(trust_ec2()).send().await.context("CreateRole")?;

    Ok(IamEstate {
        account_id: account.account_id.clone(),
        user,
        stale_key,
        fresh_key: fresh.access_key_id().to_string(),
        profile_role,
        instance_profile_arn,
        saml_provider_arn,
        federated_roles,
        service_linked_role,
        other_role,
    })
}

fn decode(document: &str) -> Value {
    let text = if document.trim_start().starts_with('{') {
        document.to_string()
    } else {
        percent_encoding::percent_decode_str(document).decode_utf8_lossy().into_owned()
    };
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// Describes users (access keys with status, console password, inline policies with their
/// documents) and roles (trust policies, inline policies).
pub async fn describe_iam(iam: &Client) -> anyhow::Result<Value> {
    let mut users = Vec::new();
    for user in iam.list_users().send().await.context("ListUsers")?.users() {
        let name = user.user_name();
        let keys = iam.list_access_keys().user_name(name).send().await.context("ListAccessKeys")?;
        let mut keys: Vec<Value> = keys
            .access_key_metadata()
            .iter()
            .map(|k| json!({ "id": k.access_key_id(), "status": k.status().map(|s| s.as_str()) }))
            .collect();
        keys.sort_by_key(|k| k.to_string());
        let login_profile = iam.get_login_profile().user_name(name).send().await.is_ok();
        let mut policies = Vec::new();
        for policy in iam.list_user_policies().user_name(name).send().await.context("ListUserPolicies")?.policy_names() {
            let document = iam.get_user_policy().user_name(name).policy_name(policy).send().await.context("GetUserPolicy")?;
            policies.push(json!({ "name": policy, "document": decode(document.policy_document()) }));
        }
        users.push(json!({ "name": name, "access_keys": keys, "login_profile": login_profile, "inline_policies": policies }));
    }

    let mut roles = Vec::new();
    for role in iam.list_roles().send().await.context("ListRoles")?.roles() {
        let name = role.role_name();
        let full = iam.get_role().role_name(name).send().await.context("GetRole")?;
        let trust = full.role().and_then(|r| r.assume_role_policy_document()).map(decode).unwrap_or(Value::Null);
        let mut policies = Vec::new();
        for policy in iam.list_role_policies().role_name(name).send().await.context("ListRolePolicies")?.policy_names() {
            let document = iam.get_role_policy().role_name(name).policy_name(policy).send().await.context("GetRolePolicy")?;
            policies.push(json!({ "name": policy, "document": decode(document.policy_document()) }));
        }
        roles.push(json!({ "name": name, "path": role.path(), "trust_policy": trust, "inline_policies": policies }));
    }
    users.sort_by_key(|u| u.to_string());
    roles.sort_by_key(|r| r.to_string());
    Ok(json!({ "users": users, "roles": roles }))
}
