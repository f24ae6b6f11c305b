//! The role matrix, table-driven over every route, and ownership of requests.

use proxdesk::domain::roles::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

/// API operations a plain user may call. Every other operation in the spec must answer 403 to a user,
/// so a new admin route cannot be forgotten: it either lands here or is refused.
const USER_API: &[(&str, &str)] = &[
    ("get", "/requests"),
    ("post", "/requests"),
    // The requests waiting for the caller's groups (none for a user in no group).
    ("get", "/approvals"),
    ("get", "/requests/{id}"),
    ("post", "/requests/{id}/cancel"),
    ("get", "/templates"),
    ("get", "/machines"),
    ("get", "/machines/{id}"),
    ("post", "/machines/{id}/{action}"),
    ("post", "/machines/{id}/console"),
    ("post", "/machines/{id}/detach-iso"),
    ("put", "/machines/{id}/lease"),
    ("delete", "/machines/{id}"),
    ("get", "/machines/{id}/snapshots"),
    ("get", "/machines/{id}/details"),
    ("get", "/machines/{id}/metrics"),
    ("post", "/machines/{id}/snapshots"),
    ("post", "/machines/{id}/snapshots/{name}/rollback"),
    ("post", "/machines/{id}/snapshots/rollback-newest"),
    ("delete", "/machines/{id}/snapshots/{name}"),
    ("post", "/machines/bulk"),
    ("get", "/machines/bulk/{id}"),
    ("get", "/me"),
    ("put", "/me/password"),
    ("put", "/me/language"),
    ("get", "/me/notifications"),
    ("put", "/me/notifications"),
    ("get", "/tokens"),
    ("post", "/tokens"),
    ("delete", "/tokens/{id}"),
    ("get", "/proxmox/guests"),
    ("post", "/proxmox/guests/{vmid}/power"),
    ("post", "/proxmox/guests/{vmid}/console"),
];

/// A well-formed body for each admin operation, so the refusal cannot hide behind a 400.
fn body_for(method: &str, path: &str) -> Value {
    let template = json!({"name": "t", "node": "pve1", "vmid": 9000, "default_cores": 1, "max_cores": 2,
        "default_memory_mib": 512, "max_memory_mib": 1024, "default_disk_gib": 8, "max_disk_gib": 16});
    match (method, path) {
        ("post", "/users") => json!({"username": "mallory", "role": "admin"}),
        ("post", "/admin/templates") | ("put", "/admin/templates/{id}") => template,
        ("put", "/quotas/{role}") => {
            json!({"max_machines": 99, "max_cores": 99, "max_memory_mib": 99, "max_disk_gib": 99})
        }
        ("post", "/requests/{id}/reject") => json!({"reason": "no"}),
        ("post", "/requests/bulk") => json!({"ids": [1], "action": "approve"}),
        ("post", "/users/{id}/identities") => json!({"provider": "pve", "issuer": "pve", "subject": "mallory@pve"}),
        ("post", "/admin/approval-rules") | ("put", "/admin/approval-rules/{id}") => json!({"name": "r"}),
        ("put", "/admin/sign-in-policy") => json!({"password_sign_in": "everyone"}),
        ("post", "/admin/groups") | ("put", "/admin/groups/{id}") => json!({"name": "mallories"}),
        ("post", "/admin/webhooks") => json!({"url": "https://hooks.example/desk"}),
        ("post", "/admin/machines/adopt") => json!({"node": "pve1", "vmid": 100, "kind": "qemu", "owner": "alice"}),
        _ => json!({}),
    }
}

#[tokio::test]
async fn every_admin_api_route_refuses_a_user_with_403() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice", Role::User).await;
    let token = app.token(&alice).await;
    let tpl = app.template("Debian").await;
    let id = app.submit_ok(&token, tpl, "mine").await;
    let spec: Value = serde_json::from_str(&proxdesk::http::api::spec_json()).unwrap();
    let mut checked = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if USER_API.contains(&(method.as_str(), path.as_str())) {
                continue;
            }
            let url = path
                .replace("{id}", &id.to_string())
                .replace("{role}", "user")
                .replace("{identity}", "1")
                .replace("{user_id}", &alice.id.to_string());
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .api
                .request(m, app.url(&format!("/api/v1{url}")))
                .bearer_auth(&token)
                .json(&body_for(method, path))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path} must be admin-only");
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} admin operations found");
    let me: Value = app.get(&token, "/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["role"], "user", "nothing above changed alice's role");
}

