//! User management: the list, each user's page, quota overrides that keep what was typed, and disable
//! and password reset that ask first (a confirmation page without JavaScript) and act only when confirmed.

use proxdesk::domain::roles::Role;
use proxdesk::services;
use reqwest::StatusCode;

use crate::admin_home::unescape;
use crate::helpers::spawn_app;

#[tokio::test]
async fn disabling_asks_first_and_acts_only_when_confirmed() {
    let app = spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let (alice, alice_pw) = app.user("alice", Role::User).await;
    let b = app.logged_in("chief", &pw).await;
    let page = format!("/admin/users/{}", alice.id);
    let html = b.get(&page).await.text().await.map(|h| unescape(&h)).unwrap();
    assert!(html.contains("data-confirm=\"Disable alice?"), "{html}");

    let action = format!("{page}/disable");
    let r = b.post_form(&page, &action, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.map(|h| unescape(&h)).unwrap();
    assert!(html.contains("Disable alice?") && html.contains("name=\"confirmed\" value=\"yes\""), "{html}");
    assert!(html.contains(&format!("action=\"{action}\"")));
    let disabled = || async { services::users::find_by_name(&app.db, "alice").await.unwrap().unwrap().disabled };
    assert!(!disabled().await, "nothing changed without confirmation");
    assert_eq!(app.browser().login("alice", &alice_pw).await.status(), StatusCode::SEE_OTHER);

    let r = b.post_form(&page, &action, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("{page}?done=user_disabled").as_str());
    assert!(disabled().await);
    assert_eq!(app.browser().login("alice", &alice_pw).await.status(), StatusCode::UNAUTHORIZED);
    let html = b.get(&format!("{page}?done=user_disabled")).await.text().await.map(|h| unescape(&h)).unwrap();
    assert!(html.contains("User disabled") && html.contains(&format!("action=\"{page}/enable\"")));
}

#[tokio::test]
async fn a_password_reset_asks_first_then_shows_the_new_password_once() {
    let app = spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let (alice, alice_pw) = app.user("alice", Role::User).await;
    let b = app.logged_in("chief", &pw).await;
    let page = format!("/admin/users/{}", alice.id);
    let action = format!("{page}/reset-password");
    let r = b.post_form(&page, &action, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Reset the password of alice?"));
    assert_eq!(
        app.browser().login("alice", &alice_pw).await.status(),
        StatusCode::SEE_OTHER,
        "old password still works"
    );

    let r = b.post_form(&page, &action, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.map(|h| unescape(&h)).unwrap();
    let shown = html.split("<code>").nth(1).unwrap().split("</code>").next().unwrap().to_owned();
    assert_eq!(app.browser().login("alice", &alice_pw).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.browser().login("alice", &shown).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_quota_override_keeps_what_was_typed_when_refused_and_shows_in_the_list() {
    let app = spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let b = app.logged_in("chief", &pw).await;
    let page = format!("/admin/users/{}", alice.id);
    let action = format!("{page}/quota");
    let r = b
        .post_form(
            &page,
            &action,
            &[("max_machines", "lots"), ("max_cores", "-3"), ("max_memory_mib", "4096"), ("max_disk_gib", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.map(|h| unescape(&h)).unwrap();
    assert!(html.contains("id=\"f-max_machines\" name=\"max_machines\" type=\"number\" value=\"lots\""), "{html}");
    assert!(html.contains("value=\"4096\"") && html.contains("aria-invalid=\"true\""));
    assert!(html.contains("must be a whole number") && html.contains("id=\"error-summary\""), "{html}");

    let r = b
        .post_form(
            &page,
            &action,
            &[("max_machines", "9"), ("max_cores", ""), ("max_memory_mib", ""), ("max_disk_gib", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = b.get(&page).await.text().await.map(|h| unescape(&h)).unwrap();
    assert!(html.contains("id=\"f-max_machines\" name=\"max_machines\" type=\"number\" value=\"9\""), "{html}");
    let audit = b.get("/admin/audit?action=quota.user_set").await.text().await.map(|h| unescape(&h)).unwrap();
    assert!(audit.contains("<dt>Maximum machines</dt><dd>9</dd>") && audit.contains("<dd>—</dd>"), "{audit}");
    let list = b.get("/admin/users?q=ali").await.text().await.map(|h| unescape(&h)).unwrap();
    assert!(list.contains("9 machines") && list.contains("own quota") && !list.contains("(you)"), "{list}");
    assert!(list.contains(&format!("href=\"{page}\"")));
}

#[tokio::test]
async fn the_new_user_form_keeps_its_values_on_error_but_never_the_password() {
    let app = spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let b = app.logged_in("chief", &pw).await;
    let r = b
        .post_form(
            "/admin/users",
            "/admin/users",
            &[("username", "Bad Name"), ("role", "admin"), ("password", "secret-typed-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.map(|h| unescape(&h)).unwrap();
    assert!(html.contains("value=\"Bad Name\"") && html.contains("<option value=\"admin\" selected>"), "{html}");
    assert!(!html.contains("secret-typed-1"));
}
