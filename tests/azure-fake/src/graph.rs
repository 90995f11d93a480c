//! The Microsoft Graph v1.0 side of the fake: users, service principals,
//! applications, domains with their federation configuration, and `$batch`.

use serde_json::{Map, Value, json};

use crate::http::{Reply, ReplyBody, Req, graph_error, split_path};
use crate::state::State;

const METADATA: &str = "https://graph.microsoft.com/v1.0/$metadata";
/// Graph accepts at most 20 requests in one `$batch`.
const MAX_BATCH_REQUESTS: usize = 20;
pub(crate) const COLLECTIONS: [&str; 4] = ["users", "servicePrincipals", "applications", "domains"];

/// Handles one Graph request whose path starts with `/graph`, after the token check.
pub(crate) fn handle(state: &mut State, req: &Req) -> Reply {
    let segments = split_path(req.path.strip_prefix("/graph").unwrap_or(&req.path));
    if segments.first().map(String::as_str) != Some("v1.0") {
        return graph_error(
            400,
            "BadRequest",
            format!(
                "Invalid version in {}: the fake serves only v1.0.",
                req.path
            ),
        );
    }
    let segments = &segments[1..];
    if segments.len() == 1 && segments[0] == "$batch" {
        return batch(state, req);
    }
    dispatch(state, req, segments)
}

/// Counts a Graph request under the Graph limits and takes a write's token.
/// Returns the 429 reply when the write bucket is empty, and `None` to go on
/// (also without Graph limits).
pub(crate) fn admit_limited(state: &mut State, req: &Req) -> Option<Reply> {
    let limits = state.graph_limits.as_mut()?;
    let segments = split_path(req.path.strip_prefix("/graph").unwrap_or(&req.path));
    let after_version = segments.get(1..).unwrap_or_default();
    let seconds = limits.admit(&req.method, after_version).err()?;
    let message = format!(
        "Too many requests: the application's Graph write limit is reached. Retry after {seconds} seconds."
    );
    Some(graph_error(429, "TooManyRequests", message).with_header("Retry-After", seconds.to_string()))
}

fn dispatch(state: &mut State, req: &Req, segments: &[String]) -> Reply {
    let Some(first) = segments.first() else {
        return graph_error(400, "BadRequest", "The request has no resource segment.");
    };
    let rest = &segments[1..];
    let method = req.method.as_str();
    if first == "users" {
        return users(state, req, rest);
    }
    for (collection, alternate_key) in [("servicePrincipals", "appId"), ("applications", "appId")] {
        if let Some(key) = entity_key(first, rest, collection, alternate_key) {
            let rest = if first.eq_ignore_ascii_case(collection) {
                &rest[1..]
            } else {
                rest
            };
            return match (collection, rest.first().map(String::as_str), method) {
                (_, None, "GET") => get_object(state, req, collection, &key),
                (_, None, "PATCH") => patch_object(state, req, collection, &key),
                ("servicePrincipals", Some("appRoleAssignedTo"), "GET") if rest.len() == 1 => {
                    app_role_assigned_to(state, &key)
                }
                ("applications", Some("removePassword"), "POST") if rest.len() == 1 => {
                    remove_password(state, req, &key)
                }
                _ => unsupported(req),
            };
        }
    }
    if first == "domains" && !rest.is_empty() {
        return domains(state, req, rest);
    }
    unsupported(req)
}

/// Which object a path names: `{collection}/{id}` or `{collection}({alternate}='{value}')`.
enum EntityKey {
    Id(String),
    Alternate(String, String),
}

fn entity_key(
    first: &str,
    rest: &[String],
    collection: &str,
    alternate: &str,
) -> Option<EntityKey> {
    if first.eq_ignore_ascii_case(collection) {
        return rest.first().map(|id| EntityKey::Id(id.clone()));
    }
    let inner = first.strip_prefix(collection).or_else(|| {
        let prefix = first.get(..collection.len())?;
        prefix
            .eq_ignore_ascii_case(collection)
            .then(|| &first[collection.len()..])
    })?;
    let inner = inner.strip_prefix('(')?.strip_suffix(')')?;
    let (name, value) = inner.split_once('=')?;
    if !name.eq_ignore_ascii_case(alternate) {
        return None;
    }
    Some(EntityKey::Alternate(
        alternate.to_string(),
        value.trim_matches('\'').to_string(),
    ))
}

