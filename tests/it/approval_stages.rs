//! Approval stages: an entry naming groups in order makes its requests wait for a member of each group
//! in turn; the last approval provisions the machine. Members decide without being admins, each approver
//! acts once, a rejection at any stage ends the request, and two approvers of one stage have one winner.

use std::time::Duration;

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::ui_fixtures::{Desk, Person, desk, person};

/// The desk with the groups `teachers` (tina, tom, dana) and `it` (ivan, iris, dana), an entry "Course VM"
/// needing a teacher's then IT's approval, and bob, a user in no group.
struct Staged {
    desk: Desk,
    entry: i64,
    tina: Person,
    tom: Person,
    ivan: Person,
    iris: Person,
    dana: Person,
    bob: Person,
}

async fn staged() -> Staged {
    let desk = desk().await;
    let app = &desk.app;
    let [tina, tom, ivan, iris, dana, bob] = [
        person(app, "tina", Role::User).await,
        person(app, "tom", Role::User).await,
        person(app, "ivan", Role::User).await,
        person(app, "iris", Role::User).await,
        person(app, "dana", Role::User).await,
        person(app, "bob", Role::User).await,
    ];
    app.group("teachers", &[tina.id, tom.id, dana.id]).await;
    app.group("it", &[ivan.id, iris.id, dana.id]).await;
    let entry = app.staged_template("Course VM", &["teachers", "it"]).await;
    Staged { desk, entry, tina, tom, ivan, iris, dana, bob }
}

