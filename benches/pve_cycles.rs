//! Clone → wait → start → wait → interfaces cycles per second through the PVE client and simulator, at
//! concurrency 1 and 32, and the client's memory for 1,000 requests in flight.
//!
//! `cargo bench --bench pve_cycles` (release build). The memory figure is measured against a simulator
//! in a child process, so only the client's side counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig, SimHandle, Simulator, admin_acl};
use proxdesk::integrations::pve::wire::{CloneRequest, first_ipv4};
use proxdesk::integrations::pve::{Client, PveAuth, PveConfig, WaitOptions};
use proxdesk::secrets::Secret;

const TOKEN_ID: &str = "bench@pve!b";
const SECRET: &str = "bench-secret";
const CLONE: Duration = Duration::from_millis(20);
const POWER: Duration = Duration::from_millis(10);
const IP_DELAY: Duration = Duration::from_millis(10);
const RUN_FOR: Duration = Duration::from_secs(5);
const TEMPLATES: u64 = 32;

fn sim_config() -> SimConfig {
    SimConfig {
        clone_duration: CLONE,
        power_duration: POWER,
        ip_delay: IP_DELAY,
        auth_failure_delay: Duration::ZERO,
        ..SimConfig::default()
    }
    .with_token(TOKEN_ID, SECRET, admin_acl())
}

fn client(url: &str, timeout: Duration) -> Client {
    let auth = PveAuth::Token { id: TOKEN_ID.into(), secret: Secret::new(SECRET.into()) };
    let mut config = PveConfig::new(url, auth).expect("config");
    config.timeout = timeout;
    Client::new(config).expect("client")
}

/// PVE refuses concurrent clones of one template (`CT is locked (disk)`), so each worker gets its own.
fn add_templates(sim: &SimHandle) {
    sim.with_state(|s| {
        let base = s.guests[&9000].clone();
        for i in 0..TEMPLATES {
            let mut t = base.clone();
            t.vmid = 9100 + i;
            s.guests.insert(t.vmid, t);
        }
    });
}

async fn cycle(pve: &Client, template: u64, newid: u64) {
    let wait = WaitOptions {
        deadline: Duration::from_secs(30),
        initial_interval: Duration::from_millis(5),
        max_interval: Duration::from_millis(20),
    };
    let req = CloneRequest { newid, hostname: Some(format!("ct{newid}")), ..Default::default() };
    let upid = pve.lxc_clone("pve1", template, &req).await.expect("clone");
    pve.wait_task(&upid, wait).await.expect("clone task");
    let upid = pve.lxc_start("pve1", newid).await.expect("start");
    pve.wait_task(&upid, wait).await.expect("start task");
    loop {
        let ifaces = pve.lxc_interfaces("pve1", newid).await.expect("interfaces").unwrap_or_default();
        if first_ipv4(&ifaces).is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn cycles_per_second(concurrency: u64) -> (f64, f64) {
    let sim = Simulator::start(sim_config()).await.expect("sim");
    add_templates(&sim);
    let pve = client(sim.url(), Duration::from_secs(30));
    let next = Arc::new(AtomicU64::new(1000));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (pve, next, done) = (pve.clone(), next.clone(), done.clone());
            tokio::spawn(async move {
                while started.elapsed() < RUN_FOR {
                    cycle(&pve, 9100 + w, next.fetch_add(1, Ordering::Relaxed)).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    let cycles = done.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    (cycles as f64 / secs, sim.calls().total() as f64 / cycles as f64)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn memory_per_1000_in_flight() -> (u64, u64) {
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env("PVE_BENCH_SIM", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("child simulator");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
        .expect("sim url");
    let pve = client(line.trim(), Duration::from_secs(60));
    pve.version().await.expect("warm-up");
    let before = rss_kib();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let pve = pve.clone();
            tokio::spawn(async move { pve.nodes().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = rss_kib();
    for t in tasks {
        t.await.expect("task").expect("nodes");
    }
    let _ = child.kill();
    let _ = child.wait();
    (before, during.saturating_sub(before))
}

async fn child_sim() {
    let sim = Simulator::start(sim_config()).await.expect("sim");
    sim.faults().inject(Endpoint::Nodes, Fault::Latency(Duration::from_secs(4)));
    println!("{}", sim.url());
    tokio::time::sleep(Duration::from_secs(60)).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if std::env::var_os("PVE_BENCH_SIM").is_some() {
        rt.block_on(child_sim());
        return;
    }
    println!("pve_cycles: clone → wait → start → wait → interfaces (IPv4), client + simulator in one process");
    println!(
        "simulator: clone task {} ms, power tasks {} ms, IPv4 after {} ms; task polls 5→20 ms; {} s per run",
        CLONE.as_millis(),
        POWER.as_millis(),
        IP_DELAY.as_millis(),
        RUN_FOR.as_secs()
    );
    for concurrency in [1, 32] {
        let (rate, calls) = rt.block_on(cycles_per_second(concurrency));
        println!("concurrency {concurrency:>2}: {rate:>8.1} cycles/s, {calls:.1} PVE calls per cycle");
    }
    let (base, delta) = rt.block_on(memory_per_1000_in_flight());
    println!(
        "client memory: {delta} KiB RSS for 1,000 requests in flight (simulator in a child process; baseline {base} KiB)"
    );
}
