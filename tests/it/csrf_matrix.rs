//! CSRF, generated from the page route table: every state-changing page refuses a form without its
//! CSRF token, with another session's token, or from another origin — 403, and nothing changes. The
//! forms are an admin's, so nothing but the token (or origin) can be the reason for the refusal.

use reqwest::Method;

use crate::matrix_fixtures::{assert_unchanged, world};
use crate::ownership_matrix::page_fields;

const EVIL: &str = "http://evil.example";

#[tokio::test]
async fn every_state_changing_page_refuses_a_missing_wrong_or_foreign_form_and_changes_nothing() {
    let w = world().await;
    let app = &w.desk.app;
    let chief = app.logged_in("chief", &w.desk.admin.password).await;
    let own = chief.csrf("/profile").await;
    let bobs = app.logged_in("bob", &w.bob.password).await.csrf("/profile").await;
    let mut fields = page_fields(&w);
    let template = w.desk.template.to_string();
    for (k, v) in [
        ("template_id", template.as_str()),
        ("hostname", "matrixhost"),
        ("cores", "1"),
        ("memory_mib", "512"),
        ("disk_gib", "8"),
        ("purpose", "a purpose long enough"),
        ("username", "chief"),
    ] {
        fields.push((k.into(), v.into()));
    }
    let with_csrf = |token: &str| {
        let mut f = fields.clone();
        f.push(("csrf".into(), token.to_owned()));
        f
    };

    let mut checked = 0;
    for (method, pattern) in proxdesk::http::pages::page_routes() {
        if method == Method::GET || method == Method::HEAD {
            continue;
        }
        for url in w.fill(pattern) {
            let before = w.fingerprint().await;
            let full = app.url(&url);
            let attempts = [
                ("no token", chief.client.request(method.clone(), &full).form(&fields)),
                ("another session's token", chief.client.request(method.clone(), &full).form(&with_csrf(&bobs))),
                ("a made-up token", chief.client.request(method.clone(), &full).form(&with_csrf("csrf.forged"))),
                (
                    "a foreign Origin",
                    chief.client.request(method.clone(), &full).form(&with_csrf(&own)).header("Origin", EVIL),
                ),
                (
                    "a foreign Referer",
                    chief
                        .client
                        .request(method.clone(), &full)
                        .form(&with_csrf(&own))
                        .header("Referer", format!("{EVIL}/")),
                ),
            ];
            for (how, request) in attempts {
                let status = request.send().await.unwrap().status();
                assert_eq!(status, 403, "{method} {url} with {how}");
            }
            assert_unchanged(&before, &w.fingerprint().await, &format!("{method} {url} without a valid form"));
            checked += 1;
        }
    }
    println!("CSRF matrix: {checked} state-changing page routes checked");
    assert!(checked >= 35, "only {checked} state-changing pages found");

    // The same admin's real form still goes through: the refusals above were the token's.
    let r = chief.post_raw("/profile/language", &with_csrf(&own)).await;
    assert_eq!(r.status(), 303);
    assert!(chief.get("/profile").await.status().is_success(), "chief is still signed in");
}