fn unsupported(req: &Req) -> Reply {
    graph_error(
        400,
        "BadRequest",
        format!(
            "Resource not found for the segment in {} {}: the fake does not serve it.",
            req.method, req.path
        ),
    )
}

fn not_found(key: &str) -> Reply {
    graph_error(
        404,
        "Request_ResourceNotFound",
        format!(
            "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

/// Finds the lower-case id of an object by id, by `userPrincipalName` for users, or by an alternate key.
fn find(state: &State, collection: &str, key: &EntityKey) -> Option<String> {
    let objects = state.graph.get(collection)?;
    match key {
        EntityKey::Id(id) => {
            let lower = id.to_ascii_lowercase();
            if objects.contains_key(&lower) {
                return Some(lower);
            }
            if collection != "users" {
                return None;
            }
            objects
                .iter()
                .find(|(_, object)| {
                    object
                        .get("userPrincipalName")
                        .and_then(Value::as_str)
                        .is_some_and(|upn| upn.eq_ignore_ascii_case(id))
                })
                .map(|(id, _)| id.clone())
        }
        EntityKey::Alternate(property, value) => objects
            .iter()
            .find(|(_, object)| {
                object
                    .get(property)
                    .and_then(Value::as_str)
                    .is_some_and(|found| found.eq_ignore_ascii_case(value))
            })
            .map(|(id, _)| id.clone()),
    }
}

fn key_text(key: &EntityKey) -> &str {
    match key {
        EntityKey::Id(id) => id,
        EntityKey::Alternate(_, value) => value,
    }
}

/// Returns an object as GET shows it, honouring `$select` (the selected
/// properties plus `id`) and adding the `@odata.context` Graph returns.
fn get_object(state: &State, req: &Req, collection: &str, key: &EntityKey) -> Reply {
    let Some(id) = find(state, collection, key) else {
        return not_found(key_text(key));
    };
    let object = &state.graph[collection][&id];
    let select: Option<Vec<String>> = req.query_param("$select").map(|fields| {
        fields
            .split(',')
            .map(|field| field.trim().to_string())
            .filter(|field| !field.is_empty())
            .collect()
    });
    let mut entity = Map::new();
    match &select {
        Some(fields) => {
            entity.insert(
                "@odata.context".into(),
                json!(format!(
                    "{METADATA}#{collection}({})/$entity",
                    fields.join(",")
                )),
            );
            if let Some(id) = object.get("id") {
                entity.insert("id".into(), id.clone());
            }
            for field in fields {
                if let Some((name, value)) = object.as_object().and_then(|object| {
                    object
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(field))
                }) {
                    entity.insert(name.clone(), value.clone());
                }
            }
        }
        None => {
            entity.insert(
                "@odata.context".into(),
                json!(format!("{METADATA}#{collection}/$entity")),
            );
            if let Some(object) = object.as_object() {
                entity.extend(object.clone());
            }
        }
    }
    Reply::json(200, Value::Object(entity))
}

/// Merges the body's properties into the object and returns 204, as Graph does.
fn patch_object(state: &mut State, req: &Req, collection: &str, key: &EntityKey) -> Reply {
    let Some(id) = find(state, collection, key) else {
        return not_found(key_text(key));
    };
    if collection == "users" && state.relations.protected_users.contains(&id) {
        return graph_error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let body = match req.json_body() {
        Ok(Value::Object(body)) => body,
        Ok(_) => return graph_error(400, "BadRequest", "The PATCH body must be a JSON object."),
        Err(message) => return graph_error(400, "BadRequest", message),
    };
    if collection == "domains" {
        return patch_domain(state, &id, body);
    }
    let object = state
        .graph
        .get_mut(collection)
        .and_then(|objects| objects.get_mut(&id));
    if let Some(Value::Object(object)) = object {
        for (name, value) in body {
            if name != "id" {
                object.insert(name, value);
            }
        }
    }
    Reply::empty(204)
}

fn users(state: &mut State, req: &Req, rest: &[String]) -> Reply {
    let method = req.method.as_str();
    let Some(first) = rest.first() else {
        return unsupported(req);
    };
    if first == "$count" && rest.len() == 1 && method == "GET" {
        return count_users(state, req);
    }
    let key = EntityKey::Id(first.clone());
    let tail: Vec<&str> = rest[1..].iter().map(String::as_str).collect();
    match (tail.as_slice(), method) {
        ([], "GET") => get_object(state, req, "users", &key),
        ([], "PATCH") => patch_object(state, req, "users", &key),
        (["revokeSignInSessions"], "POST") => revoke_sign_in_sessions(state, &key),
        (["memberOf"], "GET") => member_of(state, &key, None),
        (["memberOf", "microsoft.graph.directoryRole"], "GET") => {
            member_of(state, &key, Some("#microsoft.graph.directoryRole"))
        }
        _ => unsupported(req),
    }
}

/// Handles `POST /users/{id}/revokeSignInSessions`. For guest users Graph
/// reports success but revokes nothing, and so does the fake.
fn revoke_sign_in_sessions(state: &mut State, key: &EntityKey) -> Reply {
    let Some(id) = find(state, "users", key) else {
        return not_found(key_text(key));
    };
    let Some(Value::Object(user)) = state
        .graph
        .get_mut("users")
        .and_then(|users| users.get_mut(&id))
    else {
        return not_found(key_text(key));
    };
    let is_guest = user
        .get("userType")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.eq_ignore_ascii_case("Guest"));
    if !is_guest {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        user.insert("signInSessionsValidFromDateTime".into(), json!(now));
    }
    Reply::json(
        200,
        json!({ "@odata.context": format!("{METADATA}#Edm.Boolean"), "value": true }),
    )
}

fn member_of(state: &State, key: &EntityKey, odata_type: Option<&str>) -> Reply {
    let Some(id) = find(state, "users", key) else {
        return not_found(key_text(key));
    };
    let entries = state
        .relations
        .member_of
        .get(&id)
        .cloned()
        .unwrap_or_default();
    let value: Vec<Value> = entries
        .into_iter()
        .filter(|entry| {
            odata_type.is_none_or(|wanted| {
                entry.get("@odata.type").and_then(Value::as_str) == Some(wanted)
            })
        })
        .collect();
    let context = match odata_type {
        Some(_) => format!("{METADATA}#directoryRoles"),
        None => format!("{METADATA}#directoryObjects"),
    };
    Reply::json(200, json!({ "@odata.context": context, "value": value }))
}

/// Handles `GET /users/$count`, which Graph serves only with `ConsistencyLevel: eventual`.
/// The fake understands no `$filter`, or one `endswith`, `startswith` or `eq` on a string property.
fn count_users(state: &State, req: &Req) -> Reply {
    let eventual = req
        .header("consistencylevel")
        .is_some_and(|level| level.eq_ignore_ascii_case("eventual"));
    if !eventual {
        return graph_error(
            400,
            "Request_BadRequest",
            "Count is not currently supported without the header ConsistencyLevel: eventual.",
        );
    }
    let filter = match req
        .query_param("$filter")
        .map(|filter| parse_filter(&filter))
    {
        None => None,
        Some(Some(filter)) => Some(filter),
        Some(None) => {
            return graph_error(
                400,
                "Request_UnsupportedQuery",
                "The fake does not support this $filter expression.",
            );
        }
    };
    let count = state
        .graph
        .get("users")
        .map(|users| {
            users
                .values()
                .filter(|user| filter.as_ref().is_none_or(|filter| filter.matches(user)))
                .count()
        })
        .unwrap_or(0);
    Reply::text(200, count.to_string()).with_header("Content-Type", "text/plain")
}

struct Filter {
    function: String,
    property: String,
    value: String,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        let Some(found) = object.get(&self.property).and_then(Value::as_str) else {
            return false;
        };
        let found = found.to_ascii_lowercase();
        let value = self.value.to_ascii_lowercase();
        match self.function.as_str() {
            "endswith" => found.ends_with(&value),
            "startswith" => found.starts_with(&value),
            _ => found == value,
        }
    }
}

fn parse_filter(filter: &str) -> Option<Filter> {
    let filter = filter.trim();
    for function in ["endswith", "startswith"] {
        if let Some(arguments) = filter
            .strip_prefix(function)
            .and_then(|rest| rest.trim().strip_prefix('('))
        {
            let (property, value) = arguments.strip_suffix(')')?.split_once(',')?;
            return Some(Filter {
                function: function.to_string(),
                property: property.trim().to_string(),
                value: value.trim().trim_matches('\'').to_string(),
            });
        }
    }
    let (property, value) = filter.split_once(" eq ")?;
    Some(Filter {
        function: "eq".into(),
        property: property.trim().into(),
        value: value.trim().trim_matches('\'').into(),
    })
}

fn app_role_assigned_to(state: &State, key: &EntityKey) -> Reply {
    let Some(id) = find(state, "servicePrincipals", key) else {
        return not_found(key_text(key));
    };
    let value = state
        .relations
        .app_role_assigned_to
        .get(&id)
        .cloned()
        .unwrap_or_default();
    Reply::json(
        200,
        json!({
            "@odata.context": format!("{METADATA}#servicePrincipals('{id}')/appRoleAssignedTo"),
            "value": value
        }),
    )
}

fn remove_password(state: &mut State, req: &Req, key: &EntityKey) -> Reply {
    let Some(id) = find(state, "applications", key) else {
        return not_found(key_text(key));
    };
    let key_id = match req.json_body() {
        Ok(body) => body
            .get("keyId")
            .and_then(Value::as_str)
            .map(str::to_string),
        Err(message) => return graph_error(400, "BadRequest", message),
    };
    let Some(key_id) = key_id else {
        return graph_error(
            400,
            "BadRequest",
            "removePassword requires a body with keyId.",
        );
    };
    let application = state
        .graph
        .get_mut("applications")
        .and_then(|objects| objects.get_mut(&id));
    let credentials = application
        .and_then(|application| application.get_mut("passwordCredentials"))
        .and_then(Value::as_array_mut);
    let Some(credentials) = credentials else {
        return graph_error(
            400,
            "BadRequest",
            format!("No password credential found with keyId {key_id}."),
        );
    };
    let before = credentials.len();
    credentials.retain(|credential| {
        !credential
            .get("keyId")
            .and_then(Value::as_str)
            .is_some_and(|found| found.eq_ignore_ascii_case(&key_id))
    });
    if credentials.len() == before {
        // NOTE: the code and message of real Graph for an unknown keyId are not documented; this is a guess.
        return graph_error(
            400,
            "BadRequest",
            format!("No password credential found with keyId {key_id}."),
        );
    }
    Reply::empty(204)
}

fn domains(state: &mut State, req: &Req, rest: &[String]) -> Reply {
    let key = EntityKey::Id(rest[0].clone());
    let tail: Vec<&str> = rest[1..].iter().map(String::as_str).collect();
    match (tail.as_slice(), req.method.as_str()) {
        ([], "GET") => get_object(state, req, "domains", &key),
        ([], "PATCH") => patch_object(state, req, "domains", &key),
        (["federationConfiguration"], "GET") => list_federation(state, &key),
        (["federationConfiguration"], "POST") => create_federation(state, req, &key),
        (["federationConfiguration", id], "GET") => get_federation(state, &key, id),
        (["federationConfiguration", id], "DELETE") => delete_federation(state, &key, id),
        _ => unsupported(req),
    }
}

fn list_federation(state: &State, key: &EntityKey) -> Reply {
    let Some(domain) = find(state, "domains", key) else {
        return not_found(key_text(key));
    };
    let value = state
        .relations
        .federation
        .get(&domain)
        .cloned()
        .unwrap_or_default();
    Reply::json(
        200,
        json!({ "@odata.context": format!("{METADATA}#domains('{domain}')/federationConfiguration"), "value": value }),
    )
}

fn get_federation(state: &State, key: &EntityKey, id: &str) -> Reply {
    let Some(domain) = find(state, "domains", key) else {
        return not_found(key_text(key));
    };
    let found = state
        .relations
        .federation
        .get(&domain)
        .and_then(|configurations| configurations.iter().find(|entry| entry_id_is(entry, id)));
    match found {
        Some(configuration) => Reply::json(200, configuration.clone()),
        None => not_found(id),
    }
}

fn entry_id_is(entry: &Value, id: &str) -> bool {
    entry
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|found| found.eq_ignore_ascii_case(id))
}

