//! The Azure Resource Manager side of the fake: routing, reads and writes.

pub(crate) mod operations;
pub(crate) mod resources;

use serde_json::{Value, json};

use crate::http::{Reply, Req, arm_error};
use crate::state::{Change, State};
use operations::{PendingWrite, check_lock, new_etag};
use resources::{Kind, array_of, kind_of, normalize, stamp, view};

/// A parsed ARM path: `/subscriptions/{s}[/resourceGroups/{rg}]/providers/{namespace}/{rest...}`.
pub(crate) struct ArmPath {
    pub subscription: String,
    pub resource_group: Option<String>,
    pub namespace: String,
    /// Segments after the namespace: type, name, child type, child name, ...
    pub rest: Vec<String>,
}

impl ArmPath {
    pub fn parse(segments: &[String]) -> Option<ArmPath> {
        if segments.len() < 4 || !segments[0].eq_ignore_ascii_case("subscriptions") {
            return None;
        }
        let subscription = segments[1].clone();
        let (resource_group, next) = if segments[2].eq_ignore_ascii_case("resourceGroups") {
            (Some(segments.get(3)?.clone()), 4)
        } else {
            (None, 2)
        };
        if !segments.get(next)?.eq_ignore_ascii_case("providers") {
            return None;
        }
        Some(ArmPath {
            subscription,
            resource_group,
            namespace: segments.get(next + 1)?.clone(),
            rest: segments[next + 2..].to_vec(),
        })
    }

    /// Returns the id of the top-level resource, `rest[0]` and `rest[1]`.
    pub fn top_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}/{}/{}",
            self.subscription,
            self.resource_group.as_deref().unwrap_or_default(),
            self.namespace,
            self.rest[0],
            self.rest[1]
        )
    }
}

/// Handles one ARM request that already passed the token check.
pub(crate) fn handle(state: &mut State, req: &Req) -> Reply {
    let Some(api_version) = req.query_param("api-version") else {
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    };
    let segments = req.segments();
    let Some(path) = ArmPath::parse(&segments) else {
        return arm_error(
            404,
            "InvalidResourceType",
            format!("The fake does not serve the path {}.", req.path),
        );
    };
    let method = req.method.as_str();
    match (path.resource_group.is_some(), path.rest.len(), method) {
        (false, 4, "GET") if path.rest[0].eq_ignore_ascii_case("locations") => {
            poll_operation(state, req, &path)
        }
        (false, 1, "GET") => list_top(state, &path),
        (true, 1, "GET") => list_top(state, &path),
        (true, 2, _) => top_level(state, req, &path, &api_version),
        (true, 3, "GET") => list_children(state, &path),
        (true, 3, "POST") => action(state, &path),
        (true, 4, _) => child(state, req, &path, &api_version),
        _ => arm_error(
            405,
            "MethodNotAllowed",
            format!("The fake does not support {method} on {}.", req.path),
        ),
    }
}

fn poll_operation(state: &mut State, req: &Req, path: &ArmPath) -> Reply {
    let operation_id = &path.rest[3];
    if path.rest[2].eq_ignore_ascii_case("operations") {
        return operations::status(state, operation_id);
    }
    if path.rest[2].eq_ignore_ascii_case("operationResults") {
        let own_url = format!("{}{}?{}", state.base_url, req.path, req.query);
        return operations::result(state, operation_id, own_url);
    }
    arm_error(
        404,
        "InvalidResourceType",
        format!("The fake does not serve the path {}.", req.path),
    )
}

fn resource_not_found(path: &ArmPath) -> Reply {
    arm_error(
        404,
        "ResourceNotFound",
        format!(
            "The Resource '{}/{}/{}' under resource group '{}' was not found.",
            path.namespace,
            path.rest[0],
            path.rest[1],
            path.resource_group.as_deref().unwrap_or_default()
        ),
    )
}

