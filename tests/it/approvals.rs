//! Deciding requests: approval enqueues provisioning, races have one winner, illegal moves are 409.

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn approval_moves_the_request_and_enqueues_one_provision_job_in_the_same_transaction() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (admin_t, alice_t) = (app.token(&admin).await, app.token(&alice).await);
    let tpl = app.template("Debian").await;
    let id = app.submit_ok(&alice_t, tpl, "web1").await;

    let r = app.post(&admin_t, &format!("/api/v1/requests/{id}/approve"), json!({"cores": 2})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "approved");
    assert_eq!(body["cores"], 2, "the admin's adjustment is applied");
    let actions: Vec<&str> =
        body["timeline"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["request.created", "request.approved"]);

    // Beside it, only the notifications of the submission and the approval.
    let all = jobs::entity::Entity::find().all(&app.db).await.unwrap();
    let jobs: Vec<_> = all.iter().filter(|j| j.kind != "notify").collect();
    assert_eq!(jobs.len(), 1, "{all:?}");
    assert_eq!(jobs[0].kind, "provision");
    assert_eq!(serde_json::from_str::<Value>(&jobs[0].payload).unwrap(), json!({"request_id": id}));
}

#[tokio::test]
async fn approving_beyond_the_template_maximum_is_refused_with_field_errors() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let tpl = app.template("Debian").await;
    let id = app.submit_ok(&app.token(&alice).await, tpl, "web1").await;
    let r = app.post(&app.token(&admin).await, &format!("/api/v1/requests/{id}/approve"), json!({"cores": 64})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "cores");
    let enqueued = jobs::entity::Entity::find().filter(jobs::entity::Column::Kind.ne("notify")).count(&app.db);
    assert_eq!(enqueued.await.unwrap(), 0, "nothing enqueued");
}

#[tokio::test]
async fn two_admins_deciding_one_request_at_once_have_exactly_one_winner() {
    let app = spawn_app().await;
    let (a1, _) = app.user("chief", Role::Admin).await;
    let (a2, _) = app.user("boss", Role::Admin).await;
    let (requester, _) = app.user("carol", Role::Admin).await;
    let (t1, t2) = (app.token(&a1).await, app.token(&a2).await);
    let tpl = app.template("Debian").await;
    let alice_t = app.token(&requester).await;
    for round in 0..5 {
        let id = app.submit_ok(&alice_t, tpl, &format!("race{round}")).await;
        let (approve_path, reject_path) =
            (format!("/api/v1/requests/{id}/approve"), format!("/api/v1/requests/{id}/reject"));
        let approve = app.post(&t1, &approve_path, json!({}));
        let reject = app.post(&t2, &reject_path, json!({"reason": "no"}));
        let (a, b) = tokio::join!(approve, reject);
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}: one winner, one conflict");
        let decisions = entities::audit_entry::Entity::find()
            .filter(entities::audit_entry::Column::SubjectId.eq(id))
            .filter(entities::audit_entry::Column::Action.is_in(["request.approved", "request.rejected"]))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(decisions, 1, "round {round}: one audit entry for the decision");
        let jobs = jobs::entity::Entity::find().all(&app.db).await.unwrap();
        let approved = a.status() == StatusCode::OK;
        assert_eq!(
            jobs.iter()
                .filter(|j| j.kind == "provision" && j.payload.contains(&format!("\"request_id\":{id}")))
                .count(),
            approved as usize
        );
    }
}