/// Creates a federation configuration and makes the domain `Federated`.
///
/// NOTE: the fake allows one configuration per domain and rejects a second
/// POST with 409; the exact error of real Graph for that case is not documented.
fn create_federation(state: &mut State, req: &Req, key: &EntityKey) -> Reply {
    let Some(domain) = find(state, "domains", key) else {
        return not_found(key_text(key));
    };
    let mut configuration = match req.json_body() {
        Ok(Value::Object(body)) => body,
        Ok(_) => {
            return graph_error(
                400,
                "BadRequest",
                "The body must be an internalDomainFederation object.",
            );
        }
        Err(message) => return graph_error(400, "BadRequest", message),
    };

    let configurations = state
        .relations
        .federation
        .entry(domain.clone())
        .or_default();
    if !configurations.is_empty() {
        return graph_error(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            format!("Domain {domain} already has a federation configuration."),
        );
    }

    configuration.insert(
        "@odata.type".into(),
        json!("#microsoft.graph.internalDomainFederation"),
    );
    configuration.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
    let configuration = Value::Object(configuration);
    configurations.push(configuration.clone());
    set_authentication_type(state, &domain, "Federated");

    let mut entity = configuration;
    if let Some(object) = entity.as_object_mut() {
        object.insert(
            "@odata.context".into(),
            json!(format!(
                "{METADATA}#domains('{domain}')/federationConfiguration/$entity"
            )),
        );
    }
    Reply::json(201, entity)
}

