//! Machine leases on a controllable clock: each sweep is a `lease_sweep` job enqueued as a cron tick
//! would be (its payload is the tick the sweep is as of), run by the real job engine against the PVE
//! simulator; the steps it hands on (stop, delete) are real jobs too.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use jobs::JobState;
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::SimConfig;
use proxdesk::services::leases;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::console_fixtures::{app_on, ready_machine};
use crate::helpers::TestApp;

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

/// Runs one sweep as of `at` through the job engine, as the cron tick of `at` would, and waits until
/// every job it led to (stop, delete, destroy) has ended.
async fn sweep_at(app: &TestApp, at: DateTime<Utc>) {
    let key = format!("cron:lease_sweep:{}", at.to_rfc3339_opts(SecondsFormat::Secs, true));
    let job = jobs::NewJob::new("lease_sweep", json!({ "at": at })).idempotency_key(key);
    let id = jobs::enqueue(&app.db, job).await.unwrap();
    settle_jobs(app).await;
    let job = jobs::get(&app.db, id).await.unwrap().expect("the sweep job");
    assert_eq!(job.state, JobState::Succeeded, "sweep at {at}: {:?}", job.last_error);
}

async fn settle_jobs(app: &TestApp) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let busy = jobs::entity::Entity::find()
            .filter(jobs::entity::Column::State.is_in(["queued", "running"]))
            .count(&app.db)
            .await
            .unwrap();
        if busy == 0 {
            return;
        }
        assert!(Instant::now() < until, "jobs still running");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The machine's lease and live state as its owner sees them in the API.
async fn machine(app: &TestApp, token: &str, id: i64) -> Value {
    app.get(token, &format!("/api/v1/machines/{id}")).await.json().await.unwrap()
}

fn expiry(m: &Value) -> DateTime<Utc> {
    m["lease"]["expires_at"].as_str().unwrap_or_else(|| panic!("no lease: {m}")).parse().unwrap()
}

/// The machine's lease and power audit actions, in order.
async fn steps(app: &TestApp, id: i64) -> Vec<String> {
    entities::audit_entry::Entity::find()
        .filter(entities::audit_entry::Column::SubjectType.eq("machine"))
        .filter(entities::audit_entry::Column::SubjectId.eq(id))
        .order_by_asc(entities::audit_entry::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("lease.") || a == "machine.stop")
        .collect()
}

async fn request_status(app: &TestApp, token: &str, m: &Value) -> String {
    let r: Value = app.get(token, &format!("/api/v1/requests/{}", m["request_id"])).await.json().await.unwrap();
    r["status"].as_str().unwrap().to_owned()
}

async fn put_lease(app: &TestApp, token: &str, id: i64, body: Value) -> reqwest::Response {
    app.api.put(app.url(&format!("/api/v1/machines/{id}/lease"))).bearer_auth(token).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn warnings_come_once_each_then_the_machine_is_stopped_and_deleted_in_order() {
    let (app, _sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, token, _) = ready_machine(&app).await;
    let m = machine(&app, &token, id).await;
    let exp = expiry(&m);
    let lease_days = (exp - Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.9..=30.0).contains(&lease_days), "the default lease is 30 days: {lease_days}");
    assert_eq!(m["lease"]["warned"], false);

    sweep_at(&app, exp - days(8)).await;
    assert!(steps(&app, id).await.is_empty(), "nothing is due 8 days before");
    sweep_at(&app, exp - days(7)).await;
    sweep_at(&app, exp - days(7)).await; // the same tick again (another replica)
    sweep_at(&app, exp - days(6)).await; // a later tick
    let m = machine(&app, &token, id).await;
    assert_eq!(m["lease"]["warned"], true, "{m}");
    assert_eq!(m["lease"]["stage"], "warned_first");
    assert_eq!(steps(&app, id).await, ["lease.warned"]);

    sweep_at(&app, exp - days(1)).await;
    sweep_at(&app, exp - chrono::Duration::hours(1)).await;
    assert_eq!(steps(&app, id).await, ["lease.warned", "lease.warned"]);
    assert_eq!(machine(&app, &token, id).await["state"], "running");

    sweep_at(&app, exp).await;
    let m = machine(&app, &token, id).await;
    assert_eq!(m["state"], "stopped", "stopped at expiry: {m}");
    assert_eq!(m["lease"]["expired"], true);
    assert_eq!(request_status(&app, &token, &m).await, "ready", "kept during the grace period");
    sweep_at(&app, exp + days(6)).await;
    assert_eq!(steps(&app, id).await, ["lease.warned", "lease.warned", "lease.expired", "machine.stop"]);

    sweep_at(&app, exp + days(7)).await;
    sweep_at(&app, exp + days(8)).await;
    assert_eq!(request_status(&app, &token, &m).await, "deleted", "deleted after the grace period");
    assert_eq!(
        steps(&app, id).await,
        ["lease.warned", "lease.warned", "lease.expired", "machine.stop", "lease.reclaimed"]
    );
    let warned = entities::audit_entry::Entity::find()
        .filter(entities::audit_entry::Column::Action.eq("lease.warned"))
        .all(&app.db)
        .await
        .unwrap();
    assert!(warned.iter().all(|e| e.actor_name == "system"), "the sweep acts as the system");
}

