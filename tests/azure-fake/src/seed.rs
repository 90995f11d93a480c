//! Seeding and inspecting the fake's state directly, without HTTP.

use serde_json::{Map, Value, json};

use crate::arm::ArmPath;
use crate::arm::operations::new_etag;
use crate::arm::resources::{self, Context, kind_of, normalize, stamp, view};
use crate::graph::{COLLECTIONS, set_authentication_type};
use crate::http::{ReplyBody, split_path};
use crate::state::State;

fn parse_id(id: &str) -> Result<ArmPath, String> {
    let path =
        ArmPath::parse(&split_path(id)).ok_or_else(|| format!("{id} is not an ARM resource id"))?;
    if path.resource_group.is_none() || !(path.rest.len() == 2 || path.rest.len() == 4) {
        return Err(format!(
            "{id} is not the id of a resource or child resource in a resource group (/subscriptions/{{s}}/resourceGroups/{{rg}}/providers/{{namespace}}/{{type}}/{{name}}[/{{child type}}/{{child name}}])"
        ));
    }
    Ok(path)
}

fn reply_message(body: &ReplyBody) -> String {
    match body {
        ReplyBody::Json(value) => value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        ReplyBody::Text(text) => text.clone(),
        ReplyBody::Empty => String::new(),
    }
}

/// Stores a top-level or child resource directly, already succeeded.
pub(crate) fn insert_arm(state: &mut State, id: &str, body: Value) -> Result<(), String> {
    let path = parse_id(id)?;
    let (kind, type_name) = kind_of(&path.namespace, &path.rest[0]);
    let top_id = path.top_id();
    let key = top_id.to_ascii_lowercase();
    let existing = state.arm.get(&key).cloned();
    let context = Context {
        arm: &state.arm,
        rule_limit: state.settings.rule_limit,
        check_references: false,
    };
    let new_body = if path.rest.len() == 2 {
        normalize(kind, &top_id, &type_name, body, existing.as_ref(), &context)
    } else {
        let Some(parent) = existing.clone() else {
            return Err(format!(
                "the parent {top_id} of {id} is not stored; insert it first"
            ));
        };
        let collection = match (kind, path.rest[2].to_ascii_lowercase().as_str()) {
            (resources::Kind::NetworkSecurityGroup, "securityrules") => "securityRules",
            (resources::Kind::VirtualNetwork, "subnets") => "subnets",
            _ => {
                return Err(format!(
                    "the fake stores no {} children of {type_name}",
                    path.rest[2]
                ));
            }
        };
        let name = path.rest[3].clone();
        let mut child = body;
        if let Some(object) = child.as_object_mut() {
            object.insert("name".into(), json!(name));
        }
        let mut new_parent = parent;
        let children = resources::properties_mut(&mut new_parent)
            .entry(collection)
            .or_insert_with(|| json!([]));
        if let Some(children) = children.as_array_mut() {
            children.retain(|child| {
                !child
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|found| found.eq_ignore_ascii_case(&name))
            });
            children.push(child);
        }
        normalize(
            kind,
            &top_id,
            &type_name,
            new_parent,
            existing.as_ref(),
            &context,
        )
    };
    let mut new_body = new_body.map_err(|reply| reply_message(&reply.body))?;
    stamp(&mut new_body, &new_etag(), "Succeeded");
    state.arm.insert(key, new_body);
    Ok(())
}

pub(crate) fn get_arm(state: &State, id: &str) -> Option<Value> {
    let path = parse_id(id).ok()?;
    let parent = state.arm.get(&path.top_id().to_ascii_lowercase())?;
    let parent_view = view(&state.arm, parent);
    if path.rest.len() == 2 {
        return Some(parent_view);
    }
    let name = &path.rest[3];
    [
        "securityRules",
        "defaultSecurityRules",
        "subnets",
        "ipConfigurations",
    ]
    .into_iter()
    .find(|collection| collection.eq_ignore_ascii_case(&path.rest[2]))
    .and_then(|collection| {
        resources::array_of(&parent_view, collection)
            .iter()
            .find(|child| {
                child
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|found| found.eq_ignore_ascii_case(name))
            })
            .cloned()
    })
}

fn canonical_collection(collection: &str) -> Result<&'static str, String> {
    COLLECTIONS
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(collection))
        .ok_or_else(|| {
            format!(
                "unknown Graph collection {collection}; use one of {}",
                COLLECTIONS.join(", ")
            )
        })
}