/// Compares `If-Match` with the current etag; `*` matches any existing resource.
fn check_if_match(req: &Req, current_etag: Option<&str>, id: &str) -> Result<(), Reply> {
    let Some(expected) = req.header("if-match") else {
        return Ok(());
    };
    let matches = match current_etag {
        Some(current) => expected.trim() == "*" || expected.trim() == current,
        None => false,
    };
    if matches {
        return Ok(());
    }
    Err(arm_error(
        412,
        "PreconditionFailed",
        format!(
            "The condition specified using HTTP conditional header(s) is not met. If-Match {expected} does not match the etag {} of {id}.",
            current_etag.unwrap_or("(the resource does not exist)")
        ),
    ))
}

fn etag_of(body: &Value) -> Option<&str> {
    body.get("etag").and_then(Value::as_str)
}

fn with_etag_header(reply: Reply, body: &Value) -> Reply {
    match etag_of(body) {
        Some(etag) => {
            let etag = etag.to_string();
            reply.with_header("ETag", etag)
        }
        None => reply,
    }
}

fn write_headers(
    reply: Reply,
    urls: &operations::OperationUrls,
    is_delete: bool,
    retry_after: u64,
) -> Reply {
    let reply = reply
        .with_header("Azure-AsyncOperation", urls.async_operation.clone())
        .with_header("Retry-After", retry_after.to_string());
    if is_delete {
        reply.with_header("Location", urls.location.clone())
    } else {
        reply
    }
}

fn location_of(body: &Value) -> String {
    body.get("location")
        .and_then(Value::as_str)
        .unwrap_or("westus")
        .to_string()
}

fn top_level(state: &mut State, req: &Req, path: &ArmPath, api_version: &str) -> Reply {
    let (kind, type_name) = kind_of(&path.namespace, &path.rest[0]);
    let requested_id = path.top_id();
    let key = requested_id.to_ascii_lowercase();
    match req.method.as_str() {
        "GET" => match state.arm.get(&key) {
            Some(stored) => with_etag_header(Reply::json(200, view(&state.arm, stored)), stored),
            None => resource_not_found(path),
        },
        "PUT" | "PATCH" | "DELETE" if kind == Kind::VirtualMachine => arm_error(
            405,
            "MethodNotAllowed",
            "The fake serves virtual machines read-only; seed them with FakeAzure::insert.",
        ),
        "PUT" => put_top(state, req, path, api_version, kind, &type_name, &key),
        "PATCH" => patch_tags(state, req, path, &key),
        "DELETE" => delete_top(state, req, path, api_version, kind, &key),
        method => arm_error(
            405,
            "MethodNotAllowed",
            format!("The fake does not support {method} on {}.", req.path),
        ),
    }
}

fn put_top(
    state: &mut State,
    req: &Req,
    path: &ArmPath,
    api_version: &str,
    kind: Kind,
    type_name: &str,
    key: &str,
) -> Reply {
    let requested_id = path.top_id();
    if let Err(reply) = check_lock(state, key, &requested_id) {
        return reply;
    }
    let existing = state.arm.get(key).cloned();
    if let Err(reply) = check_if_match(req, existing.as_ref().and_then(etag_of), &requested_id) {
        return reply;
    }

    let body = match req.json_body() {
        Ok(body) => body,
        Err(message) => return arm_error(400, "InvalidRequestFormat", message),
    };
    // ARM keeps the casing of the id from when the resource was created.
    let id = existing
        .as_ref()
        .and_then(|existing| existing.get("id").and_then(Value::as_str))
        .map_or(requested_id, str::to_string);
    let context = state.normalize_context();
    let body = match normalize(kind, &id, type_name, body, existing.as_ref(), &context) {
        Ok(body) => body,
        Err(reply) => return reply,
    };

    let mut response_body = body.clone();
    stamp(&mut response_body, &new_etag(), "Updating");
    let response_body = view(&state.arm, &response_body);
    let urls = operations::start(
        state,
        PendingWrite {
            subscription: path.subscription.clone(),
            namespace: path.namespace.clone(),
            location: location_of(&body),
            api_version: api_version.to_string(),
            lock_key: key.to_string(),
            result_key: key.to_string(),
            change: Change::Put {
                key: key.to_string(),
                body,
            },
            is_delete: false,
            request_path: req.path.clone(),
        },
    );

    let status = if existing.is_some() { 200 } else { 201 };
    write_headers(
        Reply::json(status, response_body),
        &urls,
        false,
        state.operation_retry_after(),
    )
}

