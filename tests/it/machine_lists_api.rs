//! `GET /api/v1/machines` with the lists' filters: name, VMID, live state, node, catalog entry and (for
//! admins) owner, with their bounds declared and enforced; a user never sees another's machine.

use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::provision::{app_with_cluster, approved_request, settle};

async fn ready(app: &TestApp, token: &str, admin: &str, template: i64, hostname: &str) -> (i64, u64) {
    let id = app.submit_ok(token, template, hostname).await;
    let r = app.post(admin, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(settle(app, token, id).await["status"], "ready");
    let m = proxdesk::services::machines::of_request(&app.db, id).await.unwrap().unwrap();
    (m.id, m.vmid.unwrap() as u64)
}

/// The host names a list answer shows, and the answer.
async fn names(app: &TestApp, token: &str, query: &str) -> (Vec<String>, Value) {
    let r = app.get(token, &format!("/api/v1/machines?{query}")).await;
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    let page: Value = r.json().await.unwrap();
    let names = page["items"].as_array().unwrap().iter().map(|m| m["hostname"].as_str().unwrap().to_owned()).collect();
    (names, page)
}

#[tokio::test]
async fn the_api_list_filters_like_the_pages_and_declares_its_bounds() {
    let (app, sim) = app_with_cluster(None).await;
    let (alice_t, first) = approved_request(&app, "none").await;
    assert_eq!(settle(&app, &alice_t, first).await["status"], "ready");
    let request: Value = app.get(&alice_t, &format!("/api/v1/requests/{first}")).await.json().await.unwrap();
    let tpl = request["template_id"].as_i64().unwrap();
    let (ada, _) = app.user("ada", Role::Admin).await;
    let admin_t = app.token(&ada).await;
    let (bob, _) = app.user("bob", Role::User).await;
    let bob_t = app.token(&bob).await;
    let (lab2, lab2_vmid) = ready(&app, &alice_t, &admin_t, tpl, "lab-2").await;
    ready(&app, &bob_t, &admin_t, tpl, "web-1").await;

    let r = app.post(&alice_t, &format!("/api/v1/machines/{lab2}/stop"), json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let until = Instant::now() + Duration::from_secs(10);
    while sim.state().guests[&lab2_vmid].running {
        assert!(Instant::now() < until, "lab-2 never stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (all, page) = names(&app, &alice_t, "").await;
    assert_eq!(all, ["lab-2", "lab-1"], "newest first, alice's only");
    assert_eq!(page["items"][0]["state"], "stopped");
    assert_eq!(page["items"][1]["state"], "running");
    assert_eq!(page["items"][0]["template_id"], tpl);
    assert_eq!(names(&app, &alice_t, "state=stopped").await.0, ["lab-2"]);
    assert_eq!(names(&app, &alice_t, "state=running").await.0, ["lab-1"]);
    assert_eq!(names(&app, &alice_t, "name=LAB-1").await.0, ["lab-1"], "any case");
    assert_eq!(names(&app, &alice_t, &format!("vmid={lab2_vmid}")).await.0, ["lab-2"]);
    assert!(names(&app, &alice_t, "node=pve3").await.0.is_empty());
    assert_eq!(
        names(&app, &alice_t, &format!("template_id={tpl}&limit=1")).await.1["items"].as_array().unwrap().len(),
        1
    );
    let (one, page) = names(&app, &alice_t, "limit=1").await;
    let (two, _) = names(&app, &alice_t, &format!("limit=1&cursor={}", page["next_cursor"])).await;
    assert_eq!([one, two].concat(), ["lab-2", "lab-1"], "keyset pages");

    // Another user's machines never show, whatever the filter; admins see them, and filter by owner.
    assert!(names(&app, &alice_t, "name=web").await.0.is_empty());
    assert!(names(&app, &alice_t, &format!("user_id={}", bob.id)).await.0.iter().all(|n| n != "web-1"));
    assert_eq!(names(&app, &admin_t, &format!("user_id={}", bob.id)).await.0, ["web-1"]);
    assert_eq!(names(&app, &admin_t, "").await.0.len(), 3);

    // Out of bounds: refused with a problem, as the spec declares.
    // A LIKE wildcard is not a name, nor is anything but ASCII letters, digits, `-`, `.` and `_`.
    for bad in ["vmid=99", "limit=0", "limit=101", "state=paused", "name=a%25b", "name=%C3%A9t%C3%A9", "node=pve%201"] {
        let r = app.get(&alice_t, &format!("/api/v1/machines?{bad}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let spec: Value = serde_json::from_str(&proxdesk::http::api::spec_json()).unwrap();
    let params = spec["paths"]["/machines"]["get"]["parameters"].as_array().unwrap();
    let vmid = params.iter().find(|p| p["name"] == "vmid").unwrap();
    assert_eq!(vmid["schema"]["minimum"], 100.0, "{vmid}");
    let name = params.iter().find(|p| p["name"] == "name").unwrap();
    assert_eq!(name["schema"]["pattern"], "^[A-Za-z0-9._-]*$", "{name}");
}