fn delete_federation(state: &mut State, key: &EntityKey, id: &str) -> Reply {
    let Some(domain) = find(state, "domains", key) else {
        return not_found(key_text(key));
    };
    let configurations = state
        .relations
        .federation
        .entry(domain.clone())
        .or_default();
    let before = configurations.len();
    configurations.retain(|entry| !entry_id_is(entry, id));
    if configurations.len() == before {
        return not_found(id);
    }
    if configurations.is_empty() {
        set_authentication_type(state, &domain, "Managed");
    }
    Reply::empty(204)
}

/// Applies a domain PATCH. `authenticationType: Managed` removes the federation
/// configuration, as Graph does; `Federated` needs one to exist, made by POST.
fn patch_domain(state: &mut State, domain: &str, body: Map<String, Value>) -> Reply {
    if let Some(kind) = body.get("authenticationType").and_then(Value::as_str) {
        if kind.eq_ignore_ascii_case("Managed") {
            state.relations.federation.remove(domain);
        } else if kind.eq_ignore_ascii_case("Federated") {
            let federated = state
                .relations
                .federation
                .get(domain)
                .is_some_and(|entries| !entries.is_empty());
            if !federated {
                return graph_error(
                    400,
                    "BadRequest",
                    format!(
                        "Domain {domain} has no federation configuration; create one with POST federationConfiguration."
                    ),
                );
            }
        } else {
            return graph_error(
                400,
                "BadRequest",
                format!("Invalid authenticationType '{kind}'; use Managed or Federated."),
            );
        }
    }
    if let Some(Value::Object(object)) = state
        .graph
        .get_mut("domains")
        .and_then(|domains| domains.get_mut(domain))
    {
        for (name, value) in body {
            if name != "id" {
                object.insert(name, value);
            }
        }
    }
    Reply::empty(204)
}

