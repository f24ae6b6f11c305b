//! Console sessions over a pinned-TLS, ticket-authenticated PVE connection, and the session limits.

use std::time::Duration;

use proxdesk::integrations::pve::sim::SimConfig;
use sea_orm::EntityTrait;
use serde_json::Value;

use crate::console_fixtures::*;
use crate::helpers::TestApp;

async fn closed_reason(app: &TestApp) -> String {
    for _ in 0..200 {
        let rows = entities::audit_entry::Entity::find().all(&app.db).await.unwrap();
        if let Some(r) = rows.into_iter().find(|r| r.action == "console.closed") {
            let d: Value = serde_json::from_str(&r.details).unwrap();
            return d["reason"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no console.closed entry");
}

#[tokio::test]
async fn terminal_over_pinned_tls_with_a_ticket_login() {
    let Some(shell) = Shell::start() else { return };
    let sim =
        SimConfig { tls: true, term_backend: Some(([127, 0, 0, 1], shell.port).into()), ..SimConfig::for_tests() };
    let (app, _sim) = app_on(sim, |raw, sim| {
        raw.set("pve_token", "");
        raw.set("pve_user", "root@pam");
        raw.set("pve_password", "proxdesk");
        raw.set("pve_fingerprint", sim.fingerprint().expect("TLS"));
    })
    .await;
    let (id, _, cookie) = ready_machine(&app).await;
    let mut ws =
        connect(&app, &format!("/machines/{id}/terminal/ws"), Some(&cookie), Some(&app.address)).await.unwrap();
    shell_echoes(&mut ws, "tls").await;
}

async fn session_ends(idle: &str, max: &str) -> String {
    let Some(shell) = Shell::start() else { return String::new() };
    let sim = SimConfig { term_backend: Some(([127, 0, 0, 1], shell.port).into()), ..SimConfig::for_tests() };
    let (app, _sim) = app_on(sim, |raw, _| {
        raw.set("console_idle_secs", idle);
        raw.set("console_max_secs", max);
    })
    .await;
    let (id, _, cookie) = ready_machine(&app).await;
    let mut ws =
        connect(&app, &format!("/machines/{id}/terminal/ws"), Some(&cookie), Some(&app.address)).await.unwrap();
    shell_echoes(&mut ws, "limits").await;
    closed_reason(&app).await
}

#[tokio::test]
async fn an_idle_console_is_closed() {
    let reason = session_ends("1", "3600").await;
    assert!(reason.is_empty() || reason == "idle_timeout", "{reason}");
}

#[tokio::test]
async fn a_console_ends_at_its_maximum_length() {
    let reason = session_ends("3600", "2").await;
    assert!(reason.is_empty() || reason == "max_length", "{reason}");
}

#[tokio::test]
async fn large_browser_messages_reach_pve_in_frames_it_accepts() {
    use futures_util::SinkExt;
    use std::sync::atomic::Ordering;
    let (backend, received) = counting_rfb_backend().await;
    let (app, sim) = app_on(SimConfig { vnc_backend: Some(backend), ..SimConfig::for_tests() }, |_, _| {}).await;
    let (id, _, cookie) = ready_machine(&app).await;
    let mut ws = connect(&app, &format!("/machines/{id}/console/ws"), Some(&cookie), Some(&app.address)).await.unwrap();
    let mut buf = Vec::new();
    read_n(&mut ws, &mut buf, 12).await;
    send(&mut ws, b"RFB 003.008\n").await;
    read_n(&mut ws, &mut buf, 2).await;
    send(&mut ws, &[1]).await;
    read_n(&mut ws, &mut buf, 4).await;
    // 300 KiB in one browser message: the simulator, like pveproxy, drops frames over 128 KiB.
    send(&mut ws, &vec![7u8; 300 * 1024]).await;
    for _ in 0..200 {
        if received.load(Ordering::Relaxed) >= 300 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(received.load(Ordering::Relaxed), 300 * 1024, "every byte arrived, in frames PVE accepts");

    // Control: the same message sent straight to the simulator in one frame ends the session.
    use proxdesk::integrations::pve::{Client, PveAuth, PveConfig};
    let (id_, secret) = (crate::provision::TOKEN_ID, crate::provision::TOKEN_SECRET);
    let token = PveAuth::Token { id: id_.into(), secret: proxdesk::secrets::Secret::new(secret.into()) };
    let pve = Client::new(PveConfig::new(sim.url(), token).unwrap()).unwrap();
    let t = pve.lxc_vncproxy("pve1", 9000).await.unwrap();
    let url = pve.vncwebsocket_url("pve1", "lxc", 9000, &t);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    let auth = format!("PVEAPIToken={id_}={secret}");
    req.headers_mut().insert("Authorization", auth.parse().unwrap());
    let (mut direct, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let before = received.load(Ordering::Relaxed);
    let _ = direct.send(tokio_tungstenite::tungstenite::Message::binary(vec![7u8; 200 * 1024])).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received.load(Ordering::Relaxed), before, "an oversized frame never reaches the console");
}