/// Handles PATCH, which ARM's network resources accept for `tags` only. The
/// update is synchronous, as the UpdateTags examples show it: 200 with the resource.
fn patch_tags(state: &mut State, req: &Req, path: &ArmPath, key: &str) -> Reply {
    let id = path.top_id();
    if let Err(reply) = check_lock(state, key, &id) {
        return reply;
    }
    let Some(mut stored) = state.arm.get(key).cloned() else {
        return resource_not_found(path);
    };
    if let Err(reply) = check_if_match(req, etag_of(&stored), &id) {
        return reply;
    }
    let body = match req.json_body() {
        Ok(body) => body,
        Err(message) => return arm_error(400, "InvalidRequestFormat", message),
    };
    let Some(tags) = body.get("tags").filter(|tags| tags.is_object()) else {
        return arm_error(
            400,
            "InvalidRequestFormat",
            "PATCH takes a body of the form {\"tags\": {...}}.",
        );
    };
    if let Some(object) = stored.as_object_mut() {
        object.insert("tags".into(), tags.clone());
    }
    stamp(&mut stored, &new_etag(), "Succeeded");
    state.arm.insert(key.to_string(), stored.clone());
    with_etag_header(Reply::json(200, view(&state.arm, &stored)), &stored)
}

fn delete_top(
    state: &mut State,
    req: &Req,
    path: &ArmPath,
    api_version: &str,
    kind: Kind,
    key: &str,
) -> Reply {
    let id = path.top_id();
    if let Err(reply) = check_lock(state, key, &id) {
        return reply;
    }
    let Some(stored) = state.arm.get(key).cloned() else {
        return Reply::empty(204);
    };
    if let Err(reply) = check_if_match(req, etag_of(&stored), &id) {
        return reply;
    }

    if kind == Kind::NetworkSecurityGroup {
        let stored_id = stored
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(&id)
            .to_string();
        let (nics, subnets) = resources::nsg_users(&state.arm, &stored_id);
        if !nics.is_empty() || !subnets.is_empty() {
            let users: Vec<String> = nics.into_iter().chain(subnets).collect();
            return arm_error(
                409,
                "InUseNetworkSecurityGroupCannotBeDeleted",
                format!(
                    "Network security group {stored_id} cannot be deleted because it is in use by the following resources: {}.",
                    users.join(", ")
                ),
            );
        }
    }

    let urls = operations::start(
        state,
        PendingWrite {
            subscription: path.subscription.clone(),
            namespace: path.namespace.clone(),
            location: location_of(&stored),
            api_version: api_version.to_string(),
            lock_key: key.to_string(),
            result_key: key.to_string(),
            change: Change::Delete {
                key: key.to_string(),
            },
            is_delete: true,
            request_path: req.path.clone(),
        },
    );
    write_headers(Reply::empty(202), &urls, true, state.operation_retry_after())
}