#[tokio::test]
async fn illegal_transitions_answer_409_with_a_stable_problem_type() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (admin_t, alice_t) = (app.token(&admin).await, app.token(&alice).await);
    let tpl = app.template("Debian").await;
    let id = app.submit_ok(&alice_t, tpl, "web1").await;
    assert_eq!(app.post(&alice_t, &format!("/api/v1/requests/{id}/cancel"), json!({})).await.status(), StatusCode::OK);
    for (path, body) in [("approve", json!({})), ("reject", json!({"reason": "x"})), ("retry", json!({}))] {
        let r = app.post(&admin_t, &format!("/api/v1/requests/{id}/{path}"), body).await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["type"], "/problems/illegal-transition");
    }
    let again = app.post(&alice_t, &format!("/api/v1/requests/{id}/cancel"), json!({})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn rejection_needs_a_reason_that_the_requester_sees() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, pw) = app.user("alice", Role::User).await;
    let (admin_t, alice_t) = (app.token(&admin).await, app.token(&alice).await);
    let tpl = app.template("Debian").await;
    let id = app.submit_ok(&alice_t, tpl, "web1").await;
    let r = app.post(&admin_t, &format!("/api/v1/requests/{id}/reject"), json!({"reason": "  "})).await;
    // A blank reason breaks the declared pattern: the framework refuses it before the handler.
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r =
        app.post(&admin_t, &format!("/api/v1/requests/{id}/reject"), json!({"reason": "use the shared lab VM"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = app.logged_in("alice", &pw).await.get(&format!("/requests/{id}")).await.text().await.unwrap();
    assert!(page.contains("use the shared lab VM"));
}

#[tokio::test]
async fn bulk_decisions_report_each_request() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (admin_t, alice_t) = (app.token(&admin).await, app.token(&alice).await);
    let tpl = app.template("Debian").await;
    let a = app.submit_ok(&alice_t, tpl, "a").await;
    let b = app.submit_ok(&alice_t, tpl, "b").await;
    app.post(&alice_t, &format!("/api/v1/requests/{b}/cancel"), json!({})).await;
    let r = app.post(&admin_t, "/api/v1/requests/bulk", json!({"ids": [a, b, 999], "action": "approve"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["results"],
        json!([
            {"id": a, "ok": true},
            {"id": b, "ok": false, "error": "/problems/illegal-transition"},
            {"id": 999, "ok": false, "error": "/problems/not-found"},
        ])
    );
}

#[tokio::test]
async fn the_admin_queue_page_decides_in_bulk_and_lists_oldest_first() {
    let app = spawn_app().await;
    let (_, admin_pw) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let alice_t = app.token(&alice).await;
    let tpl = app.template("Debian").await;
    let first = app.submit_ok(&alice_t, tpl, "first-host").await;
    let second = app.submit_ok(&alice_t, tpl, "second-host").await;
    let b = app.logged_in("chief", &admin_pw).await;
    let html = b.get("/admin/requests").await.text().await.unwrap();
    assert!(html.find("first-host").unwrap() < html.find("second-host").unwrap(), "oldest first");
    let csrf = crate::helpers::csrf_in(&html).unwrap();
    let fields: Vec<(String, String)> = vec![
        ("csrf".into(), csrf),
        ("ids".into(), first.to_string()),
        ("ids".into(), second.to_string()),
        ("reason".into(), "not this term".into()),
        ("action".into(), "reject".into()),
    ];
    let r = b.post_raw("/admin/requests/bulk", &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    for id in [first, second] {
        let body: Value = app.get(&alice_t, &format!("/api/v1/requests/{id}")).await.json().await.unwrap();
        assert_eq!(body["status"], "rejected");
    }
    let filtered = b.get("/admin/requests?status=rejected&q=second").await.text().await.unwrap();
    assert!(filtered.contains("second-host") && !filtered.contains("first-host"));
}

#[tokio::test]
async fn the_request_list_walks_pages_by_cursor_with_owner_and_template_names() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (bob, _) = app.user("bob", Role::User).await;
    let (admin_t, alice_t, bob_t) = (app.token(&admin).await, app.token(&alice).await, app.token(&bob).await);
    let (debian, alpine) = (app.template("Debian").await, app.template_at("Alpine", "pve2", 9001, "node").await);
    let mut expected = vec![];
    for (n, (token, who, tpl, tpl_name)) in [
        (&alice_t, "alice", debian, "Debian"),
        (&bob_t, "bob", alpine, "Alpine"),
        (&alice_t, "alice", alpine, "Alpine"),
    ]
    .into_iter()
    .cycle()
    .take(5)
    .enumerate()
    {
        let id = app.submit_ok(token, tpl, &format!("host-{n}")).await;
        expected.push((id, who.to_owned(), tpl_name.to_owned()));
    }
    expected.reverse();

    let list = |token: String, query: String| {
        let app = &app;
        async move {
            let r = app.get(&token, &format!("/api/v1/requests?{query}")).await;
            assert_eq!(r.status(), StatusCode::OK, "{query}");
            r.json::<Value>().await.unwrap()
        }
    };
    let mut seen = vec![];
    let mut query = "limit=2".to_owned();
    loop {
        let page = list(admin_t.clone(), query.clone()).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        for r in items {
            seen.push((
                r["id"].as_i64().unwrap(),
                r["username"].as_str().unwrap().to_owned(),
                r["template_name"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_i64() {
            Some(c) => query = format!("limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, expected, "newest first, every request once, with its owner's and template's names");

    let mine = list(alice_t, "limit=50".into()).await;
    let names: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|r| r["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice"; 3], "a user lists only their own requests");
    let alpine_only = list(admin_t, format!("template_id={alpine}")).await;
    let templates: Vec<&str> =
        alpine_only["items"].as_array().unwrap().iter().map(|r| r["template_name"].as_str().unwrap()).collect();
    assert_eq!(templates, ["Alpine"; 3]);
}
