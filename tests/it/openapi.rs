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

/// Every optional property of a request body is declared `nullable` (the server reads `null` as
/// absent), and no required one is.
#[test]
fn optional_request_fields_and_only_they_are_declared_nullable() {
    let spec: Value = serde_json::from_str(&proxdesk::http::api::spec_json()).unwrap();
    let mut bodies = std::collections::BTreeSet::new();
    for op in spec["paths"].as_object().unwrap().values().flat_map(|ops| ops.as_object().unwrap().values()) {
        for media in op["requestBody"]["content"].as_object().into_iter().flat_map(|c| c.values()) {
            let schema = &media["schema"];
            if let Some(r) = schema["$ref"].as_str().or(schema["allOf"][0]["$ref"].as_str()) {
                bodies.insert(r.rsplit('/').next().unwrap().to_owned());
            }
        }
    }
    assert!(bodies.len() > 10, "{bodies:?}");
    for name in &bodies {
        let schema = &spec["components"]["schemas"][name];
        let required: Vec<&str> =
            schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        for (field, prop) in schema["properties"].as_object().unwrap() {
            let optional = !required.contains(&field.as_str());
            assert_eq!(prop["nullable"] == true, optional, "{name}.{field}: {prop}");
        }
    }
}

/// A string field takes a JSON string only (not a number or boolean turned into one); an optional
/// field and an optional body take `null` as absent, as the spec declares.
#[tokio::test]
async fn string_fields_take_strings_only_and_optional_ones_take_null() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice", Role::User).await;
    let token = app.token(&alice).await;
    for name in [serde_json::json!(false), serde_json::json!(12), serde_json::json!(null)] {
        let r = app.post(&token, "/api/v1/tokens", serde_json::json!({ "name": name })).await;
        assert_eq!(r.status(), 400, "{name}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let r = app
        .api
        .put(app.url("/api/v1/me/language"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "language": null }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "null: follow the browser");
    let r = app.post(&token, "/api/v1/tokens", serde_json::json!({ "name": "ci" })).await;
    assert_eq!(r.status(), 200);
}
