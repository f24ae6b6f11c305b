//! A login storm: many wrong passwords in parallel while a signed-in person loads a page in a loop.
//! Every wrong password costs an argon2id verification (19 MiB, t=2), so the storm must not take the
//! cores the pages need: proxdesk verifies on a bounded blocking pool. The figure is the page's p99
//! under the storm against its p99 idle (the target: at most 2×).
//!
//! Each wrong attempt comes from an address and an account name of its own (loopback addresses
//! 127.16.x.y, names no one has), so throttling never answers in its place and every attempt really
//! reaches argon2 — the worst case for the pages, not the usual one.
//!
//! `cargo bench --bench login_storm`. `BENCH_STORM` (default 32) wrong logins in flight;
//! `BENCH_PAGE_LOADS` (default 400) page loads per phase; `BENCH_PAGE` (default `/`, the dashboard).
//! The server runs on a runtime of its own with 2 workers, as `proxdesk serve` does on this machine.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use proxdesk::config::RawSettings;
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{SimConfig, SimHandle, Simulator, admin_acl};
use proxdesk::secrets::Secret;
use proxdesk::services;
use proxdesk::startup::App;
use reqwest::{Client, StatusCode};

const TOKEN_ID: &str = "proxdesk@pve!bench";
const SECRET: &str = "bench-secret";
const PASSWORD: &str = "a-long-enough-password";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// p50 and p99 of `samples` (milliseconds).
fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99))
}

/// A browser from `source` (a loopback address of its own): cookie jar, no redirects followed.
fn browser(source: IpAddr) -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(source)
        .build()
        .unwrap()
}

async fn csrf(client: &Client, base: &str) -> String {
    let html = client.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

async fn login(client: &Client, base: &str, user: &str, password: &str) -> StatusCode {
    let token = csrf(client, base).await;
    let form = [("csrf", token.as_str()), ("method", "local"), ("username", user), ("password", password)];
    client.post(format!("{base}/login")).form(&form).send().await.unwrap().status()
}

/// `n` loads of `page` one after the other, in milliseconds.
async fn page_loads(client: &Client, url: &str, n: u64) -> Vec<f64> {
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let started = Instant::now();
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        r.bytes().await.unwrap();
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

/// The real server, with the PVE simulator, on a runtime of its own; its base URL.
fn start_server(server: &tokio::runtime::Runtime) -> (String, SimHandle, tempfile::TempDir) {
    server.block_on(async {
        let sim = Simulator::start(SimConfig::default().with_token(TOKEN_ID, SECRET, admin_acl())).await.unwrap();
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
        let new = services::users::NewUser {
            username: "alice".into(),
            role: Role::User,
            password: Some(Secret::new(PASSWORD.into())),
        };
        services::users::create(&app.state().db, None, new).await.unwrap();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        (base, sim, dir)
    })
}

fn main() {
    proxdesk::integrations::install_tls_provider();
    let storm = env_u64("BENCH_STORM", 32);
    let loads = env_u64("BENCH_PAGE_LOADS", 400);
    let page = std::env::var("BENCH_PAGE").unwrap_or_else(|_| "/".into());

    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (base, _sim, _dir) = start_server(&server);
    let clients = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    clients.block_on(async move {
        let here: IpAddr = Ipv4Addr::LOCALHOST.into();
        let alice = browser(here);
        assert_eq!(login(&alice, &base, "alice", PASSWORD).await, StatusCode::SEE_OTHER);
        let url = format!("{base}{page}");
        page_loads(&alice, &url, 20).await; // warm-up
        let mut idle = page_loads(&alice, &url, loads).await;

        let stop = Arc::new(AtomicBool::new(false));
        let (refused, other) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut attackers = Vec::new();
        for i in 0..storm {
            let (base, stop, refused, other) = (base.clone(), stop.clone(), refused.clone(), other.clone());
            attackers.push(tokio::spawn(async move {
                let mut tried = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // A fresh address and name for every attempt: 127.16.0.0/12 holds 2^20 of them.
                    let n = (i * 20_000 + tried) % (1 << 20);
                    let source = Ipv4Addr::new(127, 16 + (n >> 16) as u8 % 16, (n >> 8) as u8, n as u8);
                    let status = login(&browser(source.into()), &base, &format!("ghost-{i}-{tried}"), "wrong").await;
                    match status {
                        StatusCode::UNAUTHORIZED => refused.fetch_add(1, Ordering::Relaxed),
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                    tried += 1;
                }
            }));
        }
        // Let the storm fill the hashing pool before measuring.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let (started, checked_before) = (Instant::now(), refused.load(Ordering::Relaxed));
        let mut stormy = page_loads(&alice, &url, loads).await;
        let storm_secs = started.elapsed().as_secs_f64();
        let checked = refused.load(Ordering::Relaxed) - checked_before;
        stop.store(true, Ordering::Relaxed);
        for a in attackers {
            a.await.unwrap();
        }

        let (idle50, idle99) = percentiles(&mut idle);
        let (storm50, storm99) = percentiles(&mut stormy);
        println!("GET {page} as a signed-in user, {loads} sequential loads per phase");
        println!("{:<44} {:>10} {:>10}", "phase", "p50 ms", "p99 ms");
        println!("{:<44} {idle50:>10.2} {idle99:>10.2}", "idle");
        println!("{:<44} {storm50:>10.2} {storm99:>10.2}", format!("{storm} wrong logins in flight"));
        println!(
            "storm: {checked} wrong passwords checked ({:.1}/s), {} other answers; page p99 {:.2}× idle (target ≤ 2×)",
            checked as f64 / storm_secs,
            other.load(Ordering::Relaxed),
            storm99 / idle99
        );
    });
    drop(server);
}
