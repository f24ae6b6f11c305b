//! Sign-in latency per method, through the real sign-in pages of a real server: a local password
//! (argon2id), a Proxmox VE realm account checked by the PVE simulator (right password, and wrong
//! password with PVE's 3 s failure delay), the effect of many wrong realm passwords in flight on
//! everyone else's sign-ins at the same time (there should be none), a real OpenLDAP `slapd` over LDAPS
//! with a pinned CA, and the full OpenID Connect redirect flow against a real `oidc-provider` (node).
//! The directory and the provider are the tests' harnesses; without slapd or node their rows are
//! skipped with a reason.
//!
//! `cargo bench --bench sign_in`. `BENCH_SIGN_INS` (default 100) sign-ins per method, sequential;
//! `BENCH_WRONG` (default 16) wrong realm passwords in flight, each from its own client address (so
//! proxdesk's per-address throttling does not stop them); `BENCH_PVE_LATENCY_MS` (default 2) added by
//! the simulator to each answer, as a LAN to a PVE node.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

// The tests' harnesses of the real directory and OpenID provider.
#[allow(dead_code)]
#[path = "../tests/it/external.rs"]
mod external;
#[allow(dead_code)]
#[path = "../tests/it/oidc_provider.rs"]
mod oidc_provider;
#[allow(dead_code)]
#[path = "../tests/it/slapd.rs"]
mod slapd;

use proxdesk::config::RawSettings;
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{SimConfig, Simulator, admin_acl};
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

/// One sign-in: its status and milliseconds (the CSRF token is fetched before the clock starts).
async fn sign_in(client: &Client, base: &str, method: &str, user: &str, password: &str) -> (StatusCode, f64) {
    let token = csrf(client, base).await;
    let form = [("csrf", token.as_str()), ("method", method), ("username", user), ("password", password)];
    let started = Instant::now();
    let r = client.post(format!("{base}/login")).form(&form).send().await.unwrap();
    (r.status(), started.elapsed().as_secs_f64() * 1000.0)
}

/// `n` sign-ins one after the other, each in a fresh browser from `source`; all must end as `expect`.
async fn series(
    base: &str,
    source: IpAddr,
    n: u64,
    method: &str,
    user: &str,
    pw: &str,
    expect: StatusCode,
) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (status, ms) = sign_in(&browser(source), base, method, user, pw).await;
        assert_eq!(status, expect, "{method} sign-in of {user}");
        out.push(ms);
    }
    out
}

fn row(name: &str, samples: &mut [f64]) {
    let (p50, p99) = percentiles(samples);
    println!("{name:<58} {:>6} {p50:>10.1} {p99:>10.1}", samples.len());
}

