//! Page figures in a real headless Chromium: the dashboard and the admin queue with realistic data
//! (50 requests, 10 of them ready machines on the PVE simulator), on a desktop (1280×800) and a phone
//! (390×844).
//!
//! `cargo bench --bench pages` prints, per page and screen: the weight of HTML + CSS + JS as
//! transferred (DevTools' encoded bytes, headers included) and uncompressed, and the median (and
//! min–max) of first paint and first contentful paint over BENCH_LOADS cold loads (default 10,
//! cache disabled), beside the reference budgets below.

#[allow(dead_code, unused_imports)]
#[path = "../tests/it/browser/mod.rs"]
mod browser;
#[allow(dead_code)]
#[path = "../tests/it/external.rs"]
mod external;

use std::time::Duration;

use browser::{Chromium, Viewport};
use proxdesk::config::RawSettings;
use proxdesk::domain::quota::Quota;
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{SimConfig, Simulator, admin_acl};
use proxdesk::secrets::Secret;
use proxdesk::services;
use serde_json::{Value, json};

const TOKEN_ID: &str = "proxdesk@pve!bench";
const SECRET: &str = "0b5e1f7a-1111-2222-3333-444455556666";
/// References: a page under 100 KiB of HTML + CSS + JS and painted within 500 ms on loopback.
const WEIGHT_BUDGET_KIB: f64 = 100.0;
const PAINT_BUDGET_MS: f64 = 500.0;

struct Desk {
    base: String,
    owner_session: String,
    admin_session: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    _sim: proxdesk::integrations::pve::sim::SimHandle,
    _dir: tempfile::TempDir,
}

/// The app on the simulator; alice asks for 50 machines and the admin approves 10 (provisioned to ready).
async fn seed() -> Desk {
    proxdesk::integrations::install_tls_provider();
    let sim = Simulator::start(SimConfig::for_tests().with_token(TOKEN_ID, SECRET, admin_acl())).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut raw = RawSettings::defaults();
    raw.set("data_dir", dir.path().display().to_string());
    raw.set("log", "warn");
    raw.set("pve_url", sim.url().to_owned());
    raw.set("pve_token", format!("{TOKEN_ID}={SECRET}"));
    raw.set("provision_poll_ms", "20");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    raw.set("public_url", base.clone());
    let app = proxdesk::startup::App::build(raw.into_settings().unwrap(), listener).await.unwrap();
    let db = app.state().db.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let mut tokens = vec![];
    let mut sessions = vec![];
    for (name, role) in [("chief", Role::Admin), ("alice", Role::User)] {
        let password = Secret::new(format!("{name}-password-123"));
        let new = services::users::NewUser { username: name.into(), role, password: Some(password.clone()) };
        let (user, _) = services::users::create(&db, None, new).await.unwrap();
        let actor: services::Actor = user.try_into().unwrap();
        if role == Role::Admin {
            let big = Quota { max_machines: 1000, max_cores: 10_000, max_memory_mib: 1_000_000, max_disk_gib: 100_000 };
            services::quotas::set_role_quota(&db, &actor, Role::User, big).await.unwrap();
        }
        tokens.push(services::tokens::create(&db, None, actor.id, "bench").await.unwrap().1.expose().clone());
        let s = services::auth::login(&db, name, &password, "bench", 8).await.unwrap();
        sessions.push(s.token.expose().clone());
    }
    let mut t = proxdesk::demo::demo_templates().remove(0);
    t.vmid = 9000;
    t.node = "pve1".into();
    t.finish_mode = "none".into();
    let tpl = services::catalog::create(&db, None, None, t).await.unwrap();
    let api = reqwest::Client::new();
    let mut ids = vec![];
    for i in 0..50 {
        let body = json!({"template_id": tpl.id, "hostname": format!("lab-{i:02}"), "cores": 1, "memory_mib": 512,
            "disk_gib": 8, "purpose": format!("course work, group {}", i % 7)});
        let r: Value = api
            .post(format!("{base}/api/v1/requests"))
            .bearer_auth(&tokens[1])
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(r["id"].as_i64().unwrap_or_else(|| panic!("{r}")));
    }
    for id in &ids[..10] {
        let r = api
            .post(format!("{base}/api/v1/requests/{id}/approve"))
            .bearer_auth(&tokens[0])
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        loop {
            let r: Value = api
                .get(format!("{base}/api/v1/requests/{id}"))
                .bearer_auth(&tokens[0])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match r["status"].as_str().unwrap() {
                "ready" => break,
                "approved" | "provisioning" => tokio::time::sleep(Duration::from_millis(50)).await,
                other => panic!("request {id} ended {other}: {r}"),
            }
        }
    }
    Desk {
        base,
        admin_session: sessions.remove(0),
        owner_session: sessions.remove(0),
        _stop: stop,
        _sim: sim,
        _dir: dir,
    }
}