pub(crate) fn set_authentication_type(state: &mut State, domain: &str, kind: &str) {
    if let Some(Value::Object(object)) = state
        .graph
        .get_mut("domains")
        .and_then(|domains| domains.get_mut(domain))
    {
        object.insert("authenticationType".into(), json!(kind));
    }
}

/// Handles `POST /$batch`: runs each inner request through the same handlers,
/// in an order that honours `dependsOn`, and applies faults to inner requests.
fn batch(state: &mut State, req: &Req) -> Reply {
    if req.method != "POST" {
        return graph_error(405, "BadRequest", "$batch takes POST only.");
    }
    let body = match req.json_body() {
        Ok(body) => body,
        Err(message) => return graph_error(400, "BadRequest", message),
    };
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return graph_error(
            400,
            "BadRequest",
            "The batch body must have a requests array.",
        );
    };
    if requests.len() > MAX_BATCH_REQUESTS {
        return graph_error(
            400,
            "BadRequest",
            format!(
                "The batch has {} requests; the maximum is {MAX_BATCH_REQUESTS}.",
                requests.len()
            ),
        );
    }

    let ids: Vec<String> = requests
        .iter()
        .map(|request| batch_text(request.get("id")))
        .collect();
    for (index, id) in ids.iter().enumerate() {
        if id.is_empty() || ids[..index].contains(id) {
            return graph_error(
                400,
                "BadRequest",
                format!("Every batch request needs a unique id; '{id}' is not."),
            );
        }
    }

    let dependencies: Vec<Vec<String>> = requests
        .iter()
        .map(|request| {
            request
                .get("dependsOn")
                .and_then(Value::as_array)
                .map(|values| values.iter().map(|value| batch_text(Some(value))).collect())
                .unwrap_or_default()
        })
        .collect();
    for needed in dependencies.iter().flatten() {
        if !ids.contains(needed) {
            return graph_error(
                400,
                "BadRequest",
                format!("dependsOn names the unknown request id '{needed}'."),
            );
        }
    }

    let mut statuses: Vec<Option<u16>> = vec![None; requests.len()];
    let mut responses = Vec::new();
    while statuses.iter().any(Option::is_none) {
        let ready = (0..requests.len()).find(|&index| {
            statuses[index].is_none()
                && dependencies[index].iter().all(|needed| {
                    statuses[ids
                        .iter()
                        .position(|id| id == needed)
                        .expect("checked above")]
                    .is_some()
                })
        });
        let Some(index) = ready else {
            return graph_error(
                400,
                "BadRequest",
                "The dependsOn values of the batch form a cycle.",
            );
        };
        let failed_dependency = dependencies[index].iter().find(|needed| {
            let status = statuses[ids
                .iter()
                .position(|id| id == *needed)
                .expect("checked above")];
            status.is_some_and(|status| status >= 400)
        });
        let reply = match failed_dependency {
            Some(needed) => graph_error(
                424,
                "FailedDependency",
                format!("The request it depends on ({needed}) failed."),
            ),
            None => run_inner(state, &requests[index]),
        };
        statuses[index] = Some(reply.status);
        responses.push(batch_response(&ids[index], reply));
    }
    Reply::json(200, json!({ "responses": responses }))
}

