//! The admin queue: bulk decisions that say what they did (and refuse to pretend), per-row approve and
//! reject, and refused approvals that keep the admin's typed values and mark the field, on the queue and
//! on the request's page.

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Browser, TestApp, csrf_in, spawn_app};

struct Queue {
    app: TestApp,
    admin: Browser,
    alice_t: String,
    tpl: i64,
}

async fn queue() -> Queue {
    let app = spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let alice_t = app.token(&alice).await;
    let tpl = app.template("Debian").await;
    let admin = app.logged_in("chief", &pw).await;
    Queue { app, admin, alice_t, tpl }
}

impl Queue {
    async fn status(&self, id: i64) -> String {
        let body: Value = self.app.get(&self.alice_t, &format!("/api/v1/requests/{id}")).await.json().await.unwrap();
        body["status"].as_str().unwrap().to_owned()
    }

    async fn resources(&self, id: i64) -> (i64, i64, i64) {
        let b: Value = self.app.get(&self.alice_t, &format!("/api/v1/requests/{id}")).await.json().await.unwrap();
        (b["cores"].as_i64().unwrap(), b["memory_mib"].as_i64().unwrap(), b["disk_gib"].as_i64().unwrap())
    }
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn bulk_with_nothing_selected_decides_nothing_and_says_so() {
    let q = queue().await;
    let id = q.app.submit_ok(&q.alice_t, q.tpl, "web1").await;
    for action in ["approve", "reject"] {
        let r = q
            .admin
            .post_form(
                "/admin/requests",
                "/admin/requests/bulk",
                &[("action", action), ("reason", "no"), ("return_to", "/admin/requests?status=pending")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{action}");
        let html = r.text().await.unwrap();
        assert!(html.contains("No request is selected"), "{html}");
        assert!(!html.contains("approved.") && !html.contains("rejected."), "no success claimed: {html}");
    }
    assert_eq!(q.status(id).await, "pending");
}

#[tokio::test]
async fn bulk_approval_counts_what_it_decided_and_a_rejection_needs_a_reason() {
    let q = queue().await;
    let a = q.app.submit_ok(&q.alice_t, q.tpl, "web1").await;
    let b = q.app.submit_ok(&q.alice_t, q.tpl, "web2").await;
    let html = q.admin.get("/admin/requests").await.text().await.unwrap();
    assert!(html.contains("data-select-all=\"ids\""), "select-all box");
    let csrf = csrf_in(&html).unwrap();
    let post = |fields: Vec<(&str, String)>| {
        let mut f: Vec<(String, String)> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        f.push(("csrf".into(), csrf.clone()));
        f.push(("return_to".into(), "/admin/requests?status=pending".into()));
        f
    };
    let r = q
        .admin
        .post_raw("/admin/requests/bulk", &post(vec![("ids", a.to_string()), ("action", "reject".into())]))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("this field is required"), "{html}");
    assert!(html.contains(&format!("id=\"sel-{a}\" checked")), "the ticked request stays ticked: {html}");
    assert_eq!(q.status(a).await, "pending");

    let fields =
        post(vec![("ids", a.to_string()), ("ids", b.to_string()), ("ids", "999".into()), ("action", "approve".into())]);
    let r = q.admin.post_raw("/admin/requests/bulk", &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = q.admin.get(&location(&r)).await.text().await.unwrap();
    assert!(html.contains("2 of 3 selected requests approved"), "{html}");
    assert_eq!((q.status(a).await, q.status(b).await), ("approved".into(), "approved".into()));
}

#[tokio::test]
async fn a_bulk_form_without_a_known_action_or_with_a_tampered_id_decides_nothing() {
    let q = queue().await;
    let a = q.app.submit_ok(&q.alice_t, q.tpl, "web1").await;
    let html = q.admin.get("/admin/requests").await.text().await.unwrap();
    let csrf = csrf_in(&html).unwrap();
    for fields in [
        vec![("ids", a.to_string())],
        vec![("ids", a.to_string()), ("action", "approve-all".into())],
        vec![("ids", a.to_string()), ("ids", format!("{a}x")), ("action", "approve".into())],
        vec![("ids", "-1".into()), ("ids", a.to_string()), ("action", "approve".into())],
    ] {
        let mut f: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        f.push(("csrf".into(), csrf.clone()));
        let r = q.admin.post_raw("/admin/requests/bulk", &f).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{fields:?}");
        assert_eq!(q.status(a).await, "pending", "{fields:?}");
    }
}

#[tokio::test]
async fn each_row_approves_with_its_adjustments_or_rejects_and_comes_back_to_the_queue() {
    let q = queue().await;
    let a = q.app.submit_ok(&q.alice_t, q.tpl, "web1").await;
    let b = q.app.submit_ok(&q.alice_t, q.tpl, "web2").await;
    let page = "/admin/requests?status=pending&q=web";
    let html = q.admin.get(page).await.text().await.unwrap();
    // Each row carries its own forms, with the template's limits on the inputs.
    assert!(html.contains(&format!("action=\"/admin/requests/{a}/approve\"")), "{html}");
    assert!(html.contains(&format!("action=\"/admin/requests/{b}/reject\"")));
    assert!(
        html.contains(&format!("id=\"r{a}-cores\" name=\"cores\" type=\"number\" value=\"1\" min=\"1\" max=\"4\"")),
        "{html}"
    );
    assert!(html.contains("<span class=\"kind\"") && html.contains(">testing<"), "kind sign and purpose");

    let r = q
        .admin
        .post_form(
            page,
            &format!("/admin/requests/{a}/approve"),
            &[("cores", "3"), ("memory_mib", "2048"), ("disk_gib", "16"), ("return_to", page)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&r).starts_with("/admin/requests?status=pending&") && location(&r).ends_with("done=approved"),
        "{}",
        location(&r)
    );
    assert!(location(&r).contains("q=web"), "filters kept");
    assert_eq!(q.status(a).await, "approved");
    assert_eq!(q.resources(a).await, (3, 2048, 16));

    let r = q
        .admin
        .post_form(page, &format!("/admin/requests/{b}/reject"), &[("reason", "not this term"), ("return_to", page)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(q.status(b).await, "rejected");
}

#[tokio::test]
async fn approving_above_the_template_limit_keeps_the_typed_values_and_marks_the_field() {
    let q = queue().await;
    let id = q.app.submit_ok(&q.alice_t, q.tpl, "web1").await;
    let page = "/admin/requests?status=pending";
    // On the queue: the row opens with the typed values and the field in error.
    let r = q
        .admin
        .post_form(
            page,
            &format!("/admin/requests/{id}/approve"),
            &[("cores", "9"), ("memory_mib", "3000"), ("disk_gib", "20"), ("return_to", page)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("id=\"r{id}-cores\" name=\"cores\" type=\"number\" value=\"9\"")), "{html}");
    assert!(html.contains("value=\"3000\"") && html.contains("value=\"20\""), "other typed values kept");
    assert!(html.contains("aria-invalid=\"true\"") && html.contains("at most 4 for this template"), "{html}");
    assert!(html.contains("<details open>"), "the row's adjustments are open");
    assert_eq!(q.status(id).await, "pending");

    // On the request's page: the same, in its decision form.
    let detail = format!("/requests/{id}");
    let r = q
        .admin
        .post_form(
            &detail,
            &format!("/admin/requests/{id}/approve"),
            &[("cores", "2"), ("memory_mib", "9999"), ("disk_gib", "8")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"f-memory_mib\" name=\"memory_mib\" type=\"number\" value=\"9999\""), "{html}");
    assert!(html.contains("id=\"f-cores\" name=\"cores\" type=\"number\" value=\"2\""), "{html}");
    assert!(html.contains("at most 4096 for this template"), "{html}");
    assert_eq!(q.resources(id).await, (1, 512, 8));
    // An unreadable number is a field error too, with what was typed.
    let r = q
        .admin
        .post_form(
            &detail,
            &format!("/admin/requests/{id}/approve"),
            &[("cores", "two"), ("memory_mib", "512"), ("disk_gib", "8")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("value=\"two\"") && html.contains("must be a whole number"), "{html}");
    assert_eq!(q.status(id).await, "pending");
}