/// Page routes anyone logged in may use (admin-only ones are `pages::ADMIN_PAGES`).
const USER_PAGES: &[&str] = &[
    "/",
    "/static/:file",
    "/login",
    "/logout",
    "/login/second-factor",
    "/login/oidc",
    "/login/oidc/callback",
    "/requests",
    "/requests/new",
    "/machines",
    "/requests/:id",
    "/requests/:id/live",
    "/live/dashboard",
    "/requests/:id/cancel",
    // Approvers' pages: their groups' waiting requests; the service refuses anyone else (404/403).
    "/approvals",
    "/approvals/:id/approve",
    "/approvals/:id/reject",
    "/machines/:id/action",
    "/machines/:id",
    "/machines/bulk",
    "/machines/bulk/:id",
    "/machines/bulk/:id/live",
    "/machines/:id/live",
    "/machines/:id/snapshots",
    "/machines/:id/snapshots/rollback-newest",
    "/machines/:id/snapshots/:name/rollback",
    "/machines/:id/snapshots/:name/delete",
    "/machines/:id/lease",
    "/machines/:id/console",
    "/machines/:id/terminal",
    "/profile",
    "/profile/password",
    "/profile/language",
    "/profile/notifications",
    "/profile/tokens",
    "/profile/tokens/:id/revoke",
    "/proxmox/:vmid/action",
    "/proxmox/:vmid/console",
    "/proxmox/:vmid/terminal",
];

#[tokio::test]
async fn every_page_route_is_classified_and_admin_pages_refuse_a_user() {
    // Walk the route table itself, so a new page cannot be left out of the matrix.
    let admin_paths: Vec<String> = proxdesk::http::pages::ADMIN_PAGES
        .iter()
        .map(|(_, p)| {
            p.replace("/1", "/:id")
                .replace("/2/", "/:identity/")
                .replace("/members/3/", "/members/:user_id/")
                .replace("/quotas/user", "/quotas/:role")
        })
        .collect();
    for (_, path) in proxdesk::http::pages::page_routes() {
        assert!(
            USER_PAGES.contains(&path) || admin_paths.iter().any(|a| a == path),
            "page route {path} is not in the role matrix"
        );
    }

    let app = spawn_app().await;
    let (_, pw) = app.user("alice", Role::User).await;
    let b = app.logged_in("alice", &pw).await;
    let csrf = b.csrf("/").await;
    for (method, path) in proxdesk::http::pages::ADMIN_PAGES {
        let r = if *method == "GET" {
            b.get(path).await
        } else {
            b.post_raw(path, &[("csrf".into(), csrf.clone()), ("reason".into(), "x".into())]).await
        };
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
}

#[tokio::test]
async fn a_user_cannot_see_or_cancel_someone_elses_request() {
    let app = spawn_app().await;
    let (alice, alice_pw) = app.user("alice", Role::User).await;
    let (bob, _) = app.user("bob", Role::User).await;
    let tpl = app.template("Debian").await;
    let bobs = app.submit_ok(&app.token(&bob).await, tpl, "bobs").await;
    let alice_t = app.token(&alice).await;

    assert_eq!(app.get(&alice_t, &format!("/api/v1/requests/{bobs}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.post(&alice_t, &format!("/api/v1/requests/{bobs}/cancel"), json!({})).await.status(),
        StatusCode::NOT_FOUND
    );
    let list: Value = app.get(&alice_t, "/api/v1/requests").await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    // Filtering by another user id does not widen a user's view.
    let list: Value = app.get(&alice_t, &format!("/api/v1/requests?user_id={}", bob.id)).await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());

    let b = app.logged_in("alice", &alice_pw).await;
    assert_eq!(b.get(&format!("/requests/{bobs}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(b.post_form("/", &format!("/requests/{bobs}/cancel"), &[]).await.status(), StatusCode::NOT_FOUND);
    let status: Value =
        app.get(&app.token(&bob).await, &format!("/api/v1/requests/{bobs}")).await.json().await.unwrap();
    assert_eq!(status["status"], "pending", "bob's request is untouched");
}
