//! Search terms reach the database as text it can compare: a NUL byte (which PostgreSQL's text cannot
//! hold, refusing the whole query) matches nothing instead of failing the page or the API with a 500.

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_search_with_a_nul_byte_finds_nothing_and_fails_nothing() {
    let app = spawn_app().await;
    let (admin, password) = app.user("chief", Role::Admin).await;
    let token = app.token(&admin).await;
    let tpl = app.template("Debian").await;
    app.submit_ok(&token, tpl, "lab-1").await;

    for path in [
        "/api/v1/users?q=%00%C3%AB",
        "/api/v1/requests?q=lab%00",
        "/api/v1/audit?actor=%00&action=request%00&subject_type=%00",
        "/api/v1/machines?name=%00",
    ] {
        let r = app.get(&token, path).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        if status == StatusCode::BAD_REQUEST {
            // Parameters with a declared pattern refuse it before any query.
            assert!(path.contains("/machines"), "{path}: {body}");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let items = body["items"].as_array().unwrap_or_else(|| panic!("{path}: {body}"));
        assert!(items.is_empty(), "{path} found {body}");
    }
    let b = app.logged_in("chief", &password).await;
    for path in ["/admin/requests?status=all&q=lab%00", "/admin/users?q=%00", "/admin/audit?actor=%00"] {
        let r = b.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(!r.text().await.unwrap().contains("lab-1"), "{path} matched the request");
    }
    // The same searches without the NUL still find what is there.
    let found: Value = app.get(&token, "/api/v1/requests?q=lab").await.json().await.unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
}
