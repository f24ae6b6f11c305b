//! Guacamole sync figures: a first and a no-op sync read from the PVE simulator exactly as the sync job
//! reads a cluster (`PveSource`: the resource list, every guest's config, then the addresses of the
//! guests that get a connection) and written into the Guacamole simulator. Wall time and HTTP calls on
//! each side.
//!
//! Two inventories:
//! - **kind**: every guest running, with notes naming three protocols (one group each) and an agent that
//!   answers; at the simulators' default latency (none beyond loopback) and with 5 ms added per call.
//! - **realistic**: the simulator's generated inventory (70 % QEMU, agents absent, off, responsive, not
//!   running or silent with PVE's 3 s ping, static and never-leased addresses, 12 % credential notes),
//!   5 ms per call on both sides, at several PVE read concurrencies. Targets: first sync < 30 s, no-op
//!   < 10 s, and no PVE call repeated for a permanent error (agent calls = guests asked, exactly).
//!
//! `cargo bench --bench guac_sync`. Settings: BENCH_VMS (kind, default 5000), BENCH_LATENCIES_MS (kind,
//! default "0,5"), BENCH_GUESTS (realistic, default 5000), BENCH_PVE_CONCURRENCY (realistic, default
//! "8,16,32"), BENCH_SEED (default 1).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proxdesk::integrations::guacamole::notes::parse;
use proxdesk::integrations::guacamole::sim::{
    SimConfig as GuacSimConfig, SimHandle as GuacSim, Simulator as GuacSimulator,
};
use proxdesk::integrations::guacamole::sync::{DesiredSettings, SyncReport, run_sync};
use proxdesk::integrations::guacamole::{Client as GuacClient, GuacSettings};
use proxdesk::integrations::pve::sim::{
    Endpoint, GeneratedInventory, Guest, GuestKind, SimConfig, SimHandle, Simulator, admin_acl,
};
use proxdesk::integrations::pve::{Client as PveClient, PveAuth, PveConfig};
use proxdesk::secrets::{Secret, SecretKey};
use proxdesk::workflows::guac_source::{PveSource, ReadSettings};
use proxdesk::workflows::guac_sync::SyncSource;

const TOKEN_ID: &str = "bench@pve!sync";
const SECRET: &str = "5f0b0a52-bench-sync";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

/// `n` running guests with notes naming three protocols: QEMU VMs with the guest agent and containers,
/// alternating, spread over the simulator's three nodes.
fn add_kind_guests(sim: &SimHandle, n: u32) {
    sim.with_state(|s| {
        for i in 0..n {
            let vmid = 1000 + u64::from(i);
            let qemu = i % 2 == 0;
            let name = format!("vm-{i:05}");
            let mut config: BTreeMap<String, String> = BTreeMap::new();
            config.insert(if qemu { "name" } else { "hostname" }.into(), name);
            config.insert(
                "description".into(),
                format!("Lab machine {i}.\nuser:\"admin\" pass:\"pw-{i}\" protos:\"rdp,vnc,ssh\";"),
            );
            let mac = format!("BC:24:11:{:02X}:{:02X}:{:02X}", i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff);
            if qemu {
                config.insert("agent".into(), "1".into());
                config.insert("net0".into(), format!("virtio={mac},bridge=vmbr0"));
            } else {
                config.insert("net0".into(), format!("name=eth0,bridge=vmbr0,hwaddr={mac},ip=dhcp,type=veth"));
                config.insert("rootfs".into(), format!("local-lvm:vm-{vmid}-disk-0,size=8G"));
            }
            let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
            let kind = if qemu { GuestKind::Qemu } else { GuestKind::Lxc };
            let guest = Guest {
                running: true,
                started_at: Some(Instant::now()),
                ip: Some(ip),
                ip_ready_at: Some(Instant::now()),
                ..Guest::new(vmid, kind, format!("pve{}", i % 3 + 1), config)
            };
            s.guests.insert(vmid, guest);
        }
    });
}

/// A PVE simulator, a Guacamole simulator (both with `latency` per call) and the sync's source over a
/// fresh database, as the job wires them.
struct Rig {
    pve_sim: SimHandle,
    guac_sim: GuacSim,
    guac: GuacClient,
    source: PveSource,
}

async fn rig(pve_config: SimConfig, latency: Duration, concurrency: usize) -> Rig {
    let pve_sim = Simulator::start(pve_config.with_token(TOKEN_ID, SECRET, admin_acl())).await.expect("PVE simulator");
    let auth = PveAuth::Token { id: TOKEN_ID.into(), secret: Secret::new(SECRET.into()) };
    let pve = PveClient::new(PveConfig::new(pve_sim.url(), auth).expect("PVE config")).expect("PVE client");
    let guac_sim =
        GuacSimulator::start(GuacSimConfig { latency, ..GuacSimConfig::default() }).await.expect("Guacamole sim");
    let guac =
        GuacClient::new(&GuacSettings::new(&guac_sim.url(), "guacadmin", "guacadmin")).expect("Guacamole client");
    let db = proxdesk::db::connect("sqlite::memory:", 1).await.expect("database");
    proxdesk::db::migrate(&db).await.expect("migrations");
    let read = ReadSettings { concurrency, ..ReadSettings::default() };
    let source = PveSource { db, pve, key: SecretKey::generate(), read };
    Rig { pve_sim, guac_sim, guac, source }
}

/// One sync as the job runs it; returns the report, its wall time and the PVE calls by endpoint.
async fn one_sync(rig: &Rig) -> (SyncReport, Duration, BTreeMap<Endpoint, u64>) {
    rig.guac_sim.reset_calls();
    rig.pve_sim.calls().reset();
    let settings = DesiredSettings { host: "bench".into(), ..DesiredSettings::default() };
    let started = Instant::now();
    let vms = rig.source.vms(&[]).await.expect("VMs read from PVE");
    let report = run_sync(&rig.guac, &[], &vms, &settings, false).await.expect("sync");
    (report, started.elapsed(), rig.pve_sim.calls().snapshot())
}