/// Stores a Graph object, moving the fake-only relation properties out of it.
pub(crate) fn insert_graph(state: &mut State, collection: &str, body: Value) -> Result<(), String> {
    let collection = canonical_collection(collection)?;
    let Value::Object(mut object) = body else {
        return Err("the body must be a JSON object".to_string());
    };
    let Some(id) = object
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
    else {
        return Err("the body has no string id".to_string());
    };
    match collection {
        "users" => {
            if let Some(Value::Array(entries)) = object.remove("memberOf") {
                let entries = entries
                    .into_iter()
                    .map(|mut entry| {
                        if let Some(entry) = entry.as_object_mut() {
                            entry
                                .entry("@odata.type")
                                .or_insert(json!("#microsoft.graph.directoryRole"));
                        }
                        entry
                    })
                    .collect();
                state.relations.member_of.insert(id.clone(), entries);
            }
            if object.remove("fakeInsufficientPrivileges") == Some(Value::Bool(true)) {
                state.relations.protected_users.insert(id.clone());
            } else {
                state.relations.protected_users.remove(&id);
            }
        }
        "servicePrincipals" => {
            if let Some(Value::Array(entries)) = object.remove("appRoleAssignedTo") {
                state
                    .relations
                    .app_role_assigned_to
                    .insert(id.clone(), entries);
            }
        }
        "domains" => {
            if let Some(Value::Array(entries)) = object.remove("federationConfiguration") {
                let entries: Vec<Value> = entries
                    .into_iter()
                    .map(|mut entry| {
                        if let Some(entry) = entry.as_object_mut() {
                            entry
                                .entry("@odata.type")
                                .or_insert(json!("#microsoft.graph.internalDomainFederation"));
                            entry
                                .entry("id")
                                .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
                        }
                        entry
                    })
                    .collect();
                state.relations.federation.insert(id.clone(), entries);
            }
            object
                .entry("authenticationType")
                .or_insert(json!("Managed"));
        }
        _ => {}
    }
    state
        .graph
        .entry(collection.to_string())
        .or_default()
        .insert(id.clone(), Value::Object(object));
    if collection == "domains"
        && state
            .relations
            .federation
            .get(&id)
            .is_some_and(|entries| !entries.is_empty())
    {
        set_authentication_type(state, &id, "Federated");
    }
    Ok(())
}

pub(crate) fn get_graph(state: &State, collection: &str, id: &str) -> Option<Value> {
    let collection = canonical_collection(collection).ok()?;
    let objects = state.graph.get(collection)?;
    if let Some(object) = objects.get(&id.to_ascii_lowercase()) {
        return Some(object.clone());
    }
    objects
        .values()
        .find(|object| {
            object
                .get("userPrincipalName")
                .and_then(Value::as_str)
                .is_some_and(|upn| upn.eq_ignore_ascii_case(id))
        })
        .cloned()
}

/// Loads `{"arm": {id: body}, "graph": {collection: [objects]}}`.
pub(crate) fn load(state: &mut State, seed: &Value) -> Result<(), String> {
    if let Some(arm) = seed.get("arm") {
        let arm = arm
            .as_object()
            .ok_or("seed field arm must be an object of id to body")?;
        for (id, body) in arm {
            insert_arm(state, id, body.clone())
                .map_err(|message| format!("seed arm {id}: {message}"))?;
        }
    }
    if let Some(graph) = seed.get("graph") {
        let graph = graph
            .as_object()
            .ok_or("seed field graph must be an object of collection to array")?;
        for (collection, objects) in graph {
            let objects = objects
                .as_array()
                .ok_or_else(|| format!("seed graph.{collection} must be an array of objects"))?;
            for object in objects {
                insert_graph(state, collection, object.clone())
                    .map_err(|message| format!("seed graph.{collection}: {message}"))?;
            }
        }
    }
    Ok(())
}

/// Removes the keys the fake changes on every write, at any depth.
fn strip(value: &mut Value, keys: &[&str]) {
    match value {
        Value::Object(object) => {
            for key in keys {
                object.remove(*key);
            }
            for child in object.values_mut() {
                strip(child, keys);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| strip(item, keys)),
        _ => {}
    }
}

/// Sorts the arrays whose order carries no meaning by one key of their items.
fn sort_arrays(value: &mut Value, arrays: &[(&str, &str)]) {
    match value {
        Value::Object(object) => {
            for (name, child) in object.iter_mut() {
                if let Some((_, key)) = arrays.iter().find(|(array, _)| array == name)
                    && let Value::Array(items) = child
                {
                    items.sort_by_key(|item| {
                        item.get(*key)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_ascii_lowercase()
                    });
                }
                sort_arrays(child, arrays);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| sort_arrays(item, arrays)),
        _ => {}
    }
}

pub(crate) fn snapshot(state: &State) -> Value {
    let mut arm = Map::new();
    for (key, body) in &state.arm {
        let mut body = body.clone();
        strip(&mut body, &["etag", "provisioningState", "resourceGuid"]);
        sort_arrays(
            &mut body,
            &[
                ("securityRules", "name"),
                ("defaultSecurityRules", "name"),
                ("subnets", "name"),
            ],
        );
        arm.insert(key.clone(), body);
    }
    let mut graph = Map::new();
    for (collection, objects) in &state.graph {
        let mut stripped = Map::new();
        for (id, object) in objects {
            let mut object = object.clone();
            if let Some(object) = object.as_object_mut() {
                object.remove("signInSessionsValidFromDateTime");
            }
            sort_arrays(
                &mut object,
                &[
                    ("passwordCredentials", "keyId"),
                    ("keyCredentials", "keyId"),
                ],
            );
            stripped.insert(id.clone(), object);
        }
        graph.insert(collection.clone(), Value::Object(stripped));
    }
    let federation: Map<String, Value> = state
        .relations
        .federation
        .iter()
        .map(|(domain, entries)| {
            let mut entries = Value::Array(entries.clone());
            strip(&mut entries, &["id"]);
            (domain.clone(), entries)
        })
        .collect();
    json!({
        "arm": arm,
        "graph": graph,
        "graphRelations": {
            "memberOf": state.relations.member_of,
            "appRoleAssignedTo": state.relations.app_role_assigned_to,
            "federationConfiguration": federation,
            "insufficientPrivileges": state.relations.protected_users,
        }
    })
}
