//! One desk served by one or three `proxdesk serve` processes (the release binary), on SQLite and on
//! PostgreSQL. For each setup of `BENCH_SETUPS` (default `sqlite:1,postgres:1,postgres:3`):
//! - `GET /api/v1/requests` (50 of 10,000 rows) under `wrk`, one `wrk` per replica at the same time with
//!   the connections (`BENCH_CONNECTIONS`, 32) split between them: req/s summed, p99 the worst replica's;
//! - approvals per second: `BENCH_REQUESTS` (200) requests submitted, then approved through the API by
//!   16 clients spread round-robin over the replicas, while the workers already start on them;
//! - the provisioning total: from the first approval to the last `ready`, with the simulator of
//!   `cargo bench --bench provision` (LXC on three nodes, clone 2 s, start 1 s, IPv4 after 0.3 s, 4 per
//!   node, 12 workers per replica).
//!
//! Everything runs on this machine's cores: PostgreSQL, the replicas, `wrk` and the simulator share
//! them, so a second or third replica adds no CPU. The figures show what running as several processes
//! coordinated through the database costs, not what several machines would gain.
//! PostgreSQL: `BENCH_PG_ADMIN_URL` (default the machine's server, user `postgres`); a database of its own
//! per setup, dropped afterwards.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use proxdesk::config::RawSettings;
use proxdesk::domain::quota::Quota;
use proxdesk::domain::roles::Role;
use proxdesk::services::{self, catalog::TemplateInput};
use sea_orm::QueryFilter;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::json;
use sim_child::{SECRET, SimTimes, TOKEN_ID};

mod sim_child;
mod wrk_support;

const LIST_ROWS: usize = 10_000;
const APPROVERS: usize = 16;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Setup {
    backend: Backend,
    replicas: usize,
}

fn setups() -> Vec<Setup> {
    let spec = std::env::var("BENCH_SETUPS").unwrap_or_else(|_| "sqlite:1,postgres:1,postgres:3".into());
    spec.split(',')
        .map(|s| {
            let (backend, n) = s.split_once(':').unwrap_or((s, "1"));
            let backend = match backend {
                "sqlite" => Backend::Sqlite,
                "postgres" => Backend::Postgres,
                other => panic!("unknown backend {other}: sqlite or postgres"),
            };
            Setup { backend, replicas: n.parse().expect("replica count") }
        })
        .collect()
}

/// A database for one setup: the data dir's SQLite file or a fresh PostgreSQL database.
struct Database {
    url: String,
    pg_name: Option<String>,
}