fn batch_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    }
}

fn run_inner(state: &mut State, request: &Value) -> Reply {
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let headers: Vec<(String, String)> = request
        .get("headers")
        .and_then(Value::as_object)
        .map(|headers| {
            headers
                .iter()
                .filter_map(|(name, value)| {
                    value
                        .as_str()
                        .map(|value| (name.to_ascii_lowercase(), value.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let body = match request.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(body) => serde_json::to_vec(body).expect("a JSON value serializes"),
    };
    let inner = Req {
        method,
        path: format!("/graph/v1.0/{}", path.trim_start_matches('/')),
        query: query.to_string(),
        headers,
        body,
    };
    let recorded_body = inner.json_body().unwrap_or(Value::Null);
    state.record(&inner, recorded_body);
    if let Some(fault) = state.take_fault(
        &inner.method,
        &crate::http::percent_decode(&inner.path, false),
    ) {
        return crate::fault_reply(&fault, crate::Side::Graph);
    }
    if inner.path.ends_with("/$batch") {
        return graph_error(400, "BadRequest", "A batch cannot contain another batch.");
    }
    if let Some(throttled) = admit_limited(state, &inner) {
        return throttled;
    }
    handle(state, &inner)
}

fn batch_response(id: &str, reply: Reply) -> Value {
    let mut headers = Map::new();
    for (name, value) in &reply.headers {
        headers.insert(name.clone(), json!(value));
    }
    let mut response = Map::new();
    response.insert("id".into(), json!(id));
    response.insert("status".into(), json!(reply.status));
    match reply.body {
        ReplyBody::Json(body) => {
            headers
                .entry("Content-Type")
                .or_insert(json!("application/json"));
            response.insert("headers".into(), Value::Object(headers));
            response.insert("body".into(), body);
        }
        ReplyBody::Text(text) => {
            headers.entry("Content-Type").or_insert(json!("text/plain"));
            response.insert("headers".into(), Value::Object(headers));
            response.insert("body".into(), json!(text));
        }
        ReplyBody::Empty => {
            response.insert("headers".into(), Value::Object(headers));
        }
    }
    Value::Object(response)
}
