//! Per-user caps on console sessions and console URLs: a console beyond the cap is refused before PVE
//! is asked for a `vncproxy`/`termproxy`, the slot frees as the relay ends, the count lives in the
//! database (so sessions of other replicas count, and a dead replica's stale rows do not).

use std::time::Duration;

use chrono::Utc;
use proxdesk::integrations::pve::sim::{Endpoint, SimConfig, SimHandle};
use reqwest::StatusCode;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::console_fixtures::*;
use crate::helpers::TestApp;
use crate::provision::settle;

/// An app whose simulator has a VNC and a terminal behind every console, with the caps given.
async fn capped(sessions: &str, urls: &str) -> (TestApp, SimHandle, Hangup) {
    let (vnc, _) = counting_rfb_backend().await;
    let term = Hangup::start(b"welcome\r\n").await;
    let sim = SimConfig { vnc_backend: Some(vnc), term_backend: Some(term.addr), ..SimConfig::for_tests() };
    let (sessions, urls) = (sessions.to_owned(), urls.to_owned());
    let (app, sim) = app_on(sim, |raw, _| {
        raw.set("console_max_sessions_per_user", sessions);
        raw.set("console_max_urls_per_minute", urls);
    })
    .await;
    (app, sim, term)
}

async fn user_id(app: &TestApp, name: &str) -> i64 {
    let u = entities::user::Entity::find().filter(entities::user::Column::Username.eq(name)).one(&app.db).await;
    u.unwrap().unwrap().id
}

/// A second ready machine of alice's, approved by the admin `chief`.
async fn second_machine(app: &TestApp, alice_token: &str, first: i64) -> i64 {
    let chief = entities::user::Entity::find_by_id(user_id(app, "chief").await).one(&app.db).await.unwrap().unwrap();
    let chief_token = app.token(&chief.try_into().unwrap()).await;
    let tpl = entities::template::Entity::find().one(&app.db).await.unwrap().unwrap().id;
    let request = app.submit_ok(alice_token, tpl, "lab-2").await;
    let r = app.post(&chief_token, &format!("/api/v1/requests/{request}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(settle(app, alice_token, request).await["status"], "ready");
    let machines: Value = app.get(alice_token, "/api/v1/machines").await.json().await.unwrap();
    machines["items"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).find(|&id| id != first).unwrap()
}

/// A running VNC session through the relay (the RFB handshake done).
async fn vnc_open(app: &TestApp, id: i64, cookie: &str) -> Ws {
    let mut ws = connect(app, &format!("/machines/{id}/console/ws"), Some(cookie), Some(&app.address)).await.unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_n(&mut ws, &mut buf, 12).await, b"RFB 003.008\n", "the console opened");
    send(&mut ws, b"RFB 003.008\n").await;
    read_n(&mut ws, &mut buf, 2).await;
    send(&mut ws, &[1]).await;
    read_n(&mut ws, &mut buf, 4).await;
    ws
}

/// A running terminal session through the relay.
async fn terminal_open(app: &TestApp, path: &str, cookie: &str) -> Ws {
    let mut ws = connect(app, path, Some(cookie), Some(&app.address)).await.unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_n(&mut ws, &mut buf, 9).await, b"welcome\r\n", "the terminal opened");
    ws
}

fn console_processes(sim: &SimHandle) -> u64 {
    let c = sim.calls();
    [Endpoint::LxcVncProxy, Endpoint::LxcTermProxy, Endpoint::QemuVncProxy, Endpoint::QemuTermProxy]
        .into_iter()
        .map(|e| c.get(e))
        .sum()
}

async fn session_rows(app: &TestApp) -> u64 {
    entities::console_session::Entity::find().count(&app.db).await.unwrap()
}

/// Waits until `n` session rows are left.
async fn rows_become(app: &TestApp, n: u64) {
    for _ in 0..100 {
        if session_rows(app).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} console session rows, not {n}", session_rows(app).await);
}

async fn refusals(app: &TestApp) -> Vec<Value> {
    let rows = entities::audit_entry::Entity::find()
        .filter(entities::audit_entry::Column::Action.eq("console.refused"))
        .all(&app.db)
        .await
        .unwrap();
    rows.into_iter().map(|r| serde_json::from_str(&r.details).unwrap()).collect()
}

