//! API tokens: created once, usable, revocable, never stored in plain text.

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn token_lifecycle_create_use_revoke() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice", Role::User).await;
    let bootstrap = app.token(&alice).await;
    let r = app.post(&bootstrap, "/api/v1/tokens", json!({"name": "ci"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let created: Value = r.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pdk_"));

    let me: Value = app.get(&token, "/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    let list: Value = app.get(&token, "/api/v1/tokens").await.json().await.unwrap();
    let ci = list.as_array().unwrap().iter().find(|t| t["name"] == "ci").unwrap();
    assert!(ci.get("token").is_none(), "the secret is never listed");
    assert!(ci["last_used_at"].is_string(), "use is recorded");

    let id = created["id"].as_i64().unwrap();
    let r = app.api.delete(app.url(&format!("/api/v1/tokens/{id}"))).bearer_auth(&bootstrap).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.get(&token, "/api/v1/me").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn tokens_are_stored_hashed() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice", Role::User).await;
    let token = app.token(&alice).await;
    let rows = entities::api_token::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].token_hash, token);
    assert!(!rows[0].token_hash.contains(&token[4..]));
    assert_eq!(rows[0].token_hash, proxdesk::secrets::sha256_hex(&token));
    // Nor is it anywhere else in the data dir (database file, its WAL, the key file).
    for entry in std::fs::read_dir(&app.data_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
}

#[tokio::test]
async fn another_users_token_cannot_be_revoked() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (bob, _) = app.user("bob", Role::User).await;
    let alice_t = app.token(&alice).await;
    let bob_t = app.token(&bob).await;
    let bobs: Value = app.get(&bob_t, "/api/v1/tokens").await.json().await.unwrap();
    let id = bobs[0]["id"].as_i64().unwrap();
    let r = app.api.delete(app.url(&format!("/api/v1/tokens/{id}"))).bearer_auth(&alice_t).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&bob_t, "/api/v1/me").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn garbage_credentials_get_a_problem_401() {
    let app = spawn_app().await;
    for auth in [None, Some("Bearer nope"), Some("Bearer pdk_forged"), Some("Basic YTpi")] {
        let mut req = app.api.get(app.url("/api/v1/requests"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["type"], "/problems/unauthorized");
    }
}
