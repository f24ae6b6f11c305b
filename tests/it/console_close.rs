//! What a console socket tells the browser when it cannot open or when it ends: a close code in
//! 4000–4999 and a short reason, and the same reason in the audit log.

use std::time::Duration;

use proxdesk::integrations::pve::sim::{Endpoint, Fault, GuestKind, SimConfig, SimHandle};
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::Value;

use crate::console_fixtures::*;
use crate::helpers::TestApp;

fn stop_guest(sim: &SimHandle) {
    let vmid = sim.state().containers().into_iter().find(|g| !g.is_template()).unwrap().vmid;
    sim.with_state(|s| s.guest_mut("pve1", GuestKind::Lxc, vmid).unwrap().running = false);
}

async fn closed_reasons(app: &TestApp, n: usize) -> Vec<String> {
    for _ in 0..300 {
        let rows = entities::audit_entry::Entity::find().all(&app.db).await.unwrap();
        let reasons: Vec<String> = rows
            .into_iter()
            .filter(|r| r.action == "console.closed")
            .map(|r| serde_json::from_str::<Value>(&r.details).unwrap()["reason"].as_str().unwrap().to_owned())
            .collect();
        if reasons.len() >= n {
            return reasons;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} console.closed entries");
}

/// A terminal session on a backend the test hangs up: (app, sim, backend, machine id, cookie).
async fn terminal_session() -> (TestApp, SimHandle, Hangup, i64, String, Ws) {
    let backend = Hangup::start(b"welcome\r\n").await;
    let sim = SimConfig { term_backend: Some(backend.addr), ..SimConfig::for_tests() };
    let (app, sim) = app_on(sim, |_, _| {}).await;
    let (id, _, cookie) = ready_machine(&app).await;
    let mut ws =
        connect(&app, &format!("/machines/{id}/terminal/ws"), Some(&cookie), Some(&app.address)).await.unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_n(&mut ws, &mut buf, 9).await, b"welcome\r\n", "the session runs");
    (app, sim, backend, id, cookie, ws)
}

#[tokio::test]
async fn a_stopped_machine_is_refused_with_4000_before_pve_is_asked() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, _, cookie) = ready_machine(&app).await;
    stop_guest(&sim);
    sim.calls().reset();
    for kind in ["console", "terminal"] {
        let r = connect(&app, &format!("/machines/{id}/{kind}/ws"), Some(&cookie), Some(&app.address)).await;
        assert_eq!(refused_with(r).await, (4000, "machine_stopped".into()), "{kind}");
    }
    assert_eq!(sim.calls().get(Endpoint::LxcVncProxy) + sim.calls().get(Endpoint::LxcTermProxy), 0);
}

#[tokio::test]
async fn pve_refusals_reach_the_browser_with_their_class_and_pves_words() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, _, cookie) = ready_machine(&app).await;
    let path = format!("/machines/{id}/terminal/ws");
    let cases = [
        (403, "Permission check failed (/vms/100, VM.Console)", 4010),
        (500, "CT is locked (backup)", 4011),
        (500, "Configuration file 'nodes/pve1/lxc/100.conf' does not exist", 4012),
        (500, "can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout", 4013),
        (500, "unable to find free port (5900-6000)", 4019),
    ];
    for (status, message, code) in cases {
        sim.faults().inject_times(Endpoint::LxcTermProxy, Fault::Status { code: status, message: message.into() }, 1);
        let (got, reason) = refused_with(connect(&app, &path, Some(&cookie), Some(&app.address)).await).await;
        assert_eq!((got, reason.as_str()), (code, message), "PVE answered {status} {message:?}");
    }
    // A broken connection to PVE is no refusal of PVE's: no words of its, and no addresses either.
    sim.faults().inject_times(Endpoint::LxcTermProxy, Fault::Drop, 1);
    let (code, reason) = refused_with(connect(&app, &path, Some(&cookie), Some(&app.address)).await).await;
    assert_eq!((code, reason.as_str()), (4015, "pve_unreachable"));
}

