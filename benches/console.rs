//! Console relay figures on loopback, in one run: the same RFB backend reached (1) directly through
//! the PVE simulator's `vncwebsocket` bridge, (2) through proxdesk's relay in front of it (the real
//! release binary, `proxdesk serve`), and (3) through websockify (Debian's) as the classic bridge.
//!
//! `cargo bench --bench console` prints throughput of one stream of 64 KiB binary messages (client →
//! backend) and of a backend → client stream, small-message round trip p50/p99, and proxdesk's RSS
//! with 1,000 idle console sessions open (beside websockify's PSS with 1,000 idle connections).
//! Settings: BENCH_MB (default 256), BENCH_ROUND_TRIPS (2000), BENCH_SESSIONS (1000).

#[path = "console_support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use proxdesk::config::RawSettings;
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{GuestKind, SimConfig, Simulator, admin_acl};
use proxdesk::integrations::pve::{Client, PveAuth, PveConfig};
use proxdesk::secrets::Secret;
use proxdesk::services;
use sea_orm::{ActiveValue::Set, EntityTrait};
use support::*;

const TOKEN_ID: &str = "proxdesk@pve!bench";
const SECRET: &str = "0b5e1f7a-1111-2222-3333-444455556666";
const VMID: u64 = 9000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_listening(port: u16) {
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on {port}");
}

