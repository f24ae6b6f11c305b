//! Logging in and out, throttling, and disabled accounts.

use proxdesk::domain::roles::Role;
use proxdesk::domain::throttle;
use reqwest::StatusCode;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn login_opens_a_session_and_logout_ends_it() {
    let app = spawn_app().await;
    app.user("alice", Role::User).await;
    let b = app.browser();
    assert_eq!(b.get("/").await.status(), StatusCode::SEE_OTHER, "anonymous visitors go to the login page");
    let r = b.login("alice", "alice-password-123").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("proxdesk_session="));
    let cookie = cookie.expect("session cookie set");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http test instance: no Secure flag");
    let home = b.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("alice"));
    assert_eq!(b.post_form("/", "/logout", &[]).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(b.get("/").await.status(), StatusCode::SEE_OTHER, "logged out");
}

#[tokio::test]
async fn session_cookie_is_secure_behind_https() {
    // The proxy terminating TLS is trusted to say so.
    let app = spawn_app_with(|raw| raw.set("trusted_proxies", "127.0.0.1")).await;
    app.user("alice", Role::User).await;
    let b = app.browser();
    let csrf = b.csrf("/login").await;
    let r = b
        .client
        .post(app.url("/login"))
        .header("X-Forwarded-Proto", "https")
        .form(&[("username", "alice"), ("password", "alice-password-123"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("proxdesk_session="))
        .unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn wrong_password_is_refused_without_saying_why() {
    let app = spawn_app().await;
    app.user("alice", Role::User).await;
    let b = app.browser();
    let wrong = b.login("alice", "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body = wrong.text().await.unwrap();
    assert!(body.contains("Wrong user name or password"));
    assert!(body.contains("value=\"alice\""), "the typed user name is kept");
    let unknown = b.login("nobody", "whatever-password").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(b.get("/").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn repeated_failures_make_the_next_attempt_wait_even_with_the_right_password() {
    let app = spawn_app().await;
    app.user("alice", Role::User).await;
    let b = app.browser();
    for _ in 0..throttle::PAIR.free {
        assert_eq!(b.login("alice", "wrong-password").await.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = b.login("alice", "alice-password-123").await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.text().await.unwrap().contains("Too many failed attempts"));
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_throttled_across_accounts() {
    let app = spawn_app().await;
    app.user("alice", Role::User).await;
    let b = app.browser();
    for i in 0..throttle::ADDRESS.free {
        // Spread over many names so no single account locks first.
        b.login(&format!("guess{i}"), "wrong-password").await;
    }
    assert_eq!(b.login("alice", "alice-password-123").await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn disabling_a_user_ends_their_session_and_tokens_at_once() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, pw) = app.user("alice", Role::User).await;
    let token = app.token(&alice).await;
    let b = app.logged_in("alice", &pw).await;
    assert_eq!(b.get("/").await.status(), StatusCode::OK);
    assert_eq!(app.get(&token, "/api/v1/me").await.status(), StatusCode::OK);

    let admin_token = app.token(&admin).await;
    let r = app.post(&admin_token, &format!("/api/v1/users/{}/disable", alice.id), serde_json::json!({})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    assert_eq!(b.get("/").await.status(), StatusCode::SEE_OTHER, "the open session ended");
    assert_eq!(app.get(&token, "/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(b.login("alice", &pw).await.status(), StatusCode::UNAUTHORIZED, "cannot log in again");
}

#[tokio::test]
async fn csrf_token_is_required_on_every_form() {
    let app = spawn_app().await;
    let (_, pw) = app.user("alice", Role::User).await;
    let b = app.browser();
    // Login form: without and with a forged token.
    let fields = vec![("username".to_string(), "alice".to_string()), ("password".to_string(), pw.clone())];
    assert_eq!(b.post_raw("/login", &fields).await.status(), StatusCode::FORBIDDEN);
    let mut forged = fields.clone();
    forged.push(("csrf".into(), "forged-token".into()));
    assert_eq!(b.post_raw("/login", &forged).await.status(), StatusCode::FORBIDDEN);

    // A logged-in form: a token from another visitor does not work either.
    let b = app.logged_in("alice", &pw).await;
    let other = app.browser().csrf("/login").await;
    let fields = vec![("name".to_string(), "ci".to_string()), ("csrf".to_string(), other)];
    assert_eq!(b.post_raw("/profile/tokens", &fields).await.status(), StatusCode::FORBIDDEN);
    let no_token = vec![("name".to_string(), "ci".to_string())];
    assert_eq!(b.post_raw("/profile/tokens", &no_token).await.status(), StatusCode::FORBIDDEN);
    // With its own token the same form works.
    let ok = b.post_form("/profile", "/profile/tokens", &[("name", "ci")]).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused_even_with_a_valid_token() {
    let app = spawn_app().await;
    let (_, pw) = app.user("alice", Role::User).await;
    let b = app.logged_in("alice", &pw).await;
    let csrf = b.csrf("/profile").await;
    let r = b
        .client
        .post(app.url("/profile/tokens"))
        .header("Origin", "https://evil.example")
        .form(&[("name", "x"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn users_change_their_own_password() {
    let app = spawn_app().await;
    let (_, pw) = app.user("alice", Role::User).await;
    let b = app.logged_in("alice", &pw).await;
    let bad = b
        .post_form(
            "/profile",
            "/profile/password",
            &[
                ("current_password", "wrong"),
                ("new_password", "a-new-password"),
                ("confirm_password", "a-new-password"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("the current password is wrong"));
    let ok = b
        .post_form(
            "/profile",
            "/profile/password",
            &[("current_password", &pw), ("new_password", "a-new-password"), ("confirm_password", "a-new-password")],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.browser().login("alice", "a-new-password").await.status(), StatusCode::SEE_OTHER);
}
