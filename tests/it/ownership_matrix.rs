//! Ownership, generated from the route tables: every API operation, page, console websocket and
//! console URL that names a machine or a request (or anything else of alice's) answers bob — a plain
//! user — 404 or 403, and changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::console_fixtures::{connect, refused_status};
use crate::matrix_fixtures::{World, assert_unchanged, world};

/// A well-formed body for every operation with a path parameter, so a refusal cannot hide behind a 400:
/// one set of fields that each operation reads its own from (unknown ones are ignored), but for `kind`,
/// which means a console for one and a template's kind for another.
pub fn api_body(w: &World, pattern: &str) -> Value {
    if pattern.ends_with("/console") {
        return json!({"kind": "vnc"});
    }
    json!({
        "name": "matrix2", "action": "shutdown", "reason": "no", "description": "",
        "node": "pve1", "vmid": 9000, "default_cores": 1, "max_cores": 2, "default_memory_mib": 512,
        "max_memory_mib": 1024, "default_disk_gib": 8, "max_disk_gib": 16,
        "max_machines": 99,
        "provider": "pve", "issuer": "pve", "subject": "bob@pve",
        "machine_ids": [w.machine], "owner": "bob", "password": "matrix-password-123",
    })
}

/// The fields of every page form with a path parameter, each valid, and destructive ones confirmed.
pub fn page_fields(w: &World) -> Vec<(String, String)> {
    let machine = w.machine.to_string();
    [
        ("action", "shutdown"),
        ("confirmed", "yes"),
        ("snapshot_name", "matrix2"),
        ("name", "matrix2"),
        ("reason", "no"),
        ("machine", machine.as_str()),
        ("language", "fr"),
        ("password", "matrix-password-123"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn refused(status: u16) -> bool {
    status == 403 || status == 404
}

#[tokio::test]
async fn another_users_things_are_refused_on_every_route_and_nothing_changes() {
    let w = world().await;
    let app = &w.desk.app;
    let bob = &w.bob;
    let mut checked = 0;

    // The API, from its OpenAPI document: every operation with a path parameter.
    let spec: Value = serde_json::from_str(&proxdesk::http::api::spec_json()).unwrap();
    for (pattern, ops) in spec["paths"].as_object().unwrap() {
        if !pattern.contains('{') {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            for url in w.fill(pattern) {
                let before = w.fingerprint().await;
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let r = app
                    .api
                    .request(m, app.url(&format!("/api/v1{url}")))
                    .bearer_auth(&bob.token)
                    .json(&api_body(&w, pattern))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                assert!(refused(status), "API {method} {url} answered bob {status}: {}", r.text().await.unwrap());
                assert_unchanged(&before, &w.fingerprint().await, &format!("bob's API {method} {url}"));
                checked += 1;
            }
        }
    }

    // The pages, from their route table: every page with a path parameter, GET and POST.
    let browser = app.logged_in("bob", &bob.password).await;
    let csrf = browser.csrf("/profile").await;
    for (method, pattern) in proxdesk::http::pages::page_routes() {
        if !pattern.contains(':') || pattern.starts_with("/static/") {
            continue;
        }
        for url in w.fill(pattern) {
            let before = w.fingerprint().await;
            let r = if method == Method::GET {
                browser.get(&url).await
            } else {
                let mut fields = page_fields(&w);
                fields.push(("csrf".into(), csrf.clone()));
                browser.post_raw(&url, &fields).await
            };
            let status = r.status().as_u16();
            assert!(refused(status), "page {method} {url} answered bob {status}");
            // Refused for being alice's, not for a form proxdesk would refuse anyway.
            assert!(!r.text().await.unwrap().contains("did not come from proxdesk"), "{url}: bob's form was refused");
            assert_unchanged(&before, &w.fingerprint().await, &format!("bob's page {method} {url}"));
            checked += 1;
        }
    }

    // The console websockets, from theirs: with bob's session, and with console URLs bob was issued
    // for his own machine.
    let mut bob_urls = Vec::new();
    for kind in ["vnc", "terminal"] {
        let body = json!({"kind": kind});
        let r = app.post(&bob.token, &format!("/api/v1/machines/{}/console", w.bob_machine), body).await;
        assert_eq!(r.status(), 200, "bob's own console URL");
        let url: String = r.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
        bob_urls.push(url.split_once('?').expect("a token in the URL").1.to_owned());
    }
    let origin = Some(app.address.as_str());
    for pattern in proxdesk::http::console_socket_routes() {
        for url in w.fill(pattern) {
            let before = w.fingerprint().await;
            let status = refused_status(connect(app, &url, Some(&bob.session), origin).await);
            assert!(refused(status), "websocket {url} answered bob's session {status}");
            for query in &bob_urls {
                let status = refused_status(connect(app, &format!("{url}?{query}"), None, origin).await);
                assert!(status == 401 || refused(status), "websocket {url} took bob's console URL ({status})");
            }
            assert_unchanged(&before, &w.fingerprint().await, &format!("bob's websocket {url}"));
            checked += 1;
        }
    }
    println!("ownership matrix: {checked} route fills checked");
    assert!(checked >= 60, "only {checked} routes checked");
    bulk_runs_refuse_another_users_machine(&w).await;
}

/// The bulk routes take machine ids in their body: another user's machine is refused as not found.
async fn bulk_runs_refuse_another_users_machine(w: &World) {
    let app = &w.desk.app;
    let before = w.fingerprint().await;

    let r = app.post(&w.bob.token, "/api/v1/machines/bulk", json!({"action": "stop", "machine_ids": [w.machine]})).await;
    assert_eq!(r.status(), 202);
    let run = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let browser = app.logged_in("bob", &w.bob.password).await;
    let machine = w.machine.to_string();
    let fields = [("action", "stop"), ("machine", machine.as_str()), ("confirmed", "yes")];
    let r = browser.post_form("/machines", "/machines/bulk", &fields).await;
    assert_eq!(r.status(), 303);
    let page_run: i64 = r.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();

    for id in [run, page_run] {
        let v: Value = app.get(&w.bob.token, &format!("/api/v1/machines/bulk/{id}")).await.json().await.unwrap();
        assert_eq!(v["items"][0]["state"], "refused", "{v}");
        assert_eq!(v["items"][0]["reason"], "not_found", "{v}");
    }
    let after = w.fingerprint().await;
    assert_eq!(before.machines, after.machines, "alice's machine changed");
    assert_eq!(before.pve_writes, after.pve_writes, "PVE was asked to do something");
}