/// A user, a ready request and its machine (the simulator's CT 9000); returns the session cookie.
async fn seed(dir: &std::path::Path) -> String {
    let mut raw = RawSettings::defaults();
    raw.set("data_dir", dir.display().to_string());
    let settings = raw.into_settings().unwrap();
    let db = proxdesk::db::connect(&settings.database_url, 1).await.unwrap();
    proxdesk::db::migrate(&db).await.unwrap();
    let pw = Secret::new("bench-password-1".to_string());
    let new = services::users::NewUser { username: "alice".into(), role: Role::User, password: Some(pw.clone()) };
    let (alice, _) = services::users::create(&db, None, new).await.unwrap();
    let mut t = proxdesk::demo::demo_templates().remove(0);
    t.vmid = VMID as i64;
    let tpl = services::catalog::create(&db, None, None, t).await.unwrap();
    let now = Utc::now();
    let request = entities::request::ActiveModel {
        user_id: Set(alice.id),
        template_id: Set(Some(tpl.id)),
        hostname: Set("bench".into()),
        cores: Set(1),
        memory_mib: Set(512),
        disk_gib: Set(8),
        purpose: Set("console benchmark".into()),
        status: Set("ready".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let request_id = entities::request::Entity::insert(request).exec(&db).await.unwrap().last_insert_id;
    let machine = entities::machine::ActiveModel {
        request_id: Set(request_id),
        user_id: Set(alice.id),
        node: Set("pve1".into()),
        vmid: Set(Some(VMID as i64)),
        hostname: Set("bench".into()),
        created_at: Set(now),
        ..Default::default()
    };
    entities::machine::Entity::insert(machine).exec(&db).await.unwrap();
    let session = services::auth::login(&db, "alice", &pw, "127.0.0.1", 12).await.unwrap();
    db.close().await.unwrap();
    session.token.expose().clone()
}

struct Path {
    name: &'static str,
    up: f64,
    down: f64,
    p50: f64,
    p99: f64,
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    proxdesk::integrations::install_tls_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let total = env_or("BENCH_MB", 256) << 20;
    let trips = env_or("BENCH_ROUND_TRIPS", 2000) as usize;
    let sessions = env_or("BENCH_SESSIONS", 1000);
    let dir = tempfile::tempdir().unwrap();
    let session = rt.block_on(seed(dir.path()));
    let backend = rt.block_on(backend());
    let sim = rt.block_on(async {
        let cfg = SimConfig { vnc_backend: Some(backend), auth_failure_delay: Duration::ZERO, ..SimConfig::default() };
        let sim = Simulator::start(cfg.with_token(TOKEN_ID, SECRET, admin_acl())).await.unwrap();
        sim.with_state(|s| s.guest_mut("pve1", GuestKind::Lxc, VMID).unwrap().running = true);
        sim
    });
    let port = free_port();
    let proxdesk = Kill(
        Command::new(env!("CARGO_BIN_EXE_proxdesk"))
            .arg("serve")
            .env("PROXDESK_DATA_DIR", dir.path())
            .env("PROXDESK_LISTEN", format!("127.0.0.1:{port}"))
            .env("PROXDESK_LOG", "warn")
            .env("PROXDESK_WORKERS", "false")
            .env("PROXDESK_PVE_URL", sim.url())
            .env("PROXDESK_PVE_TOKEN", format!("{TOKEN_ID}={SECRET}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port);
    let ws_port = free_port();
    let websockify = Command::new("websockify")
        .args([format!("127.0.0.1:{ws_port}"), backend.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
        .map(Kill);
    if websockify.is_some() {
        wait_listening(ws_port);
    } else {
        eprintln!("websockify is not installed (apt-get install websockify): its column stays empty");
    }
    let base = format!("ws://127.0.0.1:{port}");
    let cookie =
        vec![("Cookie", format!("proxdesk_session={session}")), ("Origin", format!("http://127.0.0.1:{port}"))];
    let pve = Client::new(
        PveConfig::new(sim.url(), PveAuth::Token { id: TOKEN_ID.into(), secret: Secret::new(SECRET.into()) }).unwrap(),
    )
    .unwrap();
    let token_header = vec![("Authorization", format!("PVEAPIToken={TOKEN_ID}={SECRET}"))];

    // One fresh connection per measurement, the way a browser opens one console.
    let connect = |path: &'static str| {
        let (base, cookie, pve, token_header) = (&base, &cookie, &pve, &token_header);
        async move {
            let mut r = Reader::default();
            let mut ws = match path {
                "relay" => {
                    let mut ws = open(&format!("{base}/machines/1/console/ws"), cookie).await;
                    rfb_relay(&mut ws, &mut r).await;
                    return (ws, r);
                }
                "direct" => {
                    let t = pve.lxc_vncproxy("pve1", VMID).await.unwrap();
                    open(&pve.vncwebsocket_url("pve1", "lxc", VMID, &t), token_header).await
                }
                _ => open(&format!("ws://127.0.0.1:{ws_port}/"), &[]).await,
            };
            rfb_direct(&mut ws, &mut r).await;
            (ws, r)
        }
    };
    let mut names = vec![("direct", "PVE simulator bridge only"), ("relay", "through proxdesk's relay")];
    if websockify.is_some() {
        names.push(("websockify", "websockify 0.10 (Debian)"));
    }
    let mut results = Vec::new();
    rt.block_on(async {
        for (key, name) in &names {
            let (mut ws, mut r) = connect(key).await;
            let up = upload(&mut ws, &mut r, total).await;
            let (mut ws, mut r) = connect(key).await;
            let down = download(&mut ws, &mut r, total).await;
            let (mut ws, mut r) = connect(key).await;
            let rt = round_trips(&mut ws, &mut r, 32, trips).await;
            results.push(Path { name, up, down, p50: pct(&rt, 0.5), p99: pct(&rt, 0.99) });
        }
    });
    println!("console relay benchmark on loopback: {} MiB per stream, {trips} round trips of 32 B", total >> 20);
    println!("{:<30} {:>12} {:>14} {:>10} {:>10}", "path", "up MB/s", "down MB/s", "p50 µs", "p99 µs");
    for p in &results {
        println!("{:<30} {:>12.0} {:>14.0} {:>10.0} {:>10.0}", p.name, p.up, p.down, p.p50, p.p99);
    }

    // Idle sessions: proxdesk's RSS before and with `sessions` consoles open.
    let before = rss_kib(proxdesk.0.id());
    let mut open_sessions = Vec::new();
    rt.block_on(async {
        for _ in 0..sessions {
            let (mut ws, _) = connect("relay").await;
            futures_util::SinkExt::send(&mut ws, tokio_tungstenite::tungstenite::Message::binary(vec![b'I']))
                .await
                .unwrap();
            open_sessions.push(ws);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let with = rss_kib(proxdesk.0.id());
    println!(
        "proxdesk RSS: {:.1} MiB idle, {:.1} MiB with {sessions} idle console sessions ({:.1} KiB per session)",
        before as f64 / 1024.0,
        with as f64 / 1024.0,
        (with.saturating_sub(before)) as f64 / sessions as f64
    );
    drop(open_sessions);
    if let Some(w) = &websockify {
        let before = tree_pss_kib(w.0.id());
        let mut conns = Vec::new();
        rt.block_on(async {
            for _ in 0..sessions {
                let url = format!("ws://127.0.0.1:{ws_port}/");
                // websockify forks a process per connection; stop at the first refusal and say so.
                let opened = tokio::spawn(async move {
                    let mut r = Reader::default();
                    let mut ws = open(&url, &[]).await;
                    rfb_direct(&mut ws, &mut r).await;
                    futures_util::SinkExt::send(&mut ws, tokio_tungstenite::tungstenite::Message::binary(vec![b'I']))
                        .await
                        .unwrap();
                    ws
                })
                .await;
                match opened {
                    Ok(ws) => conns.push(ws),
                    Err(_) => break,
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        let sessions = conns.len();
        let with = tree_pss_kib(w.0.id());
        println!(
            "websockify PSS (all its processes): {:.1} MiB idle, {:.1} MiB with {sessions} idle connections",
            before as f64 / 1024.0,
            with as f64 / 1024.0
        );
    }
}
