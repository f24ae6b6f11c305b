//! Origin on the cookie-authenticated API, generated from the OpenAPI document: every state-changing
//! operation called with a session cookie from another site (a foreign `Origin`, or without one a
//! foreign `Referer`) is refused with 403 and changes nothing; the same calls with an API token are not
//! refused for their origin. The cookie is an admin's, so nothing else could refuse the call.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::matrix_fixtures::{assert_unchanged, world};
use crate::ownership_matrix::api_body;

const EVIL: &str = "http://evil.example";

/// Every state-changing operation of the spec as (method, path pattern).
fn writes() -> Vec<(Method, String)> {
    let spec: Value = serde_json::from_str(&proxdesk::http::api::spec_json()).unwrap();
    let mut ops = Vec::new();
    for (pattern, methods) in spec["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if m != Method::GET && m != Method::HEAD && m != Method::OPTIONS {
                ops.push((m, pattern.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn a_session_cookie_from_another_site_is_refused_on_every_api_write_and_tokens_are_not() {
    let w = world().await;
    let app = &w.desk.app;
    let cookie = format!("proxdesk_session={}", w.desk.admin.session);
    let mut checked = 0;
    for (method, pattern) in writes() {
        for url in w.fill(&pattern) {
            let before = w.fingerprint().await;
            let call = || {
                app.api
                    .request(method.clone(), app.url(&format!("/api/v1{url}")))
                    .header("Cookie", &cookie)
                    .json(&api_body(&w, &pattern))
            };
            let foreign_origin = call().header("Origin", EVIL).send().await.unwrap();
            assert_eq!(foreign_origin.status(), StatusCode::FORBIDDEN, "{method} {url} with a foreign Origin");
            let foreign_referer = call().header("Referer", format!("{EVIL}/page")).send().await.unwrap();
            assert_eq!(foreign_referer.status(), StatusCode::FORBIDDEN, "{method} {url} with a foreign Referer");
            assert_unchanged(&before, &w.fingerprint().await, &format!("cross-site {method} {url}"));
            checked += 1;
        }
    }
    println!("Origin matrix: {checked} state-changing API operations checked");
    assert!(checked >= 30, "only {checked} state-changing operations found");

    // The cookie from proxdesk's own pages still works.
    let r = app
        .api
        .put(app.url("/api/v1/me/language"))
        .header("Cookie", &cookie)
        .header("Origin", &app.address)
        .json(&json!({"language": "fr"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "same-origin cookie write: {}", r.text().await.unwrap());

    // An API token carries no ambient authority: a foreign Origin does not matter to it. (These calls
    // really run, so only the reason of an answer is looked at, not its status.)
    for (method, pattern) in writes() {
        for url in w.fill(&pattern) {
            let r = app
                .api
                .request(method.clone(), app.url(&format!("/api/v1{url}")))
                .bearer_auth(&w.desk.admin.token)
                .header("Origin", EVIL)
                .json(&api_body(&w, &pattern))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            assert!(!body.contains("cross-origin"), "{method} {url} refused a token for its Origin: {status} {body}");
        }
    }
}
