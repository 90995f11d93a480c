//! Target selectors for `aws.ec2.instance`: instances by tag, VPC or subnet.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Filter;
use contain_core::{ActionError, OptionProblem, Target, is_template};
use serde_json::{Map, Value};

use crate::errors::map_sdk_error;
use crate::target::INSTANCE;

const KEYS: &[&str] = &["tags", "vpc", "subnet"];

pub(crate) fn check_instance_selector(filters: &Map<String, Value>) -> Vec<OptionProblem> {
    let mut problems = Vec::new();
    for (key, value) in filters {
        let message = match key.as_str() {
            _ if is_template(value) => continue,
            "tags" => match value.as_object() {
                Some(tags) if !tags.is_empty() && tags.values().all(|v| v.is_string() || is_template(v)) => continue,
                _ => format!("`tags` must be a mapping of tag keys to string values, such as {{ compromised: \"true\" }}, found {value}"),
            },
            "vpc" | "subnet" if value.is_string() => continue,
            "vpc" | "subnet" => format!("`{key}` must be an id string, found {value}"),
            _ => format!("unknown selector key `{key}` for aws.ec2.instance: valid keys are {}", KEYS.join(", ")),
        };
        problems.push(OptionProblem { key: Some(key.clone()), message });
    }
    if filters.is_empty() {
        problems.push(OptionProblem { key: None, message: format!("the selector has no filter: give at least one of {}", KEYS.join(", ")) });
    }
    problems
}

/// Lists the instances, not terminated, that match every filter.
pub(crate) async fn select_instances(ec2: &Client, filters: &Map<String, Value>) -> Result<Vec<Target>, ActionError> {
    let mut request = ec2
        .describe_instances()
        .filters(Filter::builder().name("instance-state-name").values("pending").values("running").values("stopping").values("stopped").build());
    if let Some(tags) = filters.get("tags").and_then(Value::as_object) {
        for (key, value) in tags {
            request = request.filters(Filter::builder().name(format!("tag:{key}")).values(value.as_str().unwrap_or_default()).build());
        }
    }
    if let Some(vpc) = filters.get("vpc").and_then(Value::as_str) {
        request = request.filters(Filter::builder().name("vpc-id").values(vpc).build());
    }
    if let Some(subnet) = filters.get("subnet").and_then(Value::as_str) {
        request = request.filters(Filter::builder().name("subnet-id").values(subnet).build());
    }

    let mut targets = Vec::new();
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| map_sdk_error("DescribeInstances", "the selector", e))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            if let Some(id) = instance.instance_id() {
                targets.push(Target { resource_type: INSTANCE.to_string(), id: id.to_string(), region: None, account: None });
            }
        }
    }
    targets.sort();
    Ok(targets)
}