fn list_top(state: &State, path: &ArmPath) -> Reply {
    let namespace_and_type =
        format!("/providers/{}/{}/", path.namespace, path.rest[0]).to_ascii_lowercase();
    let subscription_prefix =
        format!("/subscriptions/{}/resourcegroups/", path.subscription).to_ascii_lowercase();
    let group_prefix = path.resource_group.as_ref().map(|group| {
        format!(
            "{subscription_prefix}{}{namespace_and_type}",
            group.to_ascii_lowercase()
        )
    });
    let mut value = Vec::new();
    for (key, stored) in &state.arm {
        let matches = match &group_prefix {
            Some(prefix) => key
                .strip_prefix(prefix.as_str())
                .is_some_and(|name| !name.contains('/')),
            None => {
                key.starts_with(&subscription_prefix)
                    && key
                        .split_once(namespace_and_type.as_str())
                        .is_some_and(|(group, name)| {
                            !name.contains('/') && !group[subscription_prefix.len()..].contains('/')
                        })
            }
        };
        if matches {
            value.push(view(&state.arm, stored));
        }
    }
    Reply::json(200, json!({ "value": value }))
}

/// Returns the `properties` array that contains the children of a resource type,
/// and whether clients may write to it.
fn child_collection(kind: Kind, child_type: &str) -> Option<(&'static str, bool, &'static str)> {
    let child_type = child_type.to_ascii_lowercase();
    match (kind, child_type.as_str()) {
        (Kind::NetworkSecurityGroup, "securityrules") => {
            Some(("securityRules", true, resources::RULE_TYPE))
        }
        (Kind::NetworkSecurityGroup, "defaultsecurityrules") => {
            Some(("defaultSecurityRules", false, resources::DEFAULT_RULE_TYPE))
        }
        (Kind::VirtualNetwork, "subnets") => Some(("subnets", true, resources::SUBNET_TYPE)),
        (Kind::NetworkInterface, "ipconfigurations") => {
            Some(("ipConfigurations", false, resources::IP_CONFIGURATION_TYPE))
        }
        _ => None,
    }
}

fn list_children(state: &State, path: &ArmPath) -> Reply {
    let (kind, _) = kind_of(&path.namespace, &path.rest[0]);
    let Some((collection, _, _)) = child_collection(kind, &path.rest[2]) else {
        return arm_error(
            404,
            "InvalidResourceType",
            format!("The fake does not list {}.", path.rest[2]),
        );
    };
    let Some(stored) = state.arm.get(&path.top_id().to_ascii_lowercase()) else {
        return resource_not_found(path);
    };
    let response_body = view(&state.arm, stored);
    Reply::json(
        200,
        json!({ "value": array_of(&response_body, collection) }),
    )
}

fn action(state: &State, path: &ArmPath) -> Reply {
    let (kind, _) = kind_of(&path.namespace, &path.rest[0]);
    if kind != Kind::NetworkInterface
        || !path.rest[2].eq_ignore_ascii_case("effectiveNetworkSecurityGroups")
    {
        return arm_error(
            404,
            "InvalidResourceType",
            format!("The fake does not support the action {}.", path.rest[2]),
        );
    }
    let Some(nic) = state.arm.get(&path.top_id().to_ascii_lowercase()) else {
        return resource_not_found(path);
    };
    Reply::json(
        200,
        json!({ "value": effective_network_security_groups(state, nic) }),
    )
}

/// Lists the NSGs that apply to a NIC: those of its subnets, then its own.
fn effective_network_security_groups(state: &State, nic: &Value) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut seen_subnets: Vec<String> = Vec::new();
    for configuration in array_of(nic, "ipConfigurations") {
        let Some(subnet_id) = configuration
            .pointer("/properties/subnet/id")
            .and_then(Value::as_str)
        else {
            continue;
        };
        if seen_subnets
            .iter()
            .any(|seen| seen.eq_ignore_ascii_case(subnet_id))
        {
            continue;
        }
        seen_subnets.push(subnet_id.to_string());
        let Some(subnet) = resources::find_subnet(&state.arm, subnet_id) else {
            continue;
        };
        let Some(nsg_id) = subnet
            .pointer("/properties/networkSecurityGroup/id")
            .and_then(Value::as_str)
        else {
            continue;
        };
        if let Some(nsg) = state.arm.get(&nsg_id.to_ascii_lowercase()) {
            entries.push(json!({
                "networkSecurityGroup": { "id": nsg["id"] },
                "association": { "subnet": { "id": subnet["id"] } },
                "effectiveSecurityRules": resources::effective_rules(nsg)
            }));
        }
    }
    if let Some(nsg_id) = nic
        .pointer("/properties/networkSecurityGroup/id")
        .and_then(Value::as_str)
        && let Some(nsg) = state.arm.get(&nsg_id.to_ascii_lowercase())
    {
        entries.push(json!({
            "networkSecurityGroup": { "id": nsg["id"] },
            "association": { "networkInterface": { "id": nic["id"] } },
            "effectiveSecurityRules": resources::effective_rules(nsg)
        }));
    }
    entries
}