#[tokio::main]
async fn main() {
    proxdesk::integrations::install_tls_provider();
    let n = env_u64("BENCH_SIGN_INS", 100);
    let wrong = env_u64("BENCH_WRONG", 16);
    let mut config = SimConfig::default().with_token(TOKEN_ID, SECRET, admin_acl());
    config.latency = Duration::from_millis(env_u64("BENCH_PVE_LATENCY_MS", 2));
    // PVE's own failure padding (pve-access.md §2.4); the default config keeps it.
    assert_eq!(config.auth_failure_delay, Duration::from_secs(3));
    config.access.user("student@pve", PASSWORD).user("lost@pve", PASSWORD).group("students", &["student@pve"]);
    for i in 0..wrong {
        config.access.user(&format!("wrong{i}@pve"), PASSWORD);
    }
    let sim = Simulator::start(config).await.unwrap();

    let directory = slapd::Slapd::start();
    let node = oidc_provider::node();
    let oidc_port = oidc_provider::reserve_port();
    let dir = tempfile::tempdir().unwrap();
    let mut raw = RawSettings::defaults();
    raw.set("data_dir", dir.path().display().to_string());
    raw.set("log", "error");
    raw.set("workers", "false");
    raw.set("pve_url", sim.url());
    raw.set("pve_token", format!("{TOKEN_ID}={SECRET}"));
    raw.set("pve_realm_login", "true");
    if let Some(d) = &directory {
        raw.set("ldap_url", d.ldaps_url());
        raw.set("ldap_ca_file", d.ca_file.display().to_string());
        raw.set("ldap_bind_dn", slapd::SERVICE_DN);
        raw.set("ldap_bind_password", slapd::SERVICE_PASSWORD);
        raw.set("ldap_base_dn", slapd::BASE_DN);
    }
    if node.is_some() {
        oidc_provider::configure(&mut raw, oidc_port, "");
    }
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
    let provider = match &node {
        Some(node) => {
            let accounts = serde_json::json!({"alice": oidc_provider::person("alice", "alice@example.org", true, &[])});
            Some(oidc_provider::OidcProvider::start(node, oidc_port, &base, accounts, true).await)
        }
        None => None,
    };

    let here: IpAddr = Ipv4Addr::new(127, 0, 0, 1).into();
    let ok = StatusCode::SEE_OTHER;
    // Warm-up: the first realm sign-in makes the account and reads the realm list.
    series(&base, here, 3, "pve:pve", "student", PASSWORD, ok).await;
    series(&base, here, 3, "local", "alice", PASSWORD, ok).await;

    println!(
        "sign-in latency through POST /login ({n} sequential sign-ins per row; PVE answers +{} ms)",
        env_u64("BENCH_PVE_LATENCY_MS", 2)
    );
    println!("{:<58} {:>6} {:>10} {:>10}", "method", "count", "p50 ms", "p99 ms");
    let mut local = series(&base, here, n, "local", "alice", PASSWORD, ok).await;
    row("local password (argon2id)", &mut local);
    let mut realm = series(&base, here, n, "pve:pve", "student", PASSWORD, ok).await;
    row("Proxmox VE realm `pve`, right password", &mut realm);
    let bad = Ipv4Addr::new(127, 0, 2, 1).into();
    let mut failed = series(&base, bad, 5, "pve:pve", "lost", "not-the-password", StatusCode::UNAUTHORIZED).await;
    row("Proxmox VE realm, wrong password (PVE pads failures to 3 s)", &mut failed);

    // Many wrong realm passwords in flight at once, each from its own address, while the others sign in.
    let started = Instant::now();
    let mut flights = Vec::new();
    for i in 0..wrong {
        let base = base.clone();
        let source: IpAddr = Ipv4Addr::new(127, 0, 3, i as u8 + 1).into();
        flights.push(tokio::spawn(async move {
            let mut all = Vec::new();
            // Keep failing for as long as the measurement below runs.
            while started.elapsed() < Duration::from_secs(12) {
                let (status, ms) = sign_in(&browser(source), &base, "pve:pve", &format!("wrong{i}"), "nope").await;
                if status != StatusCode::UNAUTHORIZED {
                    break;
                }
                all.push(ms);
                if all.len() >= 3 {
                    break;
                }
            }
            all
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut local_busy = series(&base, here, n / 2, "local", "alice", PASSWORD, ok).await;
    let mut realm_busy = series(&base, here, n / 2, "pve:pve", "student", PASSWORD, ok).await;
    let mut wrong_all = Vec::new();
    for f in flights {
        wrong_all.extend(f.await.unwrap());
    }
    row(&format!("local password, {wrong} wrong realm passwords in flight"), &mut local_busy);
    row(&format!("Proxmox VE realm, {wrong} wrong realm passwords in flight"), &mut realm_busy);
    row("  the wrong ones themselves", &mut wrong_all);

    if directory.is_some() {
        series(&base, here, 3, "ldap", "alice", "alice-Secret-1", ok).await;
        let mut ldap = series(&base, here, n, "ldap", "alice", "alice-Secret-1", ok).await;
        row("directory: real slapd over LDAPS, pinned CA, bind-search-bind", &mut ldap);
    } else {
        println!("directory: skipped (slapd is not installed)");
    }
    if provider.is_some() {
        let mut flows = Vec::new();
        for i in 0..n.min(40) + 3 {
            let b = browser(here);
            let started = Instant::now();
            let callback = oidc_provider::walk_to_callback(&b, &base, "alice").await;
            let r = b.get(&callback).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "OpenID sign-in");
            if i >= 3 {
                flows.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        row("OpenID Connect: full redirect flow (provider's forms, code, ID token)", &mut flows);
    } else {
        println!("OpenID Connect: skipped (node is not installed)");
    }
    drop(provider);
    drop(directory);
    drop(sim);
}