const PAINTS: &str = r#"(() => {
  const p = Object.fromEntries(performance.getEntriesByType("paint").map(e => [e.name, e.startTime]));
  return p["first-contentful-paint"] ? "ok " + JSON.stringify(p) : "waiting";
})()"#;

struct Figures {
    transferred: u64,
    uncompressed: u64,
    first_paint: Vec<f64>,
    fcp: Vec<f64>,
}

/// Loads `path` `loads` times with a cold cache; weight of the first load, paints of every load.
async fn measure(browser: &mut Chromium, base: &str, session: &str, path: &str, loads: usize) -> Figures {
    browser.call("Network.clearBrowserCookies", json!({})).await;
    browser.set_session(base, session).await;
    browser.call("Network.setCacheDisabled", json!({"cacheDisabled": true})).await;
    let mut f = Figures { transferred: 0, uncompressed: 0, first_paint: vec![], fcp: vec![] };
    for i in 0..loads {
        browser.take_resources();
        assert_eq!(browser.goto(&format!("{base}{path}")).await, 200, "{path}");
        let p = browser.wait_for(PAINTS, Duration::from_secs(10)).await;
        let p: Value = serde_json::from_str(&p[3..]).unwrap();
        f.first_paint.push(p["first-paint"].as_f64().unwrap_or(f64::NAN));
        f.fcp.push(p["first-contentful-paint"].as_f64().unwrap());
        if i == 0 {
            let client = reqwest::Client::new();
            for (url, kind, bytes) in browser.take_resources() {
                if !["Document", "Stylesheet", "Script"].contains(&kind.as_str()) {
                    continue;
                }
                f.transferred += bytes;
                let body =
                    client.get(&url).header("Cookie", format!("proxdesk_session={session}")).send().await.unwrap();
                f.uncompressed += body.bytes().await.unwrap().len() as u64;
            }
        }
    }
    f
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn range(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    format!("{min:.0}–{max:.0}")
}

#[tokio::main]
async fn main() {
    let loads = std::env::var("BENCH_LOADS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let Some(mut browser) = Chromium::start().await else { return };
    let desk = seed().await;
    println!(
        "pages: 50 requests, 10 ready machines; median of {loads} cold loads (cache disabled) in headless Chromium"
    );
    println!(
        "{:<18} {:<17} {:>12} {:>13} {:>14} {:>16}",
        "page", "screen", "sent KiB", "unpacked KiB", "first paint ms", "first content ms"
    );
    for (page, path, session) in
        [("dashboard", "/", &desk.owner_session), ("admin queue", "/admin/requests", &desk.admin_session)]
    {
        for viewport in Viewport::BOTH {
            browser.viewport(viewport).await;
            let f = measure(&mut browser, &desk.base, session, path, loads).await;
            println!(
                "{:<18} {:<17} {:>12.1} {:>13.1} {:>14} {:>16}",
                page,
                viewport.name(),
                f.transferred as f64 / 1024.0,
                f.uncompressed as f64 / 1024.0,
                format!("{:.0} ({})", median(&f.first_paint), range(&f.first_paint)),
                format!("{:.0} ({})", median(&f.fcp), range(&f.fcp)),
            );
        }
    }
    println!(
        "reference: HTML + CSS + JS under {WEIGHT_BUDGET_KIB} KiB, first contentful paint under {PAINT_BUDGET_MS} ms"
    );
}
