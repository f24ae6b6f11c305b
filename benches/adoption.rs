//! Adopting guests on a cluster the size of a real one: how long the list of unmanaged guests takes
//! (one `/cluster/resources` call and the database) and one adoption (config, resources, address, the
//! marker written under the digest), with PVE answering each call after a delay, beside references.
//!
//! `cargo bench --bench adoption`; `BENCH_GUESTS` (5,000), `BENCH_ADOPTIONS` (100), `BENCH_LISTS` (20),
//! `BENCH_PVE_LATENCY_MS` (5).

use std::time::{Duration, Instant};

use proxdesk::config::RawSettings;
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{GeneratedInventory, SimConfig, Simulator, admin_acl};
use proxdesk::secrets::Secret;
use proxdesk::services;
use proxdesk::startup::App;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const TOKEN_ID: &str = "proxdesk@pve!bench";
const SECRET: &str = "bench-secret";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// p50 and p99 of `samples` (milliseconds).
fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99))
}

fn row(name: &str, samples: &mut [f64], calls: f64, reference_ms: f64) {
    let (p50, p99) = percentiles(samples);
    println!("{name:<44} {:>6} {p50:>9.1} {p99:>9.1} {calls:>11.1} {reference_ms:>10.0}", samples.len());
}

async fn list(client: &Client, base: &str, token: &str) -> Vec<Value> {
    let r = client.get(format!("{base}/api/v1/admin/guests/unmanaged")).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::main]
async fn main() {
    proxdesk::integrations::install_tls_provider();
    let guests = env_u64("BENCH_GUESTS", 5_000) as usize;
    let adoptions = env_u64("BENCH_ADOPTIONS", 100) as usize;
    let lists = env_u64("BENCH_LISTS", 20);
    let latency = env_u64("BENCH_PVE_LATENCY_MS", 5);
    let mut config = SimConfig::for_tests().with_token(TOKEN_ID, SECRET, admin_acl());
    config.generated = Some(GeneratedInventory { guests, seed: 7 });
    config.latency = Duration::from_millis(latency);
    let sim = Simulator::start(config).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut raw = RawSettings::defaults();
    raw.set("data_dir", dir.path().display().to_string());
    raw.set("log", "error");
    raw.set("workers", "false");
    raw.set("pve_url", sim.url());
    raw.set("pve_token", format!("{TOKEN_ID}={SECRET}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    raw.set("public_url", base.clone());
    let app = App::build(raw.into_settings().unwrap(), listener).await.unwrap();
    let db = app.state().db.clone();
    let pve = app.state().pve.clone().expect("the simulator is configured");
    let new = |name: &str, role| services::users::NewUser {
        username: name.into(),
        role,
        password: Some(Secret::new("a-long-enough-password".into())),
    };
    let (root, _) = services::users::create(&db, None, new("chief", Role::Admin)).await.unwrap();
    services::users::create(&db, None, new("alice", Role::User)).await.unwrap();
    let (_, token) = services::tokens::create(&db, None, root.id, "bench").await.unwrap();
    let token = token.expose().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = Client::new();

    list(&client, &base, &token).await;
    println!("adoption on {guests} generated guests; PVE answers each call after {latency} ms");
    println!("{:<44} {:>6} {:>9} {:>9} {:>11} {:>10}", "operation", "count", "p50 ms", "p99 ms", "PVE calls", "ref ms");
    let mut samples = vec![];
    let calls = sim.calls().total();
    let mut found = vec![];
    for _ in 0..lists {
        let started = Instant::now();
        found = list(&client, &base, &token).await;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let per = (sim.calls().total() - calls) as f64 / lists as f64;
    row(&format!("list unmanaged ({} guests, none managed)", found.len()), &mut samples, per, 1000.0);
    // What the list costs beyond PVE's own answer: the same call through the client alone.
    let mut samples = vec![];
    for _ in 0..lists {
        let started = Instant::now();
        pve.cluster_resources(Some("vm")).await.unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    row("  of which /cluster/resources?type=vm alone", &mut samples, 1.0, 1000.0);

    let mut samples = vec![];
    let calls = sim.calls().total();
    let mut adopted = 0;
    for g in found.iter().filter(|g| g["lock"].is_null()).take(adoptions) {
        let body =
            json!({"node": g["node"], "vmid": g["vmid"], "kind": g["kind"], "owner": "alice", "beyond_quota": true});
        let started = Instant::now();
        let r = client.post(format!("{base}/api/v1/admin/machines/adopt")).bearer_auth(&token).json(&body).send().await;
        let r = r.unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
        adopted += 1;
    }
    let per = (sim.calls().total() - calls) as f64 / adopted as f64;
    row("adopt one guest (sequential)", &mut samples, per, 1000.0);

    let mut samples = vec![];
    let calls = sim.calls().total();
    for _ in 0..lists {
        let started = Instant::now();
        found = list(&client, &base, &token).await;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let per = (sim.calls().total() - calls) as f64 / lists as f64;
    row(&format!("list unmanaged ({} left, {adopted} managed)", found.len()), &mut samples, per, 1000.0);
}
