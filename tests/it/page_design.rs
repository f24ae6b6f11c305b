//! The pages' shared design rules: a strict Content-Security-Policy with no inline code anywhere, forms
//! that report every error at once and keep what was typed, destructive actions that ask first even
//! without JavaScript, and numbers written the way each language writes them.

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;

use crate::helpers::spawn_app;

/// Inline code a strict policy would block: `<script>` bodies, `on…=` handlers, `style` attributes and
/// elements. Returns what it found.
fn inline_code(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    for (i, _) in lower.match_indices("<script") {
        let tag_end = lower[i..].find('>').map(|e| i + e).unwrap_or(lower.len());
        let body_end = lower[tag_end..].find("</script>").map(|e| tag_end + e).unwrap_or(tag_end);
        if !lower[i..tag_end].contains(" src=") || lower[tag_end + 1..body_end].trim() != "" {
            found.push(html[i..tag_end.min(i + 80)].to_owned());
        }
    }
    if lower.contains("<style") {
        found.push("<style>".into());
    }
    for (i, _) in lower.match_indices(" style=") {
        found.push(html[i..(i + 40).min(html.len())].to_owned());
    }
    let bytes = lower.as_bytes();
    for (i, _) in lower.match_indices(" on") {
        let name: String = lower[i + 1..].chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        if name.len() > 2 && bytes.get(i + 1 + name.len()) == Some(&b'=') {
            found.push(html[i..(i + 40).min(html.len())].to_owned());
        }
    }
    found
}

