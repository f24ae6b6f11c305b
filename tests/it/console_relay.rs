//! The console relay end to end: a websocket client speaking RFB as noVNC does, through proxdesk and
//! the PVE simulator, to a real TigerVNC server; the terminal to a real shell; and the refusals.

use std::time::Duration;

use proxdesk::integrations::pve::sim::{GuestKind, SimConfig};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::console_fixtures::*;
use crate::helpers::TestApp;

/// The browser's side of RFB against proxdesk: version, security type None, ClientInit, ServerInit,
/// one FramebufferUpdate. Returns the framebuffer size and desktop name.
pub async fn rfb_session(ws: &mut Ws) -> (u16, u16, String) {
    let mut buf = Vec::new();
    assert_eq!(read_n(ws, &mut buf, 12).await, b"RFB 003.008\n");
    send(ws, b"RFB 003.008\n").await;
    assert_eq!(read_n(ws, &mut buf, 2).await, [1, 1], "only security type None is offered");
    send(ws, &[1]).await;
    assert_eq!(read_n(ws, &mut buf, 4).await, [0, 0, 0, 0], "SecurityResult OK");
    send(ws, &[1]).await; // ClientInit, shared
    let init = read_n(ws, &mut buf, 24).await;
    let (w, h) = (u16::from_be_bytes([init[0], init[1]]), u16::from_be_bytes([init[2], init[3]]));
    let len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
    let name = String::from_utf8(read_n(ws, &mut buf, len).await).unwrap();
    let mut request = vec![3, 0, 0, 0, 0, 0];
    request.extend_from_slice(&w.to_be_bytes());
    request.extend_from_slice(&h.to_be_bytes());
    send(ws, &request).await;
    assert_eq!(read_n(ws, &mut buf, 1).await, [0], "a FramebufferUpdate follows");
    (w, h, name)
}

async fn audit_actions(app: &TestApp) -> Vec<(String, Value)> {
    let rows = entities::audit_entry::Entity::find().all(&app.db).await.unwrap();
    rows.into_iter().map(|r| (r.action, serde_json::from_str(&r.details).unwrap())).collect()
}

