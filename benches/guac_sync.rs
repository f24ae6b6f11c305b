//! Guacamole sync figures: a full sync and a no-op sync of many VMs (3 connections each, so one group
//! per VM), read from the PVE simulator exactly as a sync job reads a cluster (`read_vms`: the resource
//! list, then each VM's config and addresses) and written into the Guacamole simulator. Wall time and
//! HTTP calls on each side, at the simulators' default latency (none beyond loopback) and with 5 ms
//! added per call on both.
//!
//! `cargo bench --bench guac_sync`. Settings: BENCH_VMS (default 5000), BENCH_CONCURRENCY (Guacamole
//! calls in flight when reading, default 8 as in production), BENCH_LATENCIES_MS (default "0,5").

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proxdesk::integrations::guacamole::sim::{SimConfig as GuacSimConfig, Simulator as GuacSimulator};
use proxdesk::integrations::guacamole::sync::{DesiredSettings, run_sync};
use proxdesk::integrations::guacamole::{Client as GuacClient, GuacSettings};
use proxdesk::integrations::pve::sim::{Guest, GuestKind, SimConfig, SimHandle, Simulator, admin_acl};
use proxdesk::integrations::pve::{Client as PveClient, PveAuth, PveConfig};
use proxdesk::secrets::Secret;
use proxdesk::workflows::guac_source::read_vms;

const TOKEN_ID: &str = "bench@pve!sync";
const SECRET: &str = "5f0b0a52-bench-sync";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `n` running guests with notes naming three protocols: QEMU VMs with the guest agent and containers,
/// alternating, spread over the simulator's three nodes.
fn add_guests(sim: &SimHandle, n: u32) {
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

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let n = env_or("BENCH_VMS", 5000) as u32;
    let concurrency = env_or("BENCH_CONCURRENCY", 8) as usize;
    let latencies: Vec<u64> = std::env::var("BENCH_LATENCIES_MS")
        .unwrap_or_else(|_| "0,5".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let settings = DesiredSettings { host: "bench".into(), ..DesiredSettings::default() };
    println!("guac_sync: {n} VMs × 3 connections read from the PVE simulator, Guacamole concurrency {concurrency}");
    println!(
        "{:<12} {:<6} {:>8} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "latency", "run", "wall", "PVE read", "PVE calls", "Guac calls", "GET", "PATCH", "writes", "changes"
    );
    for ms in latencies {
        let latency = Duration::from_millis(ms);
        let pve_config = SimConfig { latency, default_inventory: false, ..SimConfig::default() }.with_token(
            TOKEN_ID,
            SECRET,
            admin_acl(),
        );
        let pve_sim = Simulator::start(pve_config).await.expect("PVE simulator");
        add_guests(&pve_sim, n);
        let auth = PveAuth::Token { id: TOKEN_ID.into(), secret: Secret::new(SECRET.into()) };
        let pve = PveClient::new(PveConfig::new(pve_sim.url(), auth).expect("PVE config")).expect("PVE client");
        let guac_sim =
            GuacSimulator::start(GuacSimConfig { latency, ..GuacSimConfig::default() }).await.expect("Guacamole sim");
        let mut guac = GuacSettings::new(&guac_sim.url(), "guacadmin", "guacadmin");
        guac.concurrency = concurrency;
        let client = GuacClient::new(&guac).expect("Guacamole client");
        for label in ["full", "no-op"] {
            guac_sim.reset_calls();
            pve_sim.calls().reset();
            let started = Instant::now();
            let vms = read_vms(&pve).await.expect("VMs read from PVE");
            let pve_read = started.elapsed();
            assert_eq!(vms.len(), n as usize);
            assert!(vms.iter().all(|v| v.ipv4.is_some() && v.unreadable.is_none()), "every VM read with its address");
            let report = run_sync(&client, &[], &vms, &settings, false).await.expect("sync");
            let wall = started.elapsed();
            let calls = guac_sim.calls();
            let a = &report.applied;
            let changes = a.created + a.updated + a.deleted + a.groups_created;
            assert!(report.applied.errors.is_empty(), "{:?}", &report.applied.errors[..1]);
            if label == "full" {
                assert_eq!((a.created, a.groups_created), (3 * n as usize, n as usize));
            } else {
                assert_eq!((changes, calls.writes), (0, 0));
            }
            let get = calls.by_method.get("GET").copied().unwrap_or(0);
            let patch = calls.by_method.get("PATCH").copied().unwrap_or(0);
            println!(
                "{:<12} {:<6} {:>7.2}s {:>8.2}s {:>9} {:>10} {:>8} {:>8} {:>8} {:>8}",
                format!("+{ms} ms/call"),
                label,
                wall.as_secs_f64(),
                pve_read.as_secs_f64(),
                pve_sim.calls().total(),
                calls.total(),
                get,
                patch,
                calls.writes,
                changes
            );
        }
    }
}
