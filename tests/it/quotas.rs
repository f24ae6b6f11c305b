//! Quotas and template limits, in the form and in the API, with field-level errors.

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn the_api_reports_every_invalid_field_at_once() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice", Role::User).await;
    let token = app.token(&alice).await;
    let tpl = app.template("Debian").await;
    // Out of the declared schema (a hostname against its pattern, 0 under `minimum`): 400, from the framework.
    for (field, value) in [("hostname", json!("-bad-")), ("memory_mib", json!(0)), ("purpose", json!(""))] {
        let mut body = json!({"template_id": tpl, "hostname": "web1", "cores": 1, "memory_mib": 512, "disk_gib": 8,
                              "purpose": "testing"});
        body[field] = value;
        let r = app.post(&token, "/api/v1/requests", body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    // Within the schema but against the rules (the entry's maximum, a key that is no key): 422, every field.
    let body = json!({"template_id": tpl, "hostname": "web1", "cores": 8, "memory_mib": 5000, "disk_gib": 8,
                      "purpose": "testing", "ssh_public_key": "ssh-rsa nonsense"});
    let r = app.post(&token, "/api/v1/requests", body).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "/problems/validation");
    assert_eq!(
        fields(&p),
        [
            ("ssh_public_key".into(), "error.ssh_key_invalid".into()),
            ("cores".into(), "error.template_max".into()),
            ("memory_mib".into(), "error.template_max".into()),
        ]
    );
    assert_eq!(p["errors"][1]["message"], "at most 4 for this template");
}

#[tokio::test]
async fn pending_and_active_requests_count_against_the_quota() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (admin_t, token) = (app.token(&admin).await, app.token(&alice).await);
    let tpl = app.template("Debian").await;
    // Role default for users: 3 machines. Give alice 2 via an override, and 3 cores.
    let r = app
        .api
        .put(app.url(&format!("/api/v1/users/{}/quota", alice.id)))
        .bearer_auth(&admin_t)
        .json(&json!({"max_machines": 2, "max_cores": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let first = app.submit_ok(&token, tpl, "one").await;
    app.post(&admin_t, &format!("/api/v1/requests/{first}/approve"), json!({})).await;
    let second = app.submit_ok(&token, tpl, "two").await;

    let third = app.submit(&token, tpl, "three").await;
    assert_eq!(third.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = third.json().await.unwrap();
    assert_eq!(fields(&p)[0], ("template_id".into(), "error.quota_machines".into()));

    // Cancelling frees the slot; now the core budget (3, 2 in use) is what binds.
    app.post(&token, &format!("/api/v1/requests/{second}/cancel"), json!({})).await;
    let big =
        json!({"template_id": tpl, "hostname": "big", "cores": 3, "memory_mib": 512, "disk_gib": 8, "purpose": "x"});
    let r = app.post(&token, "/api/v1/requests", big).await;
    let p: Value = r.json().await.unwrap();
    assert_eq!(fields(&p), [("cores".into(), "error.quota_left".into())]);
    assert_eq!(p["errors"][0]["message"], "your quota has 2 left");
    let q: Value = app.get(&admin_t, &format!("/api/v1/users/{}/quota", alice.id)).await.json().await.unwrap();
    assert_eq!((q["used_machines"].as_i64(), q["used_cores"].as_i64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn concurrent_submissions_cannot_both_squeeze_under_the_quota() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (admin_t, token) = (app.token(&admin).await, app.token(&alice).await);
    let tpl = app.template("Debian").await;
    app.api
        .put(app.url(&format!("/api/v1/users/{}/quota", alice.id)))
        .bearer_auth(&admin_t)
        .json(&json!({"max_machines": 1}))
        .send()
        .await
        .unwrap();
    let names: Vec<String> = (0..6).map(|i| format!("h{i}")).collect();
    let submissions = names.iter().map(|name| app.submit(&token, tpl, name));
    let results = futures_util::future::join_all(submissions).await;
    let ok = results.iter().filter(|r| r.status() == StatusCode::OK).count();
    assert_eq!(ok, 1, "exactly one fits the quota");
}

#[tokio::test]
async fn the_form_keeps_what_was_typed_and_shows_each_error_beside_its_field() {
    let app = spawn_app().await;
    let (_, pw) = app.user("alice", Role::User).await;
    let tpl = app.template("Debian").await;
    let b = app.logged_in("alice", &pw).await;
    let tpl_s = tpl.to_string();
    let r = b
        .post_form(
            "/requests/new",
            "/requests",
            &[
                ("template_id", &tpl_s),
                ("hostname", "bad_host!"),
                ("cores", "9"),
                ("memory_mib", "lots"),
                ("disk_gib", "8"),
                ("purpose", "thesis experiments"),
                ("ssh_public_key", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("value=\"bad_host!\""), "hostname kept");
    assert!(html.contains("thesis experiments"), "purpose kept");
    assert!(html.contains("value=\"lots\""), "even an unparsable number is kept");
    assert!(html.contains("id=\"e-memory_mib\">must be a whole number"));
    // Once the number parses, the template limit and hostname errors show beside their fields.
    let r = b
        .post_form(
            "/requests/new",
            "/requests",
            &[
                ("template_id", &tpl_s),
                ("hostname", "bad_host!"),
                ("cores", "9"),
                ("memory_mib", "512"),
                ("disk_gib", "8"),
                ("purpose", "x"),
            ],
        )
        .await;
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"e-cores\">at most 4 for this template"), "{html}");
    assert!(html.contains("id=\"e-hostname\">use 1–63 letters"));
    // And in French when the browser asks for it.
    let csrf = b.csrf("/requests/new").await;
    let fr = b
        .client
        .post(format!("{}/requests", b.base))
        .header("Accept-Language", "fr-FR,fr;q=0.9")
        .form(&[
            ("csrf", csrf.as_str()),
            ("template_id", &tpl_s),
            ("hostname", "ok"),
            ("cores", "9"),
            ("memory_mib", "512"),
            ("disk_gib", "8"),
            ("purpose", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert!(fr.text().await.unwrap().contains("au plus 4 pour ce modèle"));
}

#[tokio::test]
async fn a_valid_form_creates_the_request_and_shows_it() {
    let app = spawn_app().await;
    let (_, pw) = app.user("alice", Role::User).await;
    let tpl = app.template("Debian").await;
    let b = app.logged_in("alice", &pw).await;
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt8YbSbGJ6pWAJ3T3ywd2M5tnUnTjQ/g3D3SJfGzpcn alice@lab";
    let r = b
        .post_form(
            "/requests/new",
            "/requests",
            &[
                ("template_id", &tpl.to_string()),
                ("hostname", "Lab-1"),
                ("cores", "2"),
                ("memory_mib", "2048"),
                ("disk_gib", "16"),
                ("purpose", "course work"),
                ("ssh_public_key", key),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let html = b.get(&location).await.text().await.unwrap();
    assert!(html.contains("lab-1") && html.contains("course work") && html.contains("alice@lab"));
    assert!(html.contains("Your request was sent"));
}