impl Staged {
    /// Alice asks for a machine of the staged entry.
    async fn submit(&self, hostname: &str) -> i64 {
        let body = json!({"template_id": self.entry, "hostname": hostname, "cores": 1, "memory_mib": 512,
            "disk_gib": 8, "purpose": "coursework"});
        let r = self.desk.app.post(&self.desk.alice.token, "/api/v1/requests", body).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    async fn approve(&self, who: &Person, id: i64) -> reqwest::Response {
        self.desk.app.post(&who.token, &format!("/api/v1/requests/{id}/approve"), json!({})).await
    }

    async fn reject(&self, who: &Person, id: i64) -> reqwest::Response {
        self.desk.app.post(&who.token, &format!("/api/v1/requests/{id}/reject"), json!({"reason": "not now"})).await
    }

    async fn read(&self, who: &Person, id: i64) -> reqwest::Response {
        self.desk.app.get(&who.token, &format!("/api/v1/requests/{id}")).await
    }

    async fn waiting_for(&self, who: &Person) -> Vec<i64> {
        let page: Value = self.desk.app.get(&who.token, "/api/v1/approvals").await.json().await.unwrap();
        page["items"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
    }

    async fn count(&self, action: &str, id: i64) -> u64 {
        entities::audit_entry::Entity::find()
            .filter(entities::audit_entry::Column::SubjectId.eq(id))
            .filter(entities::audit_entry::Column::Action.eq(action))
            .count(&self.desk.app.db)
            .await
            .unwrap()
    }

    /// The provisioning jobs of request `id` (notifications are jobs too, and are not counted).
    async fn jobs_for(&self, id: i64) -> usize {
        let jobs = jobs::entity::Entity::find().all(&self.desk.app.db).await.unwrap();
        let payload = format!("\"request_id\":{id}");
        jobs.iter().filter(|j| j.kind == "provision" && j.payload.contains(&payload)).count()
    }

    async fn row(&self, id: i64) -> entities::request::Model {
        entities::request::Entity::find_by_id(id).one(&self.desk.app.db).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn a_teacher_then_it_approve_and_the_machine_is_provisioned() {
    let s = staged().await;
    let id = s.submit("course1").await;
    let r: Value = s.desk.request(id).await;
    assert_eq!(r["approval"]["stage"], 1, "{r}");
    assert_eq!(r["approval"]["stage_count"], 2);
    assert_eq!(r["approval"]["waiting_group"], "teachers");
    assert_eq!(r["approval"]["stages"], json!(["teachers", "it"]));
    assert_eq!(s.waiting_for(&s.tina).await, [id], "the teachers see it waiting");
    assert!(s.waiting_for(&s.ivan).await.is_empty(), "IT's turn has not come");
    assert_eq!(s.read(&s.tina, id).await.status(), StatusCode::OK, "a teacher may read it");
    assert_eq!(s.read(&s.ivan, id).await.status(), StatusCode::NOT_FOUND, "IT may not yet");

    let r = s.approve(&s.tina, id).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "pending", "{body}");
    assert_eq!(body["approval"]["stage"], 2);
    assert_eq!(body["approval"]["waiting_group"], "it");
    assert_eq!(body["approval"]["approvals"][0]["username"], "tina");
    assert_eq!(body["approval"]["approvals"][0]["group"], "teachers");
    assert_eq!(s.row(id).await.stage, 1);
    assert_eq!(s.count("request.stage_approved", id).await, 1);
    assert_eq!(s.jobs_for(id).await, 0, "nothing is provisioned before the last stage");
    let entry = entities::audit_entry::Entity::find()
        .filter(entities::audit_entry::Column::Action.eq("request.stage_approved"))
        .one(&s.desk.app.db)
        .await
        .unwrap()
        .unwrap();
    let details: Value = serde_json::from_str(&entry.details).unwrap();
    assert_eq!((details["stage"].clone(), details["group"].clone()), (json!(1), json!("teachers")), "{details}");
    assert!(details.get("admin_override").is_none(), "a member's approval is no override: {details}");
    assert_eq!(s.read(&s.tina, id).await.status(), StatusCode::NOT_FOUND, "the teachers' turn is over");
    assert_eq!(s.waiting_for(&s.ivan).await, [id]);

    let r = s.approve(&s.ivan, id).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "approved");
    assert_eq!(s.jobs_for(id).await, 1, "one provision job");
    let done = s.desk.wait_status(id, &["ready", "failed"], Duration::from_secs(30)).await;
    assert_eq!(done["status"], "ready", "{done}");
    let names: Vec<&str> =
        done["approval"]["approvals"].as_array().unwrap().iter().map(|a| a["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["tina", "ivan"]);
    assert!(done["approval"].get("waiting_group").is_none(), "nobody is waited for once decided: {done}");
    let row = s.row(id).await;
    assert_eq!(row.decided_by, Some(s.ivan.id));
    let recorded = entities::request_approval::Entity::find()
        .filter(entities::request_approval::Column::RequestId.eq(id))
        .count(&s.desk.app.db)
        .await
        .unwrap();
    assert_eq!(recorded, 2);
}

#[tokio::test]
async fn someone_outside_the_stage_group_is_refused_and_nothing_changes() {
    let s = staged().await;
    let id = s.submit("course2").await;
    let before = s.row(id).await;
    let audit_before = entities::audit_entry::Entity::find().count(&s.desk.app.db).await.unwrap();
    // Bob is in no group: not found. IT's turn has not come, and alice owns it: refused.
    for (who, expected) in [(&s.bob, 404), (&s.ivan, 403), (&s.desk.alice, 403)] {
        assert_eq!(s.approve(who, id).await.status().as_u16(), expected, "{} approving", who.name);
        assert_eq!(s.reject(who, id).await.status().as_u16(), expected, "{} rejecting", who.name);
    }
    // A member may not adjust resources: only admins may.
    let r = s.desk.app.post(&s.tina.token, &format!("/api/v1/requests/{id}/approve"), json!({"cores": 2})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Nor cancel it: that is the owner's.
    let r = s.desk.app.post(&s.tina.token, &format!("/api/v1/requests/{id}/cancel"), json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(s.row(id).await, before, "the request is untouched");
    assert_eq!(entities::audit_entry::Entity::find().count(&s.desk.app.db).await.unwrap(), audit_before);
    assert!(s.waiting_for(&s.bob).await.is_empty());
    // The pages say the same.
    let b = s.desk.app.logged_in("bob", &s.bob.password).await;
    assert_eq!(b.post_form("/profile", &format!("/approvals/{id}/approve"), &[]).await.status(), 404);
    assert_eq!(b.get(&format!("/requests/{id}")).await.status(), 404);
    assert_eq!(s.row(id).await, before);
}

#[tokio::test]
async fn a_person_in_both_groups_cannot_approve_both_stages() {
    let s = staged().await;
    let id = s.submit("course3").await;
    let names = |users: Option<Vec<entities::user::Model>>| -> Vec<String> {
        users.unwrap().into_iter().map(|u| u.username).collect()
    };
    let row = s.row(id).await;
    let approvers = proxdesk::services::requests::stages::current_approvers(&s.desk.app.db, &row).await;
    assert_eq!(names(approvers.unwrap()), ["dana", "tina", "tom"]);
    assert_eq!(s.approve(&s.dana, id).await.status(), StatusCode::OK);
    assert_eq!(s.row(id).await.stage, 1);
    let row = s.row(id).await;
    let approvers = proxdesk::services::requests::stages::current_approvers(&s.desk.app.db, &row).await;
    assert_eq!(names(approvers.unwrap()), ["iris", "ivan"], "dana acted already");
    assert!(s.waiting_for(&s.dana).await.is_empty(), "dana's part is done");
    let r = s.approve(&s.dana, id).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "{}", r.text().await.unwrap());
    assert_eq!(s.reject(&s.dana, id).await.status(), StatusCode::CONFLICT, "nor decide it otherwise");
    let row = s.row(id).await;
    assert_eq!((row.status.as_str(), row.stage), ("pending", 1));
    assert_eq!(s.jobs_for(id).await, 0);
    assert_eq!(s.approve(&s.iris, id).await.status(), StatusCode::OK, "another IT member still may");
    assert_ne!(s.row(id).await.status, "pending");
    assert_eq!(s.jobs_for(id).await, 1);
}

#[tokio::test]
async fn a_rejection_at_the_first_stage_ends_the_request() {
    let s = staged().await;
    let id = s.submit("course4").await;
    let r = s.reject(&s.tom, id).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let row = s.row(id).await;
    assert_eq!((row.status.as_str(), row.reason.as_deref()), ("rejected", Some("not now")));
    assert_eq!(row.decided_by, Some(s.tom.id));
    assert_eq!(s.approve(&s.ivan, id).await.status(), StatusCode::CONFLICT, "nothing waits for IT");
    assert!(s.waiting_for(&s.ivan).await.is_empty());
    let r = s.approve(&s.desk.admin, id).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "it is over");
    assert_eq!(s.jobs_for(id).await, 0);
    let details: Value = serde_json::from_str(
        &entities::audit_entry::Entity::find()
            .filter(entities::audit_entry::Column::Action.eq("request.rejected"))
            .one(&s.desk.app.db)
            .await
            .unwrap()
            .unwrap()
            .details,
    )
    .unwrap();
    assert_eq!(details["group"], "teachers", "{details}");
}

#[tokio::test]
async fn two_approvers_of_one_stage_at_once_have_exactly_one_winner() {
    let s = staged().await;
    for round in 0..3 {
        let id = s.submit(&format!("race{round}")).await;
        // Stage 1: two teachers at once.
        let (a, b) = tokio::join!(s.approve(&s.tina, id), s.approve(&s.tom, id));
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}, stage 1");
        assert_eq!(s.row(id).await.stage, 1, "round {round}: moved on once");
        assert_eq!(s.count("request.stage_approved", id).await, 1);
        // The last stage: two IT members at once; one provisioning job.
        let (a, b) = tokio::join!(s.approve(&s.ivan, id), s.approve(&s.iris, id));
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}, stage 2");
        assert_eq!(s.count("request.approved", id).await, 1);
        assert_eq!(s.jobs_for(id).await, 1, "round {round}: one provision job");
        let recorded = entities::request_approval::Entity::find()
            .filter(entities::request_approval::Column::RequestId.eq(id))
            .count(&s.desk.app.db)
            .await
            .unwrap();
        assert_eq!(recorded, 2, "round {round}: one approval per stage");
    }
}

#[tokio::test]
async fn an_admin_may_act_at_any_stage_and_the_audit_says_it_was_an_override() {
    let s = staged().await;
    let id = s.submit("course5").await;
    let r = s.approve(&s.desk.admin, id).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["approval"]["stage"], 2);
    let entry = entities::audit_entry::Entity::find()
        .filter(entities::audit_entry::Column::Action.eq("request.stage_approved"))
        .one(&s.desk.app.db)
        .await
        .unwrap()
        .unwrap();
    let details: Value = serde_json::from_str(&entry.details).unwrap();
    assert_eq!(details["admin_override"], true, "{details}");
    // The queue shows the stage and who may act.
    let b = s.desk.app.logged_in("chief", &s.desk.admin.password).await;
    let html = b.get("/admin/requests").await.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("2/2 · it"), "the queue shows the stage");
    assert!(html.contains("members of it or an administrator"), "and who may act");
}