#[tokio::test]
async fn extending_resets_the_warnings_even_for_a_machine_stopped_at_expiry() {
    let (app, _sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, token, _) = ready_machine(&app).await;
    let exp = expiry(&machine(&app, &token, id).await);

    // A sweep that comes late skips the warnings whose time passed and stops the machine.
    sweep_at(&app, exp + days(1)).await;
    assert_eq!(steps(&app, id).await, ["lease.expired", "machine.stop"]);
    assert_eq!(machine(&app, &token, id).await["state"], "stopped");

    // Within the grace period the owner extends it: the lease starts again.
    let r = put_lease(&app, &token, id, json!({"days": 60})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let m = machine(&app, &token, id).await;
    let new_exp = expiry(&m);
    assert_eq!(m["lease"]["stage"], "active");
    assert_eq!(m["lease"]["expired"], false);
    assert!((new_exp - Utc::now() - days(60)).num_minutes().abs() < 2, "{new_exp}");
    assert_eq!(m["state"], "stopped", "it stays stopped until its owner starts it");

    // The old expiry's grace period ends: nothing happens.
    sweep_at(&app, exp + days(7)).await;
    assert_eq!(request_status(&app, &token, &m).await, "ready");
    // The warnings come again before the new expiry, once each.
    sweep_at(&app, new_exp - days(7)).await;
    sweep_at(&app, new_exp - days(1)).await;
    sweep_at(&app, new_exp - chrono::Duration::hours(2)).await;
    assert_eq!(
        steps(&app, id).await,
        ["lease.expired", "machine.stop", "lease.extended", "lease.warned", "lease.warned"]
    );
}

#[tokio::test]
async fn owners_extend_within_the_entrys_policy_and_admins_beyond_it_or_to_no_expiry() {
    let (app, _sim) = app_on(SimConfig::for_tests(), |raw, _| {
        raw.set("lease_default_days", "10");
        raw.set("lease_max_days", "20");
    })
    .await;
    let (id, token, _) = ready_machine(&app).await;
    let (admin, _) = app.user("boss", Role::Admin).await;
    let admin = app.token(&admin).await;
    let (bob, _) = app.user("bob", Role::User).await;
    let bob = app.token(&bob).await;

    let r = put_lease(&app, &token, id, json!({"days": 21})).await;
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.unwrap();
    assert!(problem.to_string().contains("days"), "{problem}");
    assert_eq!(put_lease(&app, &token, id, json!({"no_expiry": true})).await.status(), 403);
    assert_eq!(put_lease(&app, &bob, id, json!({"days": 5})).await.status(), 404, "not bob's");
    assert_eq!(put_lease(&app, &token, id, json!({"days": 20})).await.status(), 200);

    let r = put_lease(&app, &admin, id, json!({"days": 400})).await;
    assert_eq!(r.status(), 200);
    let exp = expiry(&machine(&app, &token, id).await);
    assert!((exp - Utc::now() - days(400)).num_minutes().abs() < 2);

    let r = put_lease(&app, &admin, id, json!({"no_expiry": true})).await;
    assert_eq!(r.status(), 200);
    let m = machine(&app, &token, id).await;
    assert!(m["lease"].is_null(), "no expiry: {m}");
    sweep_at(&app, Utc::now() + days(5000)).await;
    assert_eq!(steps(&app, id).await, ["lease.extended", "lease.extended", "lease.extended"]);
    assert_eq!(machine(&app, &token, id).await["state"], "running");
}

#[tokio::test]
async fn a_crash_between_steps_repeats_nothing_and_a_sweep_with_nothing_due_writes_nothing() {
    let (app, _sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, token, _) = ready_machine(&app).await;
    let exp = expiry(&machine(&app, &token, id).await);
    let settings = app.state.leases.clone();
    let rows = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            let audits = entities::audit_entry::Entity::find().count(&db).await.unwrap();
            let jobs = jobs::entity::Entity::find().count(&db).await.unwrap();
            (audits, jobs)
        }
    };

    // Two replicas sweep the same instant at once: one moves the lease, the other writes nothing.
    let (a, b) = tokio::join!(leases::sweep(&app.db, &settings, exp), leases::sweep(&app.db, &settings, exp));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.stopped + b.stopped, 1, "{a:?} {b:?}");
    settle_jobs(&app).await;
    assert_eq!(machine(&app, &token, id).await["state"], "stopped");

    // The stop's job runs again, as after a worker died before recording its end: the guest is
    // already stopped, so nothing is asked of PVE and nothing audited.
    let again = json!({"machine_id": id, "step": "stop", "expires_at": exp});
    jobs::enqueue(&app.db, jobs::NewJob::new(leases::STEP_JOB, again)).await.unwrap();
    settle_jobs(&app).await;
    assert_eq!(steps(&app, id).await, ["lease.expired", "machine.stop"]);

    // Nothing is due until the grace period ends: the sweep reads and writes nothing.
    let before = rows(&app).await;
    for at in [exp, exp + days(1), exp + days(6)] {
        let report = leases::sweep(&app.db, &settings, at).await.unwrap();
        assert_eq!(report.writes, 0, "{report:?}");
    }
    assert_eq!(rows(&app).await, before, "no row written");

    // The deletion, then its job again: one deletion.
    let report = leases::sweep(&app.db, &settings, exp + days(7)).await.unwrap();
    assert_eq!((report.deleted, report.writes), (1, 3), "stage, audit entry, job");
    settle_jobs(&app).await;
    let again = json!({"machine_id": id, "step": "delete", "expires_at": exp});
    jobs::enqueue(&app.db, jobs::NewJob::new(leases::STEP_JOB, again)).await.unwrap();
    settle_jobs(&app).await;
    let m = machine(&app, &token, id).await;
    assert_eq!(request_status(&app, &token, &m).await, "deleted");
    let destroys =
        jobs::entity::Entity::find().filter(jobs::entity::Column::Kind.eq("destroy")).count(&app.db).await.unwrap();
    assert_eq!(destroys, 1, "one deletion");
    assert_eq!(steps(&app, id).await, ["lease.expired", "machine.stop", "lease.reclaimed"]);
    let report = leases::sweep(&app.db, &settings, exp + days(30)).await.unwrap();
    assert_eq!(report.writes, 0);
}
