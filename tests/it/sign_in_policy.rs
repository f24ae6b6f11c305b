//! The sign-in policy: an admin turns proxdesk passwords off for everyone but a break-glass admin.

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn with_passwords_off_only_the_break_glass_admin_signs_in_with_one() {
    let app = spawn_app().await;
    let (_, root_pw) = app.user("chief", Role::Admin).await;
    let (_, alice_pw) = app.user("alice", Role::User).await;
    let alice = app.logged_in("alice", &alice_pw).await;
    let b = app.logged_in("chief", &root_pw).await;
    let page = "/admin/users/sign-in";
    let html = b.get(page).await.text().await.unwrap();
    assert!(html.contains("Every local account"), "{html}");
    // A break-glass account that is no admin is refused, and what was typed stays.
    let r = b.post_form(page, page, &[("password_sign_in", "break_glass_only"), ("break_glass_admin", "alice")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"e-break_glass_admin\"") && html.contains("value=\"alice\""));
    let r = b.post_form(page, page, &[("password_sign_in", "break_glass_only"), ("break_glass_admin", "chief")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Alice's password session ended at once; her right password now gets a clear refusal.
    assert_eq!(alice.get("/").await.status(), StatusCode::SEE_OTHER, "sent to the sign-in page");
    let r = app.browser().login("alice", &alice_pw).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Password sign-in is turned off"));
    // A wrong password still says only "wrong": the policy reveals nothing about passwords.
    assert_eq!(app.browser().login("alice", "wrong-password").await.status(), StatusCode::UNAUTHORIZED);
    // The break-glass admin still gets in, and kept the session.
    assert_eq!(b.get("/admin").await.status(), StatusCode::OK);
    assert_eq!(app.browser().login("chief", &root_pw).await.status(), StatusCode::SEE_OTHER);
    // Back on for everyone.
    let r = b.post_form(page, page, &[("password_sign_in", "everyone"), ("break_glass_admin", "")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.browser().login("alice", &alice_pw).await.status(), StatusCode::SEE_OTHER);
    let audit = proxdesk::services::audit::list(&app.db, &app.user("auditor", Role::Admin).await.0, Default::default())
        .await
        .unwrap();
    assert_eq!(audit.items.iter().filter(|e| e.action == "sign_in.policy_changed").count(), 2);
}

#[tokio::test]
async fn the_policy_is_an_admins_through_the_api_too() {
    let app = spawn_app().await;
    let (root, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let admin = app.token(&root).await;
    let path = "/api/v1/admin/sign-in-policy";
    let got: serde_json::Value = app.get(&admin, path).await.json().await.unwrap();
    assert_eq!(got["password_sign_in"], "everyone");
    let put = |token: String, body: serde_json::Value| {
        let req = app.api.put(app.url(path)).bearer_auth(token).json(&body);
        async move { req.send().await.unwrap() }
    };
    let r = put(app.token(&alice).await, json!({"password_sign_in": "everyone"})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = put(admin.clone(), json!({"password_sign_in": "break_glass_only", "break_glass_admin": "nobody"})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = put(admin.clone(), json!({"password_sign_in": "break_glass_only", "break_glass_admin": "chief"})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let got: serde_json::Value = app.get(&admin, path).await.json().await.unwrap();
    assert_eq!(got["break_glass_admin"], "chief");
}