#[tokio::test]
async fn a_third_console_beyond_a_cap_of_two_is_refused_before_pve_is_asked_and_closing_one_frees_a_slot() {
    let (app, sim, _term) = capped("2", "100").await;
    let (m1, token, cookie) = ready_machine(&app).await;
    let m2 = second_machine(&app, &token, m1).await;
    let _vnc = vnc_open(&app, m1, &cookie).await;
    let mut term = terminal_open(&app, &format!("/machines/{m1}/terminal/ws"), &cookie).await;
    assert_eq!(session_rows(&app).await, 2, "one row per open relay");
    sim.calls().reset();

    // The page says how many are open and to close one; the socket is closed with 4004.
    let page = app.logged_in("alice", "alice-password-123").await;
    let html = page.get(&format!("/machines/{m2}/terminal")).await.text().await.unwrap();
    assert!(html.contains("You have 2 consoles open, the most one person may have at once is 2"), "{html}");
    assert!(!html.contains("data-ws="), "no console is started from the page");
    let r = connect(&app, &format!("/machines/{m2}/terminal/ws"), Some(&cookie), Some(&app.address)).await;
    let (code, reason) = refused_with(r).await;
    assert_eq!(code, 4004, "{reason}");
    assert!(reason.contains("2 console sessions are open") && reason.contains("close one"), "{reason}");
    // The API: 429, a problem naming the cap, and no URL.
    let r = app.post(&token, &format!("/api/v1/machines/{m2}/console"), json!({"kind": "vnc"})).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/console-sessions-cap", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("at once is 2"), "{problem}");
    assert_eq!(console_processes(&sim), 0, "PVE was asked for no console");
    let audited = refusals(&app).await;
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert_eq!((audited[0]["via"].as_str(), audited[0]["limit"].as_u64()), (Some("session"), Some(2)));
    assert_eq!(audited[1]["via"], "api");

    // Closing a console tab frees its slot at once: the third opens.
    term.close(None).await.unwrap();
    rows_become(&app, 1).await;
    let _third = terminal_open(&app, &format!("/machines/{m2}/terminal/ws"), &cookie).await;
    assert_eq!(console_processes(&sim), 1);
    // Reopening a console already open takes it over: no slot is needed for that.
    let _again = vnc_open(&app, m1, &cookie).await;
}

#[tokio::test]
async fn two_parallel_opens_at_the_cap_have_one_winner() {
    let (app, sim, _term) = capped("2", "100").await;
    let (m1, token, cookie) = ready_machine(&app).await;
    let m2 = second_machine(&app, &token, m1).await;
    let _vnc = vnc_open(&app, m1, &cookie).await;
    sim.calls().reset();
    let (p1, p2) = (format!("/machines/{m1}/terminal/ws"), format!("/machines/{m2}/terminal/ws"));
    let (a, b) = tokio::join!(
        connect(&app, &p1, Some(&cookie), Some(&app.address)),
        connect(&app, &p2, Some(&cookie), Some(&app.address)),
    );
    let mut outcomes = Vec::new();
    for ws in [a, b] {
        let mut ws = ws.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), futures_util::StreamExt::next(&mut ws)).await;
        outcomes.push(match first.expect("an answer in time").expect("open").expect("no error") {
            tokio_tungstenite::tungstenite::Message::Binary(_) => "opened".to_owned(),
            tokio_tungstenite::tungstenite::Message::Close(Some(f)) => u16::from(f.code).to_string(),
            other => panic!("unexpected {other:?}"),
        });
    }
    outcomes.sort();
    assert_eq!(outcomes, ["4004", "opened"]);
    assert_eq!(console_processes(&sim), 1, "only the winner's console was asked of PVE");

    // The claim itself, many at once for one person: exactly the cap's worth win.
    let bob = app.user("bob", proxdesk::domain::roles::Role::User).await.0;
    let caps = proxdesk::domain::console_caps::ConsoleCaps { sessions_per_user: 3, urls_per_minute: 10 };
    let claims = (0..12).map(|i| {
        let (db, bob) = (app.db.clone(), bob.clone());
        tokio::spawn(async move {
            use proxdesk::services::console_sessions::{SessionSubject, claim};
            claim(&db, caps, &bob, SessionSubject::Machine(1000 + i), proxdesk::console::ConsoleKind::Vnc).await
        })
    });
    let results = futures_util::future::join_all(claims).await;
    let won = results.into_iter().filter(|r| r.as_ref().unwrap().is_ok()).count();
    assert_eq!(won, 3);
}

