//! The OpenAPI document: it lists every route the issue names, each one it lists is served, and
//! each protected operation names its token and role.

use std::collections::BTreeSet;

use contain_e2e::Harness;

use crate::server::{Server, tokens};

/// The routes of the API, as the README lists them for SOAR integrators.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/playbooks"),
    ("get", "/v1/actions"),
    ("post", "/v1/plans"),
    ("get", "/v1/runs"),
    ("post", "/v1/runs"),
    ("get", "/v1/runs/{id}"),
    ("get", "/v1/runs/{id}/journal"),
    ("post", "/v1/runs/{id}/rollback"),
    ("post", "/v1/runs/{id}/resume"),
    ("post", "/v1/runs/{id}/approve"),
    ("post", "/v1/runs/{id}/reject"),
];

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let harness = Harness::new().await;
    let (tokens_file, tokens) = tokens(&harness);
    let admin = &tokens[3].1;
    let server = Server::start(&harness, &harness.endpoint, &tokens_file);

    let fetched = server.request("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(fetched.status, 200, "the document needs no token: {:?}", fetched.body);
    let document = fetched.body;
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "OpenAPI 3.1: {}", document["openapi"]);

    let mut listed = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            listed.insert((method.clone(), path.clone()));
            let open = ["/healthz", "/readyz", "/v1/openapi.json"].contains(&path.as_str());
            let secured = operation["security"].to_string().contains("bearer");
            assert_eq!(secured, !open, "{method} {path}: a token is needed on every route but the open ones");
            if !open {
                let description = operation["description"].as_str().unwrap_or_default();
                assert!(description.starts_with("Role: "), "{method} {path} names its role: {description:?}");
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(listed, expected, "the document lists exactly the API's routes");
    assert!(document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer", "{:#}", document["components"]);

    // Each listed operation is served: none falls through to the no-route error or to 405.
    for (method, path) in &listed {
        let path = path.replace("{id}", "run-that-does-not-exist");
        let body = (method == "post").then_some("{}");
        let answer = server.request(&method.to_uppercase(), &path, Some(admin), body).await;
        assert_ne!(answer.status, 405, "{method} {path}");
        assert_ne!(answer.body["code"], "no_route", "{method} {path} is served: {:?}", answer.body);
    }

    // A path that is not in the document gets the no-route error, with the request id.
    let unknown = server.request("GET", "/v1/run", Some(admin), None).await;
    assert_eq!((unknown.status, unknown.body["code"].as_str()), (404, Some("no_route")), "{:?}", unknown.body);
    assert!(unknown.body["request_id"].as_str().is_some_and(|id| id.starts_with("req-")));
}

/// The role matrix, from the document: every operation with no token, an unknown token, and
/// each role. A principal without the operation's role gets 403, one with it gets past the check.
#[tokio::test]
async fn every_route_checks_its_role() {
    let harness = Harness::new().await;
    let (tokens_file, tokens) = tokens(&harness);
    let server = Server::start(&harness, &harness.endpoint, &tokens_file);
    let document = server.request("GET", "/v1/openapi.json", None, None).await.body;

    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(needed) = operation["description"].as_str().and_then(|d| d.strip_prefix("Role: ")).and_then(|d| d.split(['.', ',']).next()) else {
                continue;
            };
            let path = path.replace("{id}", "run-that-does-not-exist");
            let body = (method == "post").then_some("{}");
            for token in [None, Some("ctn_unknown")] {
                let answer = server.request(&method.to_uppercase(), &path, token, body).await;
                assert_eq!(answer.status, 401, "{method} {path} with {token:?}: {:?}", answer.body);
            }
            for (role, token) in &tokens {
                let allowed = *role == needed || *role == "admin" || needed == "viewer";
                let answer = server.request(&method.to_uppercase(), &path, Some(token), body).await;
                if allowed {
                    assert!(![401, 403].contains(&answer.status), "{role} may {method} {path}: {:?}", answer.body);
                } else {
                    assert_eq!(answer.status, 403, "{role} may not {method} {path}: {:?}", answer.body);
                    assert_eq!(answer.body["code"], "forbidden");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 4 * (ROUTES.len() - 3), "every protected route with every role");
}