fn find_child<'a>(parent: &'a Value, collection: &str, name: &str) -> Option<&'a Value> {
    array_of(parent, collection).iter().find(|child| {
        child
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|found| found.eq_ignore_ascii_case(name))
    })
}

fn child(state: &mut State, req: &Req, path: &ArmPath, api_version: &str) -> Reply {
    let (kind, type_name) = kind_of(&path.namespace, &path.rest[0]);
    let Some((collection, writable, child_type)) = child_collection(kind, &path.rest[2]) else {
        return arm_error(
            404,
            "InvalidResourceType",
            format!("The fake does not serve {} of {type_name}.", path.rest[2]),
        );
    };
    let parent_key = path.top_id().to_ascii_lowercase();
    let child_name = path.rest[3].clone();
    let child_id = format!("{}/{}/{}", path.top_id(), path.rest[2], child_name);
    let method = req.method.as_str();
    if method != "GET" && !writable {
        return arm_error(
            405,
            "MethodNotAllowed",
            format!("{} is read-only.", path.rest[2]),
        );
    }
    let Some(parent) = state.arm.get(&parent_key).cloned() else {
        return resource_not_found(path);
    };
    match method {
        "GET" => {
            let response_body = view(&state.arm, &parent);
            match find_child(&response_body, collection, &child_name) {
                Some(found) => with_etag_header(Reply::json(200, found.clone()), found),
                None => arm_error(404, "NotFound", format!("Resource {child_id} not found.")),
            }
        }
        "PUT" => put_child(
            state,
            req,
            path,
            api_version,
            (kind, &type_name),
            &parent,
            collection,
            child_type,
        ),
        "DELETE" => delete_child(
            state,
            req,
            path,
            api_version,
            (kind, &type_name),
            &parent,
            collection,
        ),
        _ => arm_error(
            405,
            "MethodNotAllowed",
            format!("The fake does not support {method} on {}.", req.path),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn put_child(
    state: &mut State,
    req: &Req,
    path: &ArmPath,
    api_version: &str,
    (kind, type_name): (Kind, &str),
    parent: &Value,
    collection: &str,
    child_type: &str,
) -> Reply {
    let parent_key = path.top_id().to_ascii_lowercase();
    let parent_id = parent
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let requested_name = path.rest[3].clone();
    if let Err(reply) = check_lock(state, &parent_key, &parent_id) {
        return reply;
    }
    if let Err(reply) = check_if_match(req, etag_of(parent), &parent_id) {
        return reply;
    }

    let mut child_body = match req.json_body() {
        Ok(body) if body.is_object() => body,
        Ok(_) => {
            return arm_error(
                400,
                "InvalidRequestFormat",
                "The request body must be a JSON object.",
            );
        }
        Err(message) => return arm_error(400, "InvalidRequestFormat", message),
    };
    let existing_name = find_child(parent, collection, &requested_name)
        .and_then(|found| found.get("name").and_then(Value::as_str))
        .map(str::to_string);
    let is_new = existing_name.is_none();
    let name = existing_name.unwrap_or(requested_name);
    resources::fill_child(
        &mut child_body,
        &format!("{parent_id}/{}/{name}", path.rest[2]),
        &name,
        child_type,
    );

    let mut new_parent = parent.clone();
    let children = resources::properties_mut(&mut new_parent)
        .entry(collection)
        .or_insert_with(|| json!([]));
    if let Some(children) = children.as_array_mut() {
        match children.iter_mut().find(|child| {
            child
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|found| found.eq_ignore_ascii_case(&name))
        }) {
            Some(slot) => *slot = child_body,
            None => children.push(child_body),
        }
    }

    let context = state.normalize_context();
    let new_parent = match normalize(
        kind,
        &parent_id,
        type_name,
        new_parent,
        Some(parent),
        &context,
    ) {
        Ok(body) => body,
        Err(reply) => return reply,
    };

    let mut response_parent = new_parent.clone();
    stamp(&mut response_parent, &new_etag(), "Updating");
    let response_parent = view(&state.arm, &response_parent);
    let response_body = find_child(&response_parent, collection, &name)
        .cloned()
        .unwrap_or(Value::Null);

    let urls = operations::start(
        state,
        PendingWrite {
            subscription: path.subscription.clone(),
            namespace: path.namespace.clone(),
            location: location_of(parent),
            api_version: api_version.to_string(),
            lock_key: parent_key.clone(),
            result_key: parent_key.clone(),
            change: Change::Put {
                key: parent_key,
                body: new_parent,
            },
            is_delete: false,
            request_path: req.path.clone(),
        },
    );

    let status = if is_new { 201 } else { 200 };
    write_headers(
        Reply::json(status, response_body),
        &urls,
        false,
        state.operation_retry_after(),
    )
}

fn delete_child(
    state: &mut State,
    req: &Req,
    path: &ArmPath,
    api_version: &str,
    (kind, type_name): (Kind, &str),
    parent: &Value,
    collection: &str,
) -> Reply {
    let parent_key = path.top_id().to_ascii_lowercase();
    let parent_id = parent
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = path.rest[3].clone();
    if let Err(reply) = check_lock(state, &parent_key, &parent_id) {
        return reply;
    }

    let Some(found) = find_child(parent, collection, &name) else {
        return Reply::empty(204);
    };
    if let Err(reply) = check_if_match(req, etag_of(parent), &parent_id) {
        return reply;
    }

    if kind == Kind::VirtualNetwork {
        let subnet_id = found.get("id").and_then(Value::as_str).unwrap_or_default();
        let users = resources::ip_configurations_in_subnet(&state.arm, subnet_id);
        if !users.is_empty() {
            return arm_error(
                400,
                "InUseSubnetCannotBeDeleted",
                format!(
                    "Subnet {subnet_id} is in use by {} and cannot be deleted.",
                    users.join(", ")
                ),
            );
        }
    }

    let mut new_parent = parent.clone();
    if let Some(children) = resources::properties_mut(&mut new_parent)
        .get_mut(collection)
        .and_then(Value::as_array_mut)
    {
        children.retain(|child| {
            !child
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|found| found.eq_ignore_ascii_case(&name))
        });
    }

    let context = state.normalize_context();
    let new_parent = match normalize(
        kind,
        &parent_id,
        type_name,
        new_parent,
        Some(parent),
        &context,
    ) {
        Ok(body) => body,
        Err(reply) => return reply,
    };

    let urls = operations::start(
        state,
        PendingWrite {
            subscription: path.subscription.clone(),
            namespace: path.namespace.clone(),
            location: location_of(parent),
            api_version: api_version.to_string(),
            lock_key: parent_key.clone(),
            result_key: parent_key.clone(),
            change: Change::Put {
                key: parent_key,
                body: new_parent,
            },
            is_delete: true,
            request_path: req.path.clone(),
        },
    );
    write_headers(Reply::empty(202), &urls, true, state.operation_retry_after())
}
