//! The OpenAPI document: served, valid, complete, and committed.

use proxdesk::domain::roles::Role;
use serde_json::Value;

use crate::helpers::spawn_app;

const CORE_ROUTES: &[(&str, &str)] = &[
    ("get", "/requests"),
    ("post", "/requests"),
    ("get", "/requests/{id}"),
    ("post", "/requests/{id}/cancel"),
    ("post", "/requests/{id}/approve"),
    ("post", "/requests/{id}/reject"),
    ("get", "/templates"),
    ("get", "/machines"),
    ("get", "/audit"),
    ("get", "/tokens"),
    ("post", "/tokens"),
    ("delete", "/tokens/{id}"),
    ("get", "/me"),
];

#[tokio::test]
async fn the_served_spec_is_openapi_3_and_lists_every_core_route_with_auth() {
    let app = spawn_app().await;
    let spec: Value = app.api.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.values().any(|s| s["scheme"] == "bearer"));
    for (method, path) in CORE_ROUTES {
        let op = &spec["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing from the spec");
        assert!(op["security"].as_array().is_some_and(|s| !s.is_empty()), "{method} {path} has no security");
    }
    // Every $ref points at a schema that exists.
    let text = spec.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(spec["components"]["schemas"][name].is_object(), "dangling $ref {name}");
    }
    assert_eq!(app.api.get(app.url("/api/docs")).send().await.unwrap().status(), 200);
}

#[test]
fn the_committed_openapi_json_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let current = proxdesk::http::api::spec_json();
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if std::env::var_os("PROXDESK_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &current).unwrap();
        return;
    }
    assert!(
        committed == current,
        "openapi.json is stale: run `PROXDESK_UPDATE_OPENAPI=1 cargo test --test it openapi` and review the diff"
    );
}

#[tokio::test]
async fn unknown_api_paths_and_bad_json_answer_problem_json() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice", Role::User).await;
    let token = app.token(&alice).await;
    let r = app.get(&token, "/api/v1/nope").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = app
        .api
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}