fn header() {
    println!(
        "{:<26} {:<6} {:>8} {:>9} {:>10} {:>7} {:>8} {:>8}",
        "inventory", "run", "wall", "PVE calls", "Guac calls", "GET", "writes", "changes"
    );
}

fn row(label: &str, run: &str, report: &SyncReport, wall: Duration, pve: &BTreeMap<Endpoint, u64>, guac: &GuacSim) {
    let calls = guac.calls();
    let a = &report.applied;
    println!(
        "{:<26} {:<6} {:>7.2}s {:>9} {:>10} {:>7} {:>8} {:>8}",
        label,
        run,
        wall.as_secs_f64(),
        pve.values().sum::<u64>(),
        calls.total(),
        calls.by_method.get("GET").copied().unwrap_or(0),
        calls.writes,
        a.created + a.updated + a.deleted + a.groups_created
    );
}

async fn kind_inventory(n: u32, latencies: &[u64]) {
    println!("\nkind: {n} running guests × 3 connections, every agent answers, PVE read concurrency 16");
    header();
    for &ms in latencies {
        let latency = Duration::from_millis(ms);
        let config = SimConfig { latency, default_inventory: false, ..SimConfig::default() };
        let rig = rig(config, latency, 16).await;
        add_kind_guests(&rig.pve_sim, n);
        for run in ["first", "no-op"] {
            let (report, wall, pve) = one_sync(&rig).await;
            let a = &report.applied;
            assert!(a.errors.is_empty(), "{:?}", &a.errors[..1]);
            if run == "first" {
                assert_eq!((a.created, a.groups_created), (3 * n as usize, n as usize));
            } else {
                assert_eq!(rig.guac_sim.calls().writes, 0);
            }
            row(&format!("kind +{ms} ms/call"), run, &report, wall, &pve, &rig.guac_sim);
        }
    }
}

/// Agent and interface calls a sync must make on the first run: one per running guest whose notes hold
/// an entry, QEMU only where the config enables the agent. Computed from the simulator's state.
fn expected_address_calls(sim: &SimHandle) -> (u64, u64, u64) {
    let state = sim.state();
    let wanted = state
        .guests
        .values()
        .filter(|g| !g.is_template() && g.running)
        .filter(|g| g.description_read_back().is_some_and(|n| !parse(&n).entries.is_empty()));
    let (mut agent, mut lxc, mut agent_down) = (0, 0, 0);
    for g in wanted {
        match g.kind {
            GuestKind::Lxc => lxc += 1,
            GuestKind::Qemu if g.agent_enabled() => {
                agent += 1;
                agent_down += u64::from(!g.agent_answers());
            }
            GuestKind::Qemu => {}
        }
    }
    (agent, lxc, agent_down)
}

async fn realistic_inventory(guests: usize, seed: u64, concurrencies: &[u64]) {
    println!("\nrealistic: {guests} generated guests (seed {seed}), +5 ms/call on both sides, agent ping 3 s");
    header();
    let latency = Duration::from_millis(5);
    for &c in concurrencies {
        let generated = Some(GeneratedInventory { guests, seed });
        let config = SimConfig { latency, generated, rrd_lag: Duration::ZERO, ..SimConfig::default() };
        let rig = rig(config, latency, c as usize).await;
        let (agent, lxc, agent_down) = expected_address_calls(&rig.pve_sim);
        let label = format!("realistic, PVE ×{c}");
        let mut first_wall = Duration::ZERO;
        for run in ["first", "no-op"] {
            let (report, wall, pve) = one_sync(&rig).await;
            let got = |e| pve.get(&e).copied().unwrap_or(0);
            // Exactly one call per guest asked: nothing repeated, not even after PVE's permanent 500s.
            let agent_calls = if run == "first" { agent } else { agent - agent_down };
            assert_eq!(got(Endpoint::QemuAgentInterfaces), agent_calls, "{run}: agent calls");
            assert_eq!(got(Endpoint::LxcInterfaces), lxc, "{run}: container interface calls");
            assert_eq!(
                got(Endpoint::QemuConfigGet) + got(Endpoint::LxcConfigGet),
                guests as u64,
                "one config read per guest"
            );
            if run == "no-op" {
                assert_eq!(rig.guac_sim.calls().writes, 0, "a no-op sync writes nothing");
            }
            row(&label, run, &report, wall, &pve, &rig.guac_sim);
            if run == "first" {
                first_wall = wall;
                let by: Vec<String> = pve.iter().map(|(e, n)| format!("{}={n}", e.name())).collect();
                println!("    PVE calls by endpoint: {}", by.join(" "));
                let silent = report.diagnostics.iter().filter(|d| d.message.contains("guest agent")).count();
                println!(
                    "    connections {}, agents asked {agent} (silent or not running {agent_down}), containers asked {lxc}, \
                     guests reported with a silent agent {silent}",
                    report.desired
                );
            } else {
                let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
                println!(
                    "    targets: first < 30 s {}, no-op < 10 s {}",
                    verdict(first_wall < Duration::from_secs(30)),
                    verdict(wall < Duration::from_secs(10))
                );
            }
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let seed = env_or("BENCH_SEED", 1);
        realistic_inventory(env_or("BENCH_GUESTS", 5000) as usize, seed, &env_list("BENCH_PVE_CONCURRENCY", "8,16,32"))
            .await;
        kind_inventory(env_or("BENCH_VMS", 5000) as u32, &env_list("BENCH_LATENCIES_MS", "0,5")).await;
    });
}