#[tokio::test]
async fn the_console_url_cap_per_minute_answers_429_and_leaves_another_user_alone() {
    let (app, sim, _term) = capped("50", "3").await;
    let (m1, token, _) = ready_machine(&app).await;
    let path = format!("/api/v1/machines/{m1}/console");
    for _ in 0..3 {
        assert_eq!(app.post(&token, &path, json!({"kind": "terminal"})).await.status(), StatusCode::OK);
    }
    let r = app.post(&token, &path, json!({"kind": "terminal"})).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/console-urls-cap", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("3 console URLs"), "{problem}");
    // Another person (an admin, who may open alice's console) is not held back by alice's count.
    let chief = entities::user::Entity::find_by_id(user_id(&app, "chief").await).one(&app.db).await.unwrap().unwrap();
    let chief_token = app.token(&chief.try_into().unwrap()).await;
    let r = app.post(&chief_token, &path, json!({"kind": "terminal"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let url = r.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    assert!(url.contains("token="));
    assert_eq!(refusals(&app).await[0]["cap"], "urls_per_minute");
    assert_eq!(console_processes(&sim), 0);
}

/// Rows for `user_id` as another replica would leave them, last seen `ago` seconds back.
async fn foreign_rows(app: &TestApp, user_id: i64, n: i64, ago: i64) {
    for i in 0..n {
        let at = Utc::now() - chrono::Duration::seconds(ago);
        let row = entities::console_session::ActiveModel {
            user_id: Set(user_id),
            subject_type: Set("machine".into()),
            subject_id: Set(5000 + i),
            kind: Set("vnc".into()),
            opened_at: Set(at),
            last_seen_at: Set(at),
            ..Default::default()
        };
        entities::console_session::Entity::insert(row).exec(&app.db).await.unwrap();
    }
}

#[tokio::test]
async fn stale_session_rows_do_not_count_and_fresh_ones_of_other_replicas_do() {
    let (app, sim, _term) = capped("2", "100").await;
    let (m1, _, cookie) = ready_machine(&app).await;
    let alice = user_id(&app, "alice").await;
    // A crashed replica's sessions, last seen an hour ago: they do not hold the slots.
    foreign_rows(&app, alice, 2, 3600).await;
    let mut ws = terminal_open(&app, &format!("/machines/{m1}/terminal/ws"), &cookie).await;
    ws.close(None).await.unwrap();
    rows_become(&app, 0).await;
    // Sessions another replica runs right now do.
    foreign_rows(&app, alice, 2, 5).await;
    sim.calls().reset();
    let r = connect(&app, &format!("/machines/{m1}/terminal/ws"), Some(&cookie), Some(&app.address)).await;
    assert_eq!(refused_with(r).await.0, 4004);
    assert_eq!(console_processes(&sim), 0);
}

#[tokio::test]
async fn a_pve_guests_console_counts_too_and_is_refused_at_the_cap_before_pve_is_asked() {
    let term = Hangup::start(b"welcome\r\n").await;
    let sim = SimConfig { term_backend: Some(term.addr), ..SimConfig::for_tests() };
    let fx = crate::pve_guests::fixture_on(sim, |a| {
        a.pool("lab", &[300]).acl("/pool/lab", "alice@pve", "PVEVMUser", true);
    })
    .await;
    crate::pve_guests_console::add_container(&fx);
    let mut ws = terminal_open(&fx.app, "/proxmox/300/terminal/ws", &fx.cookie).await;
    let row = entities::console_session::Entity::find().one(&fx.app.db).await.unwrap().unwrap();
    assert_eq!((row.subject_type.as_str(), row.subject_id, row.user_id), ("pve_guest", 300, fx.alice.id));
    ws.close(None).await.unwrap();
    rows_become(&fx.app, 0).await;
    // The default cap, 4, reached on other replicas.
    foreign_rows(&fx.app, fx.alice.id, 4, 5).await;
    fx.sim.calls().reset();
    let html = fx.browser.get("/proxmox/300/terminal").await.text().await.unwrap();
    assert!(html.contains("You have 4 consoles open"), "{html}");
    let r = connect(&fx.app, "/proxmox/300/terminal/ws", Some(&fx.cookie), Some(&fx.app.address)).await;
    assert_eq!(refused_with(r).await.0, 4004);
    let r = fx.app.post(&fx.token, "/api/v1/proxmox/guests/300/console", json!({"kind": "terminal"})).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(console_processes(&fx.sim), 0);
}
