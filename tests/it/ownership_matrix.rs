//! Ownership, generated from the route tables: every API operation, page, console websocket and
//! console URL that names a machine or a request (or anything else of alice's) answers bob — a plain
//! user — 404 or 403, and changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::console_fixtures::{connect, refused_status};
use crate::matrix_fixtures::{World, assert_unchanged, pve_writes, world};

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
        "machine_ids": [w.machine], "owner": "bob", "password": "matrix-password-123", "days": 7,
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

    // The console websockets, from theirs: with bob's session; with console URLs bob was issued for
    // his own machine; and with alice's console URLs anywhere but where they were issued for (bob's
    // machine, the other kind of console). A refused URL stays unspent.
    let bob_urls = console_urls(w.desk.app.url(""), &bob.token, w.bob_machine).await;
    let alice_urls = console_urls(w.desk.app.url(""), &w.desk.alice.token, w.machine).await;
    let bob_vmid = app
        .get(&bob.token, &format!("/api/v1/machines/{}", w.bob_machine))
        .await
        .json::<Value>()
        .await
        .unwrap()["vmid"]
        .to_string();
    let origin = Some(app.address.as_str());
    for pattern in proxdesk::http::console_socket_routes() {
        let bobs = pattern.replace(":id", &w.bob_machine.to_string()).replace(":vmid", &bob_vmid);
        for url in w.fill(pattern) {
            let before = w.fingerprint().await;
            let status = refused_status(connect(app, &url, Some(&bob.session), origin).await);
            assert!(refused(status), "websocket {url} answered bob's session {status}");
            let tries =
                bob_urls.iter().map(|(_, q)| (url.clone(), q)).chain(alice_urls.iter().flat_map(|(issued, q)| {
                    [(url.clone(), q), (bobs.clone(), q)].into_iter().filter(move |(u, _)| u != issued)
                }));
            for (target, query) in tries {
                let status = refused_status(connect(app, &format!("{target}?{query}"), None, origin).await);
                assert!(
                    status == 401 || refused(status),
                    "websocket {target} took a console URL of {query} ({status})"
                );
            }
            assert_unchanged(&before, &w.fingerprint().await, &format!("bob's websocket {url}"));
            checked += 1;
        }
    }
    // The refusals spent nothing: alice's URL still opens her console where it was issued for.
    let (path, query) = &alice_urls[0];
    let opened = connect(app, &format!("{path}?{query}"), None, origin).await;
    assert!(opened.is_ok(), "alice's console URL was spent by bob's tries: {:?}", opened.err());
    drop(opened);

    println!("ownership matrix: {checked} route fills checked");
    assert!(checked >= 60, "only {checked} routes checked");
    bulk_runs_refuse_another_users_machine(&w).await;
    lists_hide_another_users_things(&w).await;
}

/// Routes without an id in their path may still take one in their query (a list filtered by owner):
/// whatever bob asks, no list shows him alice's requests or machines (her hostnames start `alices`).
async fn lists_hide_another_users_things(w: &World) {
    let app = &w.desk.app;
    let spec: Value = serde_json::from_str(&proxdesk::http::api::spec_json()).unwrap();
    let alice = w.desk.alice.id.to_string();
    let by_name = |name: &str| -> Option<String> {
        match name {
            "user_id" => Some(alice.clone()),
            "owner" | "actor" => Some("alice".into()),
            "subject_id" => Some(w.machine.to_string()),
            "vmid" => Some(w.vmid.to_string()),
            "template_id" => Some(w.desk.template.to_string()),
            _ => None,
        }
    };
    for (pattern, ops) in spec["paths"].as_object().unwrap() {
        let Some(op) = ops.get("get") else { continue };
        if pattern.contains('{') {
            continue;
        }
        let query: Vec<(String, String)> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| by_name(p["name"].as_str().unwrap()).map(|v| (p["name"].as_str().unwrap().to_owned(), v)))
            .collect();
        let r = app.api.get(app.url(&format!("/api/v1{pattern}"))).query(&query).bearer_auth(&w.bob.token).send().await;
        let body = r.unwrap().text().await.unwrap();
        assert!(!body.contains("alices"), "API GET {pattern}?{query:?} shows bob alice's things: {body}");
    }
    let browser = app.logged_in("bob", &w.bob.password).await;
    let query = format!("owner=alice&user_id={alice}&user=alice");
    for (method, pattern) in proxdesk::http::pages::page_routes() {
        if method != Method::GET || pattern.contains(':') {
            continue;
        }
        let r = browser.get(&format!("{pattern}?{query}")).await;
        // The live streams carry fingerprints only, and never end.
        if r.headers().get("content-type").is_some_and(|t| t.to_str().unwrap().starts_with("text/event-stream")) {
            continue;
        }
        let body = r.text().await.unwrap();
        assert!(!body.contains("alices"), "page {pattern}?{query} shows bob alice's things");
    }
}

/// The VNC and terminal console URLs of `machine` issued to `token`'s owner: (path, query).
async fn console_urls(base: String, token: &str, machine: i64) -> Vec<(String, String)> {
    let client = reqwest::Client::new();
    let mut urls = Vec::new();
    for kind in ["vnc", "terminal"] {
        let r = client
            .post(format!("{base}/api/v1/machines/{machine}/console"))
            .bearer_auth(token)
            .json(&json!({"kind": kind}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "a console URL of one's own machine");
        let url: String = r.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
        let path_and_query = &url[url.find("/machines/").expect("a machine console URL")..];
        let (path, query) = path_and_query.split_once('?').expect("a token in the URL");
        urls.push((path.to_owned(), query.to_owned()));
    }
    urls
}

/// The bulk routes take machine ids in their body: another user's machine is refused as not found.
async fn bulk_runs_refuse_another_users_machine(w: &World) {
    let app = &w.desk.app;
    let before = w.fingerprint().await;

    let r =
        app.post(&w.bob.token, "/api/v1/machines/bulk", json!({"action": "stop", "machine_ids": [w.machine]})).await;
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
    assert_eq!(pve_writes(&before.pve_calls), pve_writes(&after.pve_calls), "PVE was asked to do something");
}

#[test]
fn every_route_outside_the_tables_is_a_probe_or_metrics() {
    // Pages and console websockets are added through their tables, which the matrices walk; a route
    // added straight to the top-level router would escape them. `/metrics` takes no machine or request
    // id and answers only to its bearer token (tests/it/metrics.rs proves the 404 and 401).
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/mod.rs")).unwrap();
    let direct: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(".at(\""))
        .map(|l| &l[..l.find('"').unwrap()])
        .collect();
    assert_eq!(direct, ["/healthz", "/metrics", "/readyz"], "routes added outside the page and console tables");
}
