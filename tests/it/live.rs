//! Live pages' event streams over real HTTP: the real job engine provisioning on the PVE simulator,
//! power actions through the page routes, and the streams' refusals and bounds.

use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{SimConfig, SimHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console_fixtures::{app_on, ready_machine};
use crate::helpers::{Browser, TestApp, spawn_app};

/// A `text/event-stream` read as a browser's EventSource would.
pub struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    /// Opens `path` with `b`'s session; panics unless the stream is accepted.
    pub async fn open(b: &Browser, path: &str) -> Sse {
        let resp = b.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Sse { resp, buf: String::new() }
    }

    /// The data of the next `change` event, or `None` when none comes within `wait` (or the stream ends).
    pub async fn next_change(&mut self, wait: Duration) -> Option<String> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let lines: Vec<&str> = block.lines().collect();
                if lines.contains(&"event: change") {
                    let data = lines.iter().find_map(|l| l.strip_prefix("data: ")).expect("data");
                    return Some(data.to_owned());
                }
            }
            match tokio::time::timeout_at(until, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Whether the server ended the stream within `wait`.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, self.resp.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// An app on a simulator whose clones take `clone_ms` and power actions `power_ms`.
pub async fn app_with_timing(clone_ms: u64, power_ms: u64) -> (TestApp, SimHandle) {
    let sim = SimConfig {
        clone_duration: Duration::from_millis(clone_ms),
        power_duration: Duration::from_millis(power_ms),
        ..SimConfig::for_tests()
    };
    app_on(sim, |_, _| {}).await
}

/// chief (admin) and alice, their API tokens, a template, and alice's pending request.
pub async fn pending_request(app: &TestApp) -> (String, String, i64) {
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (admin_t, alice_t) = (app.token(&admin).await, app.token(&alice).await);
    // Finished by nothing (no SSH to a node needed).
    let tpl = app.template_at("Debian", "pve1", 9000, "none").await;
    let id = app.submit_ok(&alice_t, tpl, "lab-1").await;
    (admin_t, alice_t, id)
}

async fn status(app: &TestApp, token: &str, id: i64) -> String {
    let r: Value = app.get(token, &format!("/api/v1/requests/{id}")).await.json().await.unwrap();
    r["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_request_stream_reports_provisioning_as_it_runs_and_again_when_ready() {
    let (app, _sim) = app_with_timing(1500, 300).await;
    let (admin_t, alice_t, id) = pending_request(&app).await;
    let alice = app.logged_in("alice", "alice-password-123").await;
    let mut sse = Sse::open(&alice, &format!("/requests/{id}/live")).await;
    let first = sse.next_change(Duration::from_secs(5)).await.expect("a fingerprint on connect");
    assert!(sse.next_change(Duration::from_millis(500)).await.is_none(), "nothing changes while it waits");

    let r = app.post(&admin_t, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut seen = vec![first];
    let mut statuses = vec![];
    let until = Instant::now() + Duration::from_secs(30);
    while statuses.last().is_none_or(|s| s != "ready") {
        assert!(Instant::now() < until, "not ready in time; saw {statuses:?}");
        let fp = sse.next_change(Duration::from_secs(10)).await.expect("a change while provisioning");
        assert!(!seen.contains(&fp), "a change is only sent when the fingerprint differs");
        seen.push(fp);
        statuses.push(status(&app, &alice_t, id).await);
    }
    // The clone alone takes 1.5 s: changes came while the job ran, not only at its end.
    assert!(statuses.iter().any(|s| s == "approved" || s == "provisioning"), "{statuses:?}");
    assert!(seen.len() >= 4, "approval, several steps and ready each showed: {statuses:?}");
}

#[tokio::test]
async fn the_admin_stream_changes_when_a_request_is_submitted() {
    let app = spawn_app().await;
    let (_, admin_pw) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let tpl = app.template("Debian").await;
    let root = app.logged_in("chief", &admin_pw).await;
    let mut sse = Sse::open(&root, "/admin/live").await;
    sse.next_change(Duration::from_secs(5)).await.expect("a fingerprint on connect");
    assert!(sse.next_change(Duration::from_millis(300)).await.is_none());
    let started = Instant::now();
    app.submit_ok(&app.token(&alice).await, tpl, "lab-2").await;
    sse.next_change(Duration::from_secs(3)).await.expect("the new request shows");
    eprintln!("submission to admin event: {:?}", started.elapsed());
}

#[tokio::test]
async fn the_dashboard_stream_changes_when_the_users_machine_is_deleted() {
    let (app, _sim) = app_with_timing(100, 20).await;
    let (mid, token, _) = ready_machine(&app).await;
    let alice = app.logged_in("alice", "alice-password-123").await;
    let mut sse = Sse::open(&alice, "/live/dashboard").await;
    sse.next_change(Duration::from_secs(5)).await.expect("a fingerprint on connect");
    let r = app.api.delete(app.url(&format!("/api/v1/machines/{mid}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    sse.next_change(Duration::from_secs(3)).await.expect("deleting shows");
    let machine = proxdesk::services::machines::of_request(&app.db, 1).await.unwrap().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let mut deleted = machine.deleted_at.is_some();
    while !deleted {
        assert!(Instant::now() < until, "the machine was not deleted");
        sse.next_change(Duration::from_secs(10)).await.expect("each step of the deletion shows");
        deleted = proxdesk::services::machines::of_request(&app.db, 1).await.unwrap().unwrap().deleted_at.is_some();
    }
}

#[tokio::test]
async fn after_a_shutdown_the_request_stream_reports_stopped_once_pve_does() {
    // PVE takes 3 s to shut the container down: the page's first look after the action sees it running.
    let (app, sim) = app_with_timing(100, 3000).await;
    let (mid, _, _) = ready_machine(&app).await;
    let alice = app.logged_in("alice", "alice-password-123").await;
    let page = "/requests/1";
    let mut sse = Sse::open(&alice, "/requests/1/live").await;
    sse.next_change(Duration::from_secs(5)).await.expect("a fingerprint on connect");

    let r = alice.post_form(page, &format!("/machines/{mid}/action"), &[("action", "shutdown")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let asked = Instant::now();
    let vmid = proxdesk::services::machines::of_request(&app.db, 1).await.unwrap().unwrap().vmid.unwrap() as u64;
    assert!(sim.state().guests[&vmid].running, "still running right after the action");
    // Events follow (the action's entry at once, the state when PVE has it) until the page says stopped.
    let stopped = loop {
        let fp = sse.next_change(Duration::from_secs(8)).await;
        assert!(fp.is_some(), "no change within 8 s, {:?} after the action", asked.elapsed());
        let html = alice.get(page).await.text().await.unwrap();
        if html.contains(">stopped<") {
            break asked.elapsed();
        }
        assert!(asked.elapsed() < Duration::from_secs(15), "the page never said stopped");
    };
    assert!(!sim.state().guests[&vmid].running);
    assert!(stopped >= Duration::from_millis(2500), "stopped only once PVE was done: {stopped:?}");
    // Read every 2 s after the action (not on the 20-s slow poll): seen within 2 s of the task's end.
    assert!(stopped < Duration::from_secs(6), "{stopped:?}");
    eprintln!("shutdown asked → stream says stopped: {stopped:?}");
}

#[tokio::test]
async fn live_streams_refuse_strangers_and_bound_each_user() {
    let app = spawn_app().await;
    let (_, _, id) = pending_request(&app).await;
    let nobody = app.browser();
    for path in [format!("/requests/{id}/live"), "/live/dashboard".into(), "/admin/live".into()] {
        assert_eq!(nobody.get(&path).await.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let (bob_actor, bob_pw) = app.user("bob", Role::User).await;
    let bob_id = bob_actor.id;
    let bob = app.logged_in("bob", &bob_pw).await;
    assert_eq!(bob.get(&format!("/requests/{id}/live")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(bob.get("/requests/999/live").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(bob.get("/admin/live").await.status(), StatusCode::FORBIDDEN);

    let bound = proxdesk::startup::LIVE_STREAMS_PER_USER;
    let mut open = Vec::new();
    for _ in 0..bound {
        open.push(Sse::open(&bob, "/live/dashboard").await);
    }
    assert_eq!(bob.get("/live/dashboard").await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(bob.get("/requests/999/live").await.status(), StatusCode::TOO_MANY_REQUESTS, "every page counts");
    let alice = app.logged_in("alice", "alice-password-123").await;
    Sse::open(&alice, "/live/dashboard").await;
    // A stream that ends gives its place back (a closed tab's is found dead at the next keep-alive).
    let live = app.state.live.clone();
    assert_eq!(live.count(bob_id), bound);
    drop(app);
    let until = Instant::now() + Duration::from_secs(3);
    while live.count(bob_id) > 0 {
        assert!(Instant::now() < until, "{} places still taken after the streams ended", live.count(bob_id));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn streams_end_when_the_server_stops() {
    let app = spawn_app().await;
    let (_, pw) = app.user("alice", Role::User).await;
    let alice = app.logged_in("alice", &pw).await;
    let mut sse = Sse::open(&alice, "/live/dashboard").await;
    sse.next_change(Duration::from_secs(5)).await.expect("a fingerprint on connect");
    let stopping = Instant::now();
    drop(app);
    // Without the stop signal the server would wait its 10-s grace period for the stream.
    assert!(sse.ends_within(Duration::from_secs(3)).await, "the stream outlived the server");
    eprintln!("stream ended {:?} after the stop", stopping.elapsed());
}

#[tokio::test]
async fn a_page_loaded_just_before_a_change_is_told_to_look_again() {
    let app = spawn_app().await;
    let (_, _, id) = pending_request(&app).await;
    let alice = app.logged_in("alice", "alice-password-123").await;
    // Submitted a moment ago: a page loaded 200 ms ago may predate it.
    let mut sse = Sse::open(&alice, &format!("/requests/{id}/live?age=200")).await;
    assert_eq!(sse.next_change(Duration::from_secs(5)).await.as_deref(), Some("stale"));
    let fp = sse.next_change(Duration::from_secs(5)).await.expect("then the fingerprint");
    assert_ne!(fp, "stale");
    // Nothing changed for longer than the page's age (plus a second's margin): it is current.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut sse = Sse::open(&alice, &format!("/requests/{id}/live?age=200")).await;
    assert_eq!(sse.next_change(Duration::from_secs(5)).await, Some(fp));
}