#[tokio::test]
async fn every_page_is_served_with_a_strict_policy_and_carries_no_inline_code() {
    let app = spawn_app().await;
    let (admin, pw) = app.user("chief", Role::Admin).await;
    let tpl = app.template("Debian").await;
    let id = app.submit_ok(&app.token(&admin).await, tpl, "web1").await;
    let b = app.logged_in("chief", &pw).await;
    let pages = [
        "/login".to_string(),
        "/".into(),
        "/requests/new".into(),
        format!("/requests/{id}"),
        "/admin".into(),
        "/admin/requests".into(),
        "/admin/users".into(),
        format!("/admin/users/{}", admin.id),
        "/admin/catalog".into(),
        format!("/admin/catalog/{tpl}"),
        "/admin/quotas".into(),
        "/admin/audit".into(),
        "/admin/guacamole".into(),
        "/profile".into(),
        "/requests/999999".into(),
        "/no-such-page".into(),
    ];
    for page in &pages {
        let r = b.get(page).await;
        let csp = r.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(csp.as_deref(), Some(proxdesk::http::PAGE_CSP), "{page}");
        let html = r.text().await.unwrap();
        let found = inline_code(&html);
        assert!(found.is_empty(), "inline code on {page}: {found:?}");
    }
    let r = b.get("/no-such-page").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let html = r.text().await.unwrap();
    assert!(html.contains("<title>") && html.contains(r#"<html lang="en">"#) && html.contains("Log out"), "{html}");
    assert_eq!(b.get("/static/favicon.svg").await.status(), StatusCode::OK);
    assert!(!inline_code(r#"<a onclick="x()">"#).is_empty() && !inline_code("<script>1</script>").is_empty());
}

#[tokio::test]
async fn the_request_form_reports_every_error_at_once_and_keeps_what_was_typed() {
    let app = spawn_app().await;
    let (_, pw) = app.user("alice", Role::User).await;
    let tpl = app.template("Debian").await.to_string();
    let b = app.logged_in("alice", &pw).await;
    let form = [
        ("template_id", tpl.as_str()),
        ("hostname", "Bad_Name"),
        ("cores", ""),
        ("memory_mib", "999999"),
        ("disk_gib", "8"),
        ("purpose", ""),
        ("ssh_public_key", "not a key"),
    ];
    let r = b.post_form("/requests/new", "/requests", &form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    for field in ["hostname", "cores", "memory_mib", "purpose", "ssh_public_key"] {
        assert!(html.contains(&format!(r#"id="e-{field}""#)), "{field} has its error in the same round");
        assert!(html.contains(&format!(r##"href="#f-{field}""##)), "{field} is in the summary");
    }
    assert!(html.contains("5 fields need your attention"), "counted with the right plural");
    assert!(html.contains(r#"value="Bad_Name""#) && html.contains(r#"value="999999""#), "typed values kept");
    assert!(html.contains(r#"aria-describedby="h-hostname e-hostname""#), "hint and error tied to the field");
    assert!(html.contains(r#"min="1" max="4""#), "limits of the template on the number field");
    assert!(html.contains("Up to 4 with this template; 8 left in your quota."), "{html}");
}

#[tokio::test]
async fn a_request_over_the_quota_is_told_with_its_other_errors() {
    let app = spawn_app().await;
    let (alice, pw) = app.user("alice", Role::User).await;
    let tpl = app.template("Debian").await;
    let token = app.token(&alice).await;
    // The default user quota allows 8 cores: two requests of 4 leave none.
    for name in ["a1", "a2"] {
        let body = serde_json::json!({"template_id": tpl, "hostname": name, "cores": 4, "memory_mib": 512,
            "disk_gib": 8, "purpose": "x"});
        assert_eq!(app.post(&token, "/api/v1/requests", body).await.status(), StatusCode::OK);
    }
    let b = app.logged_in("alice", &pw).await;
    let tpl = tpl.to_string();
    let form = [
        ("template_id", tpl.as_str()),
        ("hostname", "-bad"),
        ("cores", "2"),
        ("memory_mib", "512"),
        ("disk_gib", "8"),
        ("purpose", "x"),
    ];
    let html = b.post_form("/requests/new", "/requests", &form).await.text().await.unwrap();
    assert!(html.contains(r#"id="e-hostname""#) && html.contains(r#"id="e-cores""#), "{html}");
    assert!(html.contains("0 left in your quota"));
}

#[tokio::test]
async fn destructive_actions_ask_first_even_without_javascript() {
    let app = spawn_app().await;
    let (alice, pw) = app.user("alice", Role::User).await;
    let token = app.token(&alice).await;
    let b = app.logged_in("alice", &pw).await;
    let tokens: serde_json::Value = app.get(&token, "/api/v1/tokens").await.json().await.unwrap();
    let tid = tokens[0]["id"].as_i64().unwrap();
    let action = format!("/profile/tokens/{tid}/revoke");
    let r = b.post_form("/profile", &action, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Please confirm") && html.contains(r#"name="confirmed" value="yes""#), "{html}");
    assert_eq!(app.get(&token, "/api/v1/tokens").await.status(), StatusCode::OK, "still valid before confirming");
    let page = b.get("/profile").await.text().await.unwrap();
    assert!(page.contains("data-confirm="), "the dialog's question is on the form");
    let r = b.post_form("/profile", &action, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get(&token, "/api/v1/tokens").await.status(), StatusCode::UNAUTHORIZED, "revoked");
}

#[tokio::test]
async fn quotas_are_bars_and_numbers_follow_the_language() {
    let app = spawn_app().await;
    let (alice, pw) = app.user("alice", Role::User).await;
    let tpl = app.template("Debian").await;
    app.submit_ok(&app.token(&alice).await, tpl, "web1").await;
    let b = app.logged_in("alice", &pw).await;
    let get = |lang: &'static str| {
        let r = b.client.get(app.url("/")).header("Accept-Language", lang).send();
        async move { r.await.unwrap().text().await.unwrap() }
    };
    let en = get("en").await;
    assert_eq!(en.matches("<meter").count(), 4, "machines, cores, memory, disk");
    assert!(en.contains("1 core ·") && en.contains("512\u{a0}MiB") && en.contains("8\u{a0}GiB"), "{en}");
    assert!(en.contains("1 of 3") && en.contains("2 left"), "machines used and left");
    let fr = get("fr").await;
    assert!(fr.contains("1 cœur") && fr.contains("512\u{a0}Mio") && fr.contains("1 sur 3"), "{fr}");
    assert!(!fr.contains("machines sur"), "no sentence with a wrong plural");
    let it = get("it").await;
    assert!(it.contains("1 core") && it.contains("1 su 3"), "{it}");
}
