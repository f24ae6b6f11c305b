//! HTTP figures of proxdesk on this machine, beside the framework's ceiling, in one run.
//!
//! `cargo bench --bench http` seeds 10,000 requests, starts the real release binary (`proxdesk serve`)
//! on loopback, and runs `wrk` against: a bare poem handler serving the same JSON bytes (the ceiling),
//! `GET /api/v1/requests` (50 items) and the admin queue page (50 rows), alternating rounds because
//! absolute figures drift on a shared machine. It also prints the idle RSS and the time from start to
//! `/readyz` = 200. Settings: BENCH_SECONDS (default 8), BENCH_ROUNDS (2), BENCH_CONNECTIONS (32).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use poem::{EndpointExt, Route, get, handler, listener::TcpListener as PoemListener, web::Data};
use proxdesk::config::RawSettings;
use proxdesk::domain::roles::Role;
use proxdesk::secrets::Secret;
use proxdesk::services::{self, catalog::TemplateInput};
use sea_orm::{ActiveValue::Set, EntityTrait};
use wrk_support::wrk;

mod wrk_support;

const ROWS: usize = 10_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[handler]
fn bare(body: Data<&bytes_body::Body>) -> poem::Response {
    poem::Response::builder().content_type("application/json; charset=utf-8").body(body.0.0.clone())
}

mod bytes_body {
    #[derive(Clone)]
    pub struct Body(pub Vec<u8>);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn seed(dir: &std::path::Path) -> (String, String) {
    let mut raw = RawSettings::defaults();
    raw.set("data_dir", dir.display().to_string());
    let settings = raw.into_settings().unwrap();
    let db = proxdesk::db::connect(&settings.database_url, 4).await.unwrap();
    proxdesk::db::migrate(&db).await.unwrap();
    let pw = Secret::new("bench-password-1".to_string());
    let new = services::users::NewUser { username: "admin".into(), role: Role::Admin, password: Some(pw) };
    let (admin, _) = services::users::create(&db, None, new).await.unwrap();
    let t = TemplateInput {
        name: "Debian 13".into(),
        description: "bench".into(),
        node: "pve1".into(),
        vmid: 9000,
        default_cores: 1,
        max_cores: 4,
        default_memory_mib: 1024,
        max_memory_mib: 8192,
        default_disk_gib: 8,
        max_disk_gib: 64,
        full_clone: true,
        enabled: true,
        net0: proxdesk::services::catalog::DEFAULT_NET0.into(),
        finish_mode: "node".into(),
        ..Default::default()
    };
    let tpl = services::catalog::create(&db, None, None, t).await.unwrap();
    let now = Utc::now();
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(500) {
        let rows = chunk.iter().map(|i| entities::request::ActiveModel {
            user_id: Set(admin.id),
            template_id: Set(Some(tpl.id)),
            hostname: Set(format!("host-{i}")),
            cores: Set(1),
            memory_mib: Set(1024),
            disk_gib: Set(8),
            purpose: Set("load test of the request list".into()),
            ssh_public_key: Set(None),
            status: Set("pending".into()),
            reason: Set(None),
            decided_by: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
        entities::request::Entity::insert_many(rows).exec(&db).await.unwrap();
    }
    let (_, token) = services::tokens::create(&db, None, admin.id, "bench").await.unwrap();
    let session =
        services::auth::login(&db, "admin", &Secret::new("bench-password-1".into()), "127.0.0.1", 12).await.unwrap();
    db.close().await.unwrap();
    (token.expose().clone(), session.token.expose().clone())
}

fn main() {
    proxdesk::integrations::install_tls_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let seconds = env_or("BENCH_SECONDS", 8);
    let rounds = env_or("BENCH_ROUNDS", 2);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    if !wrk_support::available() {
        eprintln!("wrk is not installed (apt-get install wrk); nothing measured");
        std::process::exit(1);
    }
    let dir = tempfile::tempdir().unwrap();
    let (token, session) = rt.block_on(seed(dir.path()));

    // The real binary, started cold: time to ready and idle RSS.
    let port = free_port();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_proxdesk"))
        .arg("serve")
        .env("PROXDESK_DATA_DIR", dir.path())
        .env("PROXDESK_LISTEN", format!("127.0.0.1:{port}"))
        .env("PROXDESK_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let ready_after = rt.block_on(async {
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await
                && r.status() == 200
            {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_kib(child.id());

    // The ceiling: a bare poem handler serving exactly the bytes the API answers.
    let body = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/api/v1/requests?limit=50"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    });
    let bare_port = free_port();
    let bare_app = Route::new().at("/", get(bare)).data(bytes_body::Body(body.clone()));
    rt.spawn(poem::Server::new(PoemListener::bind(format!("127.0.0.1:{bare_port}"))).run(bare_app));
    std::thread::sleep(Duration::from_millis(200));

    println!(
        "proxdesk HTTP benchmark: {ROWS} requests in SQLite, wrk -t2 -c{connections} -d{seconds}s, {rounds} alternating rounds"
    );
    println!(
        "start to /readyz = 200: {:.1} ms; idle RSS: {:.1} MiB; list body: {} bytes",
        ready_after.as_secs_f64() * 1000.0,
        idle_rss as f64 / 1024.0,
        body.len()
    );
    println!("{:<44} {:>10} {:>9} {:>9} {:>7}", "endpoint", "req/s", "p50 ms", "p99 ms", "non-2xx");
    let targets = [
        ("bare poem handler, same JSON (ceiling)", format!("http://127.0.0.1:{bare_port}/"), "X-Bench: 1".to_string()),
        (
            "GET /api/v1/requests (50 of 10,000)",
            format!("{base}/api/v1/requests?limit=50"),
            format!("Authorization: Bearer {token}"),
        ),
        (
            "GET /admin/requests page (50 rows)",
            format!("{base}/admin/requests"),
            format!("Cookie: proxdesk_session={session}"),
        ),
    ];
    for round in 1..=rounds {
        for (name, url, header) in &targets {
            let r = wrk(url, header, seconds, 2, connections);
            println!(
                "{:<44} {:>10.0} {:>9.2} {:>9.2} {:>7}   (round {round})",
                name, r.rps, r.p50_ms, r.p99_ms, r.non_2xx
            );
        }
    }
    println!("RSS after load: {:.1} MiB", rss_kib(child.id()) as f64 / 1024.0);
    let _ = child.kill();
    let _ = child.wait();
}