#[tokio::test]
async fn a_failed_console_websocket_to_pve_is_a_relay_error() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, _, cookie) = ready_machine(&app).await;
    sim.faults().inject_times(Endpoint::VncWebsocket, Fault::Status { code: 500, message: "boom".into() }, 1);
    let r = connect(&app, &format!("/machines/{id}/terminal/ws"), Some(&cookie), Some(&app.address)).await;
    assert_eq!(refused_with(r).await, (4020, "relay_failed".into()));
    // The simulator has no VNC server here: the socket opens, then the RFB handshake with PVE fails.
    let r = connect(&app, &format!("/machines/{id}/console/ws"), Some(&cookie), Some(&app.address)).await;
    assert_eq!(refused_with(r).await, (4020, "relay_failed".into()));
}

#[tokio::test]
async fn a_console_websocket_to_pve_that_hangs_is_a_relay_timeout() {
    let (app, sim) = app_on(SimConfig::for_tests(), |raw, _| raw.set("pve_timeout_secs", "1")).await;
    let (id, _, cookie) = ready_machine(&app).await;
    sim.faults().inject_times(Endpoint::VncWebsocket, Fault::Latency(Duration::from_secs(3)), 1);
    let r = connect(&app, &format!("/machines/{id}/terminal/ws"), Some(&cookie), Some(&app.address)).await;
    assert_eq!(refused_with(r).await, (4021, "relay_timeout".into()));
}

#[tokio::test]
async fn a_machine_that_lost_its_container_is_refused_with_4001() {
    let (app, _sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, _, cookie) = ready_machine(&app).await;
    let sql = format!("UPDATE machines SET lost_at = '2026-01-01T00:00:00Z', lost_reason = 'gone' WHERE id = {id}");
    app.db.execute_unprepared(&sql).await.unwrap();
    let r = connect(&app, &format!("/machines/{id}/terminal/ws"), Some(&cookie), Some(&app.address)).await;
    assert_eq!(refused_with(r).await, (4001, "machine_unavailable".into()));
}

#[tokio::test]
async fn the_guest_closing_its_console_ends_the_session_with_4100() {
    let (app, _sim, backend, _, _, mut ws) = terminal_session().await;
    backend.now();
    assert_eq!(close_frame(&mut ws, Duration::from_secs(10)).await, (4100, "guest_closed".into()));
    assert_eq!(closed_reasons(&app, 1).await, ["guest_closed"]);
}

#[tokio::test]
async fn a_machine_that_stops_ends_the_session_with_4107() {
    let (app, sim, backend, _, _, mut ws) = terminal_session().await;
    stop_guest(&sim);
    backend.now();
    assert_eq!(close_frame(&mut ws, Duration::from_secs(10)).await, (4107, "machine_stopped_meanwhile".into()));
    assert_eq!(closed_reasons(&app, 1).await, ["machine_stopped_meanwhile"]);
}

#[tokio::test]
async fn a_newer_session_takes_over_the_console() {
    let (app, _sim, _backend, id, cookie, mut first) = terminal_session().await;
    let mut second =
        connect(&app, &format!("/machines/{id}/terminal/ws"), Some(&cookie), Some(&app.address)).await.unwrap();
    assert_eq!(close_frame(&mut first, Duration::from_secs(10)).await, (4104, "taken_over".into()));
    let mut buf = Vec::new();
    assert_eq!(read_n(&mut second, &mut buf, 9).await, b"welcome\r\n", "the newer session runs on");
    assert_eq!(closed_reasons(&app, 1).await, ["taken_over"]);
}