async fn wait_closed_audit(app: &TestApp) -> Value {
    for _ in 0..200 {
        if let Some((_, d)) = audit_actions(app).await.into_iter().find(|(a, _)| a == "console.closed") {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no console.closed entry");
}

async fn vnc_through_relay(legacy_vnc_tickets: bool) {
    let Some(xvnc) = Xvnc::start() else { return };
    let sim = SimConfig {
        vnc_backend: Some(([127, 0, 0, 1], xvnc.port).into()),
        vnc_password_file: Some(xvnc.password_file.clone()),
        legacy_vnc_tickets,
        ..SimConfig::for_tests()
    };
    let (app, _sim) = app_on(sim, |_, _| {}).await;
    let (id, _, cookie) = ready_machine(&app).await;
    let mut ws = connect(&app, &format!("/machines/{id}/console/ws"), Some(&cookie), Some(&app.address)).await.unwrap();
    let (w, h, name) = rfb_session(&mut ws).await;
    assert_eq!((w, h, name.as_str()), (640, 480, "fixture"), "Xvnc's ServerInit came through");
    ws.close(None).await.unwrap();
    let closed = wait_closed_audit(&app).await;
    assert_eq!(closed["kind"], "vnc");
    assert!(closed["bytes_to_browser"].as_u64().unwrap() > 40, "{closed}");
    // After the handshake with proxdesk: ClientInit (1) and FramebufferUpdateRequest (10).
    assert!(closed["bytes_from_browser"].as_u64().unwrap() >= 11, "{closed}");
    let opened = audit_actions(&app).await.into_iter().find(|(a, _)| a == "console.opened").expect("opened");
    assert_eq!(opened.1["kind"], "vnc");
}

#[tokio::test]
async fn console_reaches_a_real_vnc_server_with_security_none_for_the_browser() {
    vnc_through_relay(false).await;
}

#[tokio::test]
async fn console_works_with_old_style_tickets_where_the_ticket_is_the_password() {
    vnc_through_relay(true).await;
}

#[tokio::test]
async fn terminal_reaches_a_real_shell_and_echoes_input() {
    let Some(shell) = Shell::start() else { return };
    let sim = SimConfig { term_backend: Some(([127, 0, 0, 1], shell.port).into()), ..SimConfig::for_tests() };
    let (app, _sim) = app_on(sim, |_, _| {}).await;
    let (id, _, cookie) = ready_machine(&app).await;
    let mut ws =
        connect(&app, &format!("/machines/{id}/terminal/ws"), Some(&cookie), Some(&app.address)).await.unwrap();
    shell_echoes(&mut ws, "relay").await;
}

#[tokio::test]
async fn console_refusals() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, token, cookie) = ready_machine(&app).await;
    let path = format!("/machines/{id}/console/ws");
    let origin = Some(app.address.as_str());
    assert_eq!(refused_status(connect(&app, &path, None, origin).await), 401, "no session");
    let mallory = other_session(&app, "mallory").await;
    assert_eq!(refused_status(connect(&app, &path, Some(&mallory), origin).await), 404, "another user's machine");
    let evil = Some("http://evil.example");
    assert_eq!(refused_status(connect(&app, &path, Some(&cookie), evil).await), 403, "wrong Origin");
    let term = format!("/machines/{id}/terminal/ws");
    assert_eq!(refused_status(connect(&app, &term, Some(&cookie), evil).await), 403, "wrong Origin (terminal)");
    assert_eq!(refused_status(connect(&app, "/machines/999/console/ws", Some(&cookie), origin).await), 404);

    // A console URL works once, only for its machine and console, and only until it expires.
    let url = console_url(&app, &token, id, json!({"kind": "vnc"})).await;
    let wrong_kind = url.replace("/console/ws", "/terminal/ws");
    assert_eq!(refused_status(connect(&app, &wrong_kind, None, None).await), 401, "a VNC URL on the terminal");
    // The simulator has no VNC backend here: the first use gets past authorization and fails upstream.
    assert_eq!(refused_with(connect(&app, &url, None, None).await).await.0, 4020, "first use");
    assert_eq!(refused_status(connect(&app, &url, None, None).await), 401, "a used console URL");
    let url3 = console_url(&app, &token, id, json!({})).await;
    expire_console_tokens(&app).await;
    assert_eq!(refused_status(connect(&app, &url3, None, None).await), 401, "an expired console URL");
    let r = app.post(&token, "/api/v1/machines/999/console", json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Stopped machine: told before PVE is asked for a console.
    let vmid = sim.state().containers().into_iter().find(|g| !g.is_template()).unwrap().vmid;
    sim.with_state(|s| s.guest_mut("pve1", GuestKind::Lxc, vmid).unwrap().running = false);
    let (code, _) = refused_with(connect(&app, &path, Some(&cookie), origin).await).await;
    assert_eq!(code, 4000, "machine not running");
}

/// `POST /api/v1/machines/{id}/console` → the path and query of the URL it returns.
async fn console_url(app: &TestApp, token: &str, id: i64, body: Value) -> String {
    let r = app.post(token, &format!("/api/v1/machines/{id}/console"), body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let url = v["url"].as_str().unwrap();
    let ws_base = app.address.replacen("http://", "ws://", 1);
    assert!(url.starts_with(&ws_base), "{url}");
    url[ws_base.len()..].to_owned()
}

async fn expire_console_tokens(app: &TestApp) {
    use sea_orm::ConnectionTrait;
    let sql = "UPDATE console_tokens SET expires_at = '2000-01-01T00:00:00Z'";
    app.db.execute_unprepared(sql).await.unwrap();
}

#[tokio::test]
async fn a_browser_that_stops_reading_does_not_make_proxdesk_buffer() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::AsyncWriteExt;
    // A terminal that writes as fast as it can, counting what the network accepted from it.
    let flood = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let term_backend = Some(flood.local_addr().unwrap());
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    tokio::spawn(async move {
        let (mut s, _) = flood.accept().await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        while s.write_all(&chunk).await.is_ok() {
            w.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    let (app, _sim) = app_on(SimConfig { term_backend, ..SimConfig::for_tests() }, |_, _| {}).await;
    let (id, _, cookie) = ready_machine(&app).await;
    let _ws = connect(&app, &format!("/machines/{id}/terminal/ws"), Some(&cookie), Some(&app.address)).await.unwrap();
    // Never read. The flood must stall once the sockets' buffers are full.
    let (mut last, mut stable_for) = (0, 0);
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = written.load(Ordering::Relaxed);
        stable_for = if now == last && now > 0 { stable_for + 1 } else { 0 };
        last = now;
        if stable_for >= 10 {
            break;
        }
    }
    assert!(stable_for >= 10, "the flood never stalled: {last} bytes written");
    let sessions = app.state.consoles.sessions();
    assert_eq!(sessions.len(), 1);
    let c = &sessions[0].counters;
    let peak = c.peak_held.load(Ordering::Relaxed);
    assert!(peak <= 1 << 20, "proxdesk held at most one message: {peak} bytes");
    assert!(last < 256 << 20, "only socket buffers filled: {last} bytes");
    eprintln!("flood stalled after {last} bytes; relay peak held {peak} bytes");
}

#[tokio::test]
async fn console_pages_are_for_the_owner_and_carry_no_pve_secret() {
    let (app, _sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, _, _) = ready_machine(&app).await;
    let anon = app.browser();
    let r = anon.get(&format!("/machines/{id}/console")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login first");
    let alice = app.logged_in("alice", "alice-password-123").await;
    for (page, ws) in [("console", "console/ws"), ("terminal", "terminal/ws")] {
        let r = alice.get(&format!("/machines/{id}/{page}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = r.text().await.unwrap();
        assert!(html.contains(&format!("data-ws=\"/machines/{id}/{ws}\"")) || html.contains("npm ci"), "{html}");
        assert!(!html.contains("PVEVNC") && !html.contains("5900"), "no PVE ticket or port on the page");
    }
    let detail = alice.get("/requests/1").await.text().await.unwrap();
    assert!(detail.contains(&format!("/machines/{id}/console")), "the machine block links to the console");
    let (_, pw) = app.user("mallory", proxdesk::domain::roles::Role::User).await;
    let mallory = app.logged_in("mallory", &pw).await;
    assert_eq!(mallory.get(&format!("/machines/{id}/console")).await.status(), StatusCode::NOT_FOUND);
}