fn pg_admin_url() -> String {
    std::env::var("BENCH_PG_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl Database {
    async fn create(backend: Backend, dir: &std::path::Path) -> Database {
        if backend == Backend::Sqlite {
            let mut raw = RawSettings::defaults();
            raw.set("data_dir", dir.display().to_string());
            return Database { url: raw.into_settings().expect("settings").database_url, pg_name: None };
        }
        let name = format!("proxdesk_bench_{:08x}", rand::random::<u32>());
        let admin = sea_orm::Database::connect(pg_admin_url()).await.expect("PostgreSQL reachable");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
        let base = pg_admin_url();
        let url = format!("{}/{name}", &base[..base.rfind('/').expect("a database in the URL")]);
        Database { url, pg_name: Some(name) }
    }

    async fn drop(self) {
        if let Some(name) = self.pg_name {
            let admin = sea_orm::Database::connect(pg_admin_url()).await.expect("PostgreSQL reachable");
            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

struct Seeded {
    admin_token: String,
    user_token: String,
    templates: Vec<i64>,
}

/// An admin, a user with a large quota, three LXC templates (pve1–3), and 10,000 pending requests of
/// the admin's for the list.
async fn seed(db: &DatabaseConnection) -> Seeded {
    let mut tokens = vec![];
    let mut actors = vec![];
    for (name, role) in [("chief", Role::Admin), ("alice", Role::User)] {
        let new = services::users::NewUser { username: name.into(), role, password: None };
        let (user, _) = services::users::create(db, None, new).await.expect("user");
        let (_, token) = services::tokens::create(db, None, user.id, "bench").await.expect("token");
        tokens.push(token.expose().clone());
        actors.push(services::Actor::try_from(user).expect("actor"));
    }
    let big = Quota { max_machines: 100_000, max_cores: 1_000_000, max_memory_mib: 1_000_000, max_disk_gib: 1_000_000 };
    services::quotas::set_role_quota(db, &actors[0], Role::User, big).await.expect("quota");
    let mut templates = vec![];
    for (node, vmid) in [("pve1", 9000), ("pve2", 9001), ("pve3", 9002)] {
        let t = TemplateInput {
            name: format!("{node}/{vmid}"),
            description: "bench".into(),
            node: node.into(),
            vmid,
            default_cores: 1,
            max_cores: 4,
            default_memory_mib: 512,
            max_memory_mib: 4096,
            default_disk_gib: 8,
            max_disk_gib: 32,
            full_clone: true,
            enabled: true,
            net0: services::catalog::DEFAULT_NET0.into(),
            finish_mode: "none".into(),
            ..Default::default()
        };
        templates.push(services::catalog::create(db, None, None, t).await.expect("template").id);
    }
    let now = Utc::now();
    for chunk in (0..LIST_ROWS).collect::<Vec<_>>().chunks(500) {
        let rows = chunk.iter().map(|i| entities::request::ActiveModel {
            user_id: Set(actors[0].id),
            template_id: Set(Some(templates[0])),
            hostname: Set(format!("listed-{i}")),
            cores: Set(1),
            memory_mib: Set(512),
            disk_gib: Set(8),
            purpose: Set("load test of the request list".into()),
            status: Set("pending".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
        entities::request::Entity::insert_many(rows).exec(db).await.expect("rows");
    }
    Seeded { admin_token: tokens.remove(0), user_token: tokens.remove(0), templates }
}

/// `proxdesk serve` number `i` on `db_url`, pointed at the simulator; returns it and its base URL.
fn serve(dir: &std::path::Path, db_url: &str, sim_url: &str, i: usize, per_node: u64) -> (Child, String) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_proxdesk"))
        .arg("serve")
        .env_clear()
        .env("PROXDESK_DATA_DIR", dir)
        .env("PROXDESK_DATABASE_URL", db_url)
        .env("PROXDESK_LISTEN", format!("127.0.0.1:{port}"))
        .env("PROXDESK_PUBLIC_URL", &url)
        .env("PROXDESK_LOG", "warn")
        .env("PROXDESK_PVE_URL", sim_url)
        .env("PROXDESK_PVE_TOKEN", format!("{TOKEN_ID}={SECRET}"))
        .env("PROXDESK_PROVISION_PER_NODE", per_node.to_string())
        .env("PROXDESK_PROVISION_CONCURRENCY", (per_node * 3).to_string())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("serve-{i}.log"))).expect("log file"))
        .spawn()
        .expect("proxdesk serve");
    (child, url)
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while Instant::now() < give_up {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{base} not ready within 60 s");
}

/// `POST`s each of `bodies` to `path(i)` on the replicas round-robin, `APPROVERS` at a time; returns
/// the answers' ids in order and the wall time.
async fn post_all(
    client: &reqwest::Client,
    bases: &[String],
    token: &str,
    paths: Vec<(String, serde_json::Value)>,
) -> (Vec<i64>, Duration) {
    let paths = Arc::new(paths);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = vec![];
    for _ in 0..APPROVERS {
        let (client, bases, token, paths, next) =
            (client.clone(), bases.to_vec(), token.to_owned(), paths.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = vec![];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((path, body)) = paths.get(i) else { return done };
                let base = &bases[i % bases.len()];
                let r = client.post(format!("{base}{path}")).bearer_auth(&token).json(body).send().await.expect("post");
                assert!(r.status().is_success(), "POST {path}: {}", r.status());
                let answer: serde_json::Value = r.json().await.expect("json");
                done.push((i, answer["id"].as_i64().unwrap_or(0)));
            }
        }));
    }
    let mut ids = vec![0; paths.len()];
    for t in tasks {
        for (i, id) in t.await.expect("task") {
            ids[i] = id;
        }
    }
    (ids, started.elapsed())
}

struct Figures {
    list_rps: f64,
    list_p50_ms: f64,
    list_p99_ms: f64,
    list_non_2xx: u64,
    approvals_per_s: f64,
    provision_total: Duration,
    pve_calls_per_request: f64,
    ready: u64,
    failed: u64,
}

async fn run(setup: &Setup, sim_url: &str) -> Figures {
    let requests = env_u64("BENCH_REQUESTS", 200);
    let per_node = env_u64("BENCH_PER_NODE", 4);
    let seconds = env_u64("BENCH_SECONDS", 8);
    let connections = env_u64("BENCH_CONNECTIONS", 32);
    let dir = tempfile::tempdir().expect("temp dir");
    let database = Database::create(setup.backend, dir.path()).await;
    let db = proxdesk::db::connect(&database.url, 4).await.expect("database");
    proxdesk::db::migrate(&db).await.expect("migrations");
    let seeded = seed(&db).await;

    let mut children = vec![];
    let mut bases = vec![];
    for i in 0..setup.replicas {
        let (child, base) = serve(dir.path(), &database.url, sim_url, i, per_node);
        children.push(child);
        bases.push(base);
    }
    let client = reqwest::Client::new();
    for base in &bases {
        wait_ready(&client, base).await;
    }

    // The list, one wrk per replica at once.
    let header = format!("Authorization: Bearer {}", seeded.admin_token);
    let each = (connections / setup.replicas as u64).max(1);
    let results: Vec<wrk_support::WrkResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = bases
            .iter()
            .map(|base| {
                let (url, header) = (format!("{base}/api/v1/requests?limit=50"), header.clone());
                scope.spawn(move || wrk_support::wrk(&url, &header, seconds, 1, each))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("wrk")).collect()
    });
    let list_rps = results.iter().map(|r| r.rps).sum();
    let list_p50_ms = results.iter().map(|r| r.p50_ms).fold(0.0, f64::max);
    let list_p99_ms = results.iter().map(|r| r.p99_ms).fold(0.0, f64::max);
    let list_non_2xx = results.iter().map(|r| r.non_2xx).sum();

    // Submissions (not timed), then the approvals, which start the provisioning.
    let submissions = (0..requests as usize)
        .map(|n| {
            let body = json!({"template_id": seeded.templates[n % 3], "hostname": format!("bench-{n}"), "cores": 1,
                "memory_mib": 512, "disk_gib": 8, "purpose": "benchmark"});
            ("/api/v1/requests".to_owned(), body)
        })
        .collect();
    let (ids, _) = post_all(&client, &bases, &seeded.user_token, submissions).await;
    let approvals = ids.iter().map(|id| (format!("/api/v1/requests/{id}/approve"), json!({}))).collect();
    let started = Instant::now();
    let (_, approving) = post_all(&client, &bases, &seeded.admin_token, approvals).await;
    let give_up = started + Duration::from_secs(900);
    let count = |status: &'static str| {
        entities::request::Entity::find()
            .filter(entities::request::Column::Status.eq(status))
            .filter(entities::request::Column::Hostname.starts_with("bench-"))
            .count(&db)
    };
    let (ready, failed) = loop {
        let (ready, failed) = (count("ready").await.expect("count"), count("failed").await.expect("count"));
        if ready + failed >= requests || Instant::now() > give_up {
            break (ready, failed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let provision_total = started.elapsed();
    let pve_calls = sim_child::stats(sim_url).await["total_calls"].as_u64().unwrap_or(0);

    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    db.close().await.ok();
    database.drop().await;
    Figures {
        list_rps,
        list_p50_ms,
        list_p99_ms,
        list_non_2xx,
        approvals_per_s: requests as f64 / approving.as_secs_f64(),
        provision_total,
        pve_calls_per_request: pve_calls as f64 / requests as f64,
        ready,
        failed,
    }
}

fn main() {
    proxdesk::integrations::install_tls_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let times = SimTimes {
        clone_ms: env_u64("BENCH_CLONE_MS", 2000),
        power_ms: env_u64("BENCH_POWER_MS", 1000),
        ip_ms: env_u64("BENCH_IP_MS", 300),
    };
    if sim_child::run_if_child(&rt, times) {
        return;
    }
    if !wrk_support::available() {
        eprintln!("wrk is not installed (apt-get install wrk); nothing measured");
        std::process::exit(1);
    }
    println!(
        "replicas: {} requests, simulator clone {} ms, start {} ms, IPv4 after {} ms; list with {} connections",
        env_u64("BENCH_REQUESTS", 200),
        times.clone_ms,
        times.power_ms,
        times.ip_ms,
        env_u64("BENCH_CONNECTIONS", 32)
    );
    println!(
        "{:<16} {:>11} {:>8} {:>8} {:>8} {:>12} {:>16} {:>10} {:>12}",
        "setup",
        "list req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "approvals/s",
        "provision total",
        "PVE/req",
        "ready/failed"
    );
    for setup in setups() {
        // A simulator of its own per setup: no guest of the previous run in its inventory.
        let (mut sim, sim_url) = sim_child::spawn();
        let f = rt.block_on(run(&setup, &sim_url));
        let _ = sim.kill();
        let _ = sim.wait();
        let name =
            format!("{} × {}", if setup.backend == Backend::Sqlite { "SQLite" } else { "PostgreSQL" }, setup.replicas);
        println!(
            "{:<16} {:>11.0} {:>8.2} {:>8.2} {:>8} {:>12.1} {:>14.1} s {:>10.1} {:>8}/{}",
            name,
            f.list_rps,
            f.list_p50_ms,
            f.list_p99_ms,
            f.list_non_2xx,
            f.approvals_per_s,
            f.provision_total.as_secs_f64(),
            f.pve_calls_per_request,
            f.ready,
            f.failed
        );
    }
}