#[tokio::test]
async fn entries_without_stages_are_decided_by_admins_as_before() {
    let s = staged().await;
    let id = s.desk.submit(&s.desk.alice, "plain1").await;
    let r: Value = s.desk.request(id).await;
    assert!(r.get("approval").is_none(), "no stages, no approval progress: {r}");
    // A group member is no approver of an entry without stages.
    assert_eq!(s.approve(&s.tina, id).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(s.read(&s.tina, id).await.status(), StatusCode::NOT_FOUND);
    assert!(!s.waiting_for(&s.tina).await.contains(&id));
    let r = s.approve(&s.desk.admin, id).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "approved");
    assert_eq!(s.count("request.stage_approved", id).await, 0);
    let recorded = entities::request_approval::Entity::find().count(&s.desk.app.db).await.unwrap();
    assert_eq!(recorded, 0, "nothing recorded for entries without stages");
    assert_eq!(s.row(id).await.stage, 0);
}

#[tokio::test]
async fn a_teacher_decides_from_the_approvals_page() {
    let s = staged().await;
    let id = s.submit("course6").await;
    let b = s.desk.app.logged_in("tina", &s.tina.password).await;
    let html = b.get("/").await.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("href=\"/approvals\""), "approvers have the Approvals link");
    let bobs = s.desk.app.logged_in("bob", &s.bob.password).await.get("/").await.text().await.unwrap();
    let bobs = bobs.replace("&#x2f;", "/");
    assert!(!bobs.contains("href=\"/approvals\""), "people in no stage group do not");
    let page = b.get("/approvals").await.text().await.unwrap().replace("&#x2f;", "/");
    assert!(page.contains("course6") && page.contains("1/2 · teachers"), "the request waits on the page");
    let detail = b.get(&format!("/requests/{id}")).await.text().await.unwrap().replace("&#x2f;", "/");
    assert!(detail.contains(&format!("/approvals/{id}/approve")), "the request page offers the decision");
    // A rejection without a reason is refused with the typed form kept.
    let r = b.post_form("/approvals", &format!("/approvals/{id}/reject"), &[("reason", "  ")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = b.post_form("/approvals", &format!("/approvals/{id}/approve"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/approvals?done=stage_approved");
    assert_eq!(s.row(id).await.stage, 1);
    let page = b.get("/approvals?done=stage_approved").await.text().await.unwrap();
    assert!(!page.contains("course6"), "nothing left for tina");
}

/// 10,000 waiting requests, half at each stage: an approver's list and the admin's list (with each row's
/// stage and approvals) stay page-sized reads. Prints the figures; fails only when a page takes over 2 s.
#[tokio::test]
async fn the_approvals_list_over_ten_thousand_waiting_requests_prints_its_figures() {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    use std::time::Instant;
    let app = crate::helpers::spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (tina, _) = app.user("tina", Role::User).await;
    let (ivan, _) = app.user("ivan", Role::User).await;
    app.group("teachers", &[tina.id]).await;
    app.group("it", &[ivan.id]).await;
    let entry = app.staged_template("Course VM", &["teachers", "it"]).await;
    let now = chrono::Utc::now();
    let rows = (0..10_000).map(|n| entities::request::ActiveModel {
        user_id: Set(alice.id),
        template_id: Set(Some(entry)),
        hostname: Set(format!("h{n}")),
        cores: Set(1),
        memory_mib: Set(512),
        disk_gib: Set(8),
        purpose: Set("load".into()),
        status: Set("pending".into()),
        origin: Set("requested".into()),
        stage: Set(n % 2),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    });
    let rows: Vec<_> = rows.collect();
    for chunk in rows.chunks(500) {
        entities::request::Entity::insert_many(chunk.to_vec()).exec(&app.db).await.unwrap();
    }
    let (tina_t, ivan_t, admin_t) = (app.token(&tina).await, app.token(&ivan).await, app.token(&admin).await);
    let mut figures = vec![];
    for (who, token, path) in [
        ("tina (stage 1)", &tina_t, "/api/v1/approvals?limit=50"),
        ("ivan (stage 2)", &ivan_t, "/api/v1/approvals?limit=50"),
        ("chief, all requests", &admin_t, "/api/v1/requests?limit=50"),
    ] {
        let mut times = vec![];
        let mut page = Value::Null;
        for _ in 0..10 {
            let t = Instant::now();
            page = app.get(token, path).await.json().await.unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 50, "{who}: a full page");
        figures.push(format!(
            "{who}: median {:.1} ms, max {:.1} ms",
            times[5].as_secs_f64() * 1e3,
            times[9].as_secs_f64() * 1e3
        ));
        assert!(times[5].as_secs() < 2, "{who}: {times:?}");
        if path.starts_with("/api/v1/approvals") {
            let wanted = if who.starts_with("tina") { 1 } else { 2 };
            assert!(items.iter().all(|r| r["approval"]["stage"] == wanted), "{who} sees only its stage");
        }
    }
    println!("approvals over 10,000 waiting requests ({:?}): {}", crate::helpers::test_backend(), figures.join("; "));
}