#[tokio::test]
async fn deleting_the_machine_ends_its_session_with_4106() {
    let (app, _sim, _backend, id, _, mut ws) = terminal_session().await;
    let sql = format!("UPDATE machines SET deleted_at = '2026-01-01T00:00:00Z' WHERE id = {id}");
    app.db.execute_unprepared(&sql).await.unwrap();
    assert_eq!(close_frame(&mut ws, Duration::from_secs(10)).await, (4106, "machine_gone".into()));
    assert_eq!(closed_reasons(&app, 1).await, ["machine_gone"]);
}

#[tokio::test]
async fn an_idle_session_ends_with_4102() {
    let backend = Hangup::start(b"welcome\r\n").await;
    let sim = SimConfig { term_backend: Some(backend.addr), ..SimConfig::for_tests() };
    let (app, _sim) = app_on(sim, |raw, _| raw.set("console_idle_secs", "1")).await;
    let (id, _, cookie) = ready_machine(&app).await;
    let mut ws =
        connect(&app, &format!("/machines/{id}/terminal/ws"), Some(&cookie), Some(&app.address)).await.unwrap();
    assert_eq!(close_frame(&mut ws, Duration::from_secs(10)).await, (4102, "idle_timeout".into()));
}

#[tokio::test]
async fn shutting_down_tells_open_sessions_why() {
    let (app, _sim, _backend, _, _, mut ws) = terminal_session().await;
    // Dropping the test app is its shutdown signal; the server then ends the sessions.
    drop(app);
    assert_eq!(close_frame(&mut ws, Duration::from_secs(10)).await, (4105, "shutting_down".into()));
}

#[tokio::test]
async fn the_console_page_explains_a_stopped_or_lost_machine_and_carries_every_message() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, _, _) = ready_machine(&app).await;
    let alice = app.logged_in("alice", "alice-password-123").await;
    let page = |path: String| {
        let client = alice.client.clone();
        let url = app.url(&path);
        async move {
            let r = client.get(url).header("Accept-Language", "fr").send().await.unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    let html = page(format!("/machines/{id}/terminal")).await;
    assert!(html.contains(r#"data-close-4100="Session terminée : la console de la machine a été fermée.""#), "{html}");
    assert!(html.contains(r#"data-key="ctrl-c" disabled"#) && html.contains(r#"id="reconnect" class="small" hidden"#));
    assert!(html.contains(r#"role="status""#));

    stop_guest(&sim);
    // The page reads PVE's state when it is asked; on a loaded machine a task of the provisioning may still
    // be settling in the simulator, so the page is asked again until PVE reports the guest stopped.
    let stopped = "La machine est arrêtée — démarrez-la pour utiliser sa console.";
    let mut html = page(format!("/machines/{id}/console")).await;
    for _ in 0..50 {
        if html.contains(stopped) {
            break;
        }
        stop_guest(&sim);
        tokio::time::sleep(Duration::from_millis(100)).await;
        html = page(format!("/machines/{id}/console")).await;
    }
    assert!(html.contains(stopped), "{html}");
    assert!(!html.contains("data-ws=") && !html.contains("console.js"), "no console for a stopped machine");
    // Its Start button starts it; then the console is offered again.
    let r = alice
        .post_form(&format!("/machines/{id}/console"), &format!("/machines/{id}/action"), &[("action", "start")])
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    let ws = format!(r#"data-ws="/machines/{id}/console/ws""#);
    let mut html = String::new();
    for _ in 0..100 {
        html = page(format!("/machines/{id}/console")).await;
        if html.contains(&ws) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(html.contains(&ws), "once started, the console is offered: {html}");

    let sql = format!("UPDATE machines SET lost_at = '2026-01-01T00:00:00Z', lost_reason = 'gone' WHERE id = {id}");
    app.db.execute_unprepared(&sql).await.unwrap();
    let html = page(format!("/machines/{id}/terminal")).await;
    assert!(
        html.contains("Cette machine n&#x27;a plus de conteneur")
            || html.contains("Cette machine n'a plus de conteneur"),
        "{html}"
    );
    assert!(!html.contains("data-ws="));
}
