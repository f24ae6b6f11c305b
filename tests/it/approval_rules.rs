//! Automatic approval rules through the API and the pages: a covered request is approved at once as
//! policy and provisioned by the real job engine against the PVE simulator; anything a rule does not
//! cover waits for a person.

use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::SimConfig;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::console_fixtures::app_on;
use crate::helpers::{TestApp, spawn_app};
use crate::provision::settle;

struct Desk {
    app: TestApp,
    admin: String,
    alice: String,
    alice_id: i64,
    entry: i64,
}

async fn desk(app: TestApp) -> Desk {
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let entry = app.template_at("Debian", "pve1", 9000, "none").await;
    let admin_token = app.token(&admin).await;
    // Room for every request the tests make: the quota is not what they are about.
    let quota = json!({"max_machines": 20, "max_cores": 64, "max_memory_mib": 65536, "max_disk_gib": 1000});
    let r = app.api.put(app.url(&format!("/api/v1/users/{}/quota", alice.id))).bearer_auth(&admin_token);
    assert_eq!(r.json(&quota).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    Desk { admin: admin_token, alice: app.token(&alice).await, alice_id: alice.id, entry, app }
}

impl Desk {
    async fn rule(&self, body: Value) -> Value {
        let r = self.app.post(&self.admin, "/api/v1/admin/approval-rules", body).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// Alice asks for `cores` cores; returns the request as the API answers.
    async fn ask(&self, hostname: &str, cores: i32) -> Value {
        let body = json!({"template_id": self.entry, "hostname": hostname, "cores": cores, "memory_mib": 1024,
            "disk_gib": 8, "purpose": "lab work"});
        let r = self.app.post(&self.alice, "/api/v1/requests", body).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }
}

#[tokio::test]
async fn a_covered_request_is_approved_at_once_as_policy_and_becomes_ready() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let d = desk(app).await;
    let rule = d
        .rule(json!({"name": "small lab boxes", "template_id": d.entry, "role": "user", "max_cores": 2,
        "max_memory_mib": 2048, "max_disk_gib": 16}))
        .await;

    let r = d.ask("lab-1", 2).await;
    assert_eq!(r["status"], "approved", "{r}");
    assert_eq!(r["approved_by_rule"], json!({"id": rule["id"], "name": "small lab boxes"}));
    // The approval is in the timeline as policy: no person, the rule named.
    let approved = r["timeline"].as_array().unwrap().iter().find(|e| e["action"] == "request.approved").unwrap();
    assert_eq!(approved["actor"], "policy", "{approved}");
    assert_eq!(approved["details"]["rule"], "small lab boxes", "{approved}");

    let done = settle(&d.app, &d.alice, r["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(sim.state().containers().into_iter().filter(|g| !g.is_template()).count(), 1);

    // Admins see which requests the rule approved: by filter, in the rule, on the queue page.
    let by_rule: Value =
        d.app.get(&d.admin, &format!("/api/v1/requests?approved_by_rule={}", rule["id"])).await.json().await.unwrap();
    assert_eq!(by_rule["items"].as_array().unwrap().len(), 1);
    let person = d.ask("lab-2", 4).await;
    assert_eq!(person["status"], "pending", "4 cores are beyond the rule");
    let listed: Value = d.app.get(&d.admin, "/api/v1/admin/approval-rules").await.json().await.unwrap();
    assert_eq!(listed[0]["approved_requests"], 1);
    let b = d.app.logged_in("chief", "chief-password-123").await;
    let html = b.get(&format!("/admin/requests?status=all&rule={}", rule["id"])).await.text().await.unwrap();
    assert!(html.contains("lab-1") && html.contains("by rule small lab boxes"), "{html}");
    assert!(!html.contains("lab-2"), "only the rule's requests");
}

#[tokio::test]
async fn what_no_rule_covers_waits_in_the_queue() {
    // On the simulator, so what a rule approves provisions and keeps holding quota (the count is exact).
    let (app, _sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let d = desk(app).await;
    let other = d.app.template_at("Ubuntu", "pve1", 9001, "none").await;
    let (bob, _) = d.app.user("bob", Role::User).await;
    let base = json!({"template_id": d.entry, "max_cores": 2});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    let rules = [
        with(json!({"name": "admins only", "role": "admin"})),
        with(json!({"name": "other entry", "template_id": other})),
        with(json!({"name": "bob only", "user_ids": [bob.id]})),
        with(json!({"name": "switched off", "enabled": false})),
    ];
    for body in rules {
        let rule = d.rule(body.clone()).await;
        let r = d.ask(&format!("lab-{}", rule["id"]), 1).await;
        assert_eq!(r["status"], "pending", "{body}: {r}");
        assert!(r.get("approved_by_rule").is_none(), "{r}");
        let r = d.app.api.delete(d.app.url(&format!("/api/v1/admin/approval-rules/{}", rule["id"])));
        assert_eq!(r.bearer_auth(&d.admin).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    }

    // A listed user, up to the count: the rule counts the machines of its entry alice holds.
    let rule = d.rule(with(json!({"name": "alice, five at most", "user_ids": [d.alice_id], "max_machines": 5}))).await;
    let held = 4; // the four pending requests above hold quota and are of this entry
    assert_eq!(d.ask("lab-count-1", 1).await["status"], "approved", "machine {} of 5", held + 1);
    assert_eq!(d.ask("lab-count-2", 1).await["status"], "pending", "a sixth is beyond the rule");
    let listed: Value =
        d.app.get(&d.admin, &format!("/api/v1/admin/approval-rules/{}", rule["id"])).await.json().await.unwrap();
    assert_eq!(listed["usernames"], json!(["alice"]));
    assert_eq!(listed["approved_requests"], 1);
    let r = d.app.api.delete(d.app.url(&format!("/api/v1/admin/approval-rules/{}", rule["id"])));
    assert_eq!(r.bearer_auth(&d.admin).send().await.unwrap().status(), StatusCode::NO_CONTENT);

    // A listed group covers its members: bob's group, then alice in it too. The group cannot go while
    // the rule names it (the rule would then cover everyone).
    let r = d.app.post(&d.admin, "/api/v1/admin/groups", json!({"name": "lab"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let group = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let member = |user: i64| d.app.api.put(d.app.url(&format!("/api/v1/admin/groups/{group}/members/{user}")));
    assert!(member(bob.id).bearer_auth(&d.admin).send().await.unwrap().status().is_success());
    let rule = d.rule(with(json!({"name": "lab members", "group_ids": [group]}))).await;
    assert_eq!(rule["group_names"], json!(["lab"]));
    assert_eq!(d.ask("lab-not-member", 1).await["status"], "pending", "alice is not in the group yet");
    assert!(member(d.alice_id).bearer_auth(&d.admin).send().await.unwrap().status().is_success());
    assert_eq!(d.ask("lab-member", 1).await["status"], "approved");
    let r = d.app.api.delete(d.app.url(&format!("/api/v1/admin/groups/{group}"))).bearer_auth(&d.admin);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::CONFLICT);
    let r = d.app.api.delete(d.app.url(&format!("/api/v1/admin/approval-rules/{}", rule["id"])));
    assert_eq!(r.bearer_auth(&d.admin).send().await.unwrap().status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn rules_are_for_admins_and_bad_rules_are_refused_field_by_field() {
    let d = desk(spawn_app().await).await;
    let r = d.app.get(&d.alice, "/api/v1/admin/approval-rules").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = d.app.post(&d.alice, "/api/v1/admin/approval-rules", json!({"name": "mine"})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let bad = json!({"name": "x", "template_id": 999, "user_ids": [999]});
    let r = d.app.post(&d.admin, "/api/v1/admin/approval-rules", bad).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["template_id", "users"], "{problem}");
    d.rule(json!({"name": "taken"})).await;
    let r = d.app.post(&d.admin, "/api/v1/admin/approval-rules", json!({"name": "taken"})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = d.app.post(&d.admin, "/api/v1/admin/approval-rules", json!({"name": "zero", "max_cores": 0})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "below the declared minimum");

    // The page: a refused form keeps what was typed and says what is wrong; a good one is saved.
    let b = d.app.logged_in("chief", "chief-password-123").await;
    let typed = [("name", "course boxes"), ("max_cores", "two"), ("users", "alice, nobody"), ("enabled", "on")];
    let r = b.post_form("/admin/approval-rules", "/admin/approval-rules", &typed).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("value=\"course boxes\"") && html.contains("value=\"alice, nobody\""), "{html}");
    assert!(html.contains("no account is named nobody"), "{html}");
    let entry = d.entry.to_string();
    let good = [
        ("name", "course boxes"),
        ("template_id", entry.as_str()),
        ("max_cores", "2"),
        ("users", "alice"),
        ("enabled", "on"),
    ];
    let r = b.post_form("/admin/approval-rules", "/admin/approval-rules", &good).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let list: Value = d.app.get(&d.admin, "/api/v1/admin/approval-rules").await.json().await.unwrap();
    let saved = list.as_array().unwrap().iter().find(|r| r["name"] == "course boxes").unwrap().clone();
    assert_eq!((saved["max_cores"].clone(), saved["usernames"].clone()), (json!(2), json!(["alice"])));
    let page = format!("/admin/approval-rules/{}", saved["id"]);
    let r = b.post_form(&page, &page, &[("name", "course boxes"), ("max_cores", "3")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let now: Value =
        d.app.get(&d.admin, &format!("/api/v1/admin/approval-rules/{}", saved["id"])).await.json().await.unwrap();
    assert_eq!(
        (now["max_cores"].clone(), now["enabled"].clone(), now["usernames"].clone()),
        (json!(3), json!(false), json!([]))
    );
    let r = b.post_form(&page, &format!("{page}/delete"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = d.app.get(&d.admin, &format!("/api/v1/admin/approval-rules/{}", saved["id"])).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let audit: Vec<String> = entities::audit_entry::Entity::find()
        .all(&d.app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.subject_type == "approval_rule")
        .map(|e| e.action)
        .collect();
    assert!(audit.ends_with(&[
        "approval_rule.created".into(),
        "approval_rule.updated".into(),
        "approval_rule.deleted".into()
    ]));
}
