//! Guacamole sync figures: a full sync and a no-op sync of many VMs (3 connections each, so one group
//! per VM) into the Guacamole simulator, with wall time and HTTP calls, at the simulator's default
//! latency (none beyond loopback) and with 5 ms added per call.
//!
//! `cargo bench --bench guac_sync`. Settings: BENCH_VMS (default 5000), BENCH_CONCURRENCY (client
//! calls in flight when reading, default 8 as in production), BENCH_LATENCIES_MS (default "0,5").

use std::time::{Duration, Instant};

use proxdesk::integrations::guacamole::sim::{SimConfig, Simulator};
use proxdesk::integrations::guacamole::sync::{DesiredSettings, VmInfo, VmKind, run_sync};
use proxdesk::integrations::guacamole::{Client, GuacSettings};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn vms(n: u32) -> Vec<VmInfo> {
    (0..n)
        .map(|i| VmInfo {
            vmid: 1000 + i,
            node: format!("pve{}", i % 4 + 1),
            name: format!("vm-{i:05}"),
            kind: if i % 2 == 0 { VmKind::Qemu } else { VmKind::Lxc },
            notes: Some(format!("Lab machine {i}.\nuser:\"admin\" pass:\"pw-{i}\" protos:\"rdp,vnc,ssh\";")),
            ipv4: Some(format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)),
            mac: None,
            unreadable: None,
        })
        .collect()
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
    let inputs = vms(n);
    let settings = DesiredSettings { host: "bench".into(), ..DesiredSettings::default() };
    println!("guac_sync: {n} VMs × 3 connections, client concurrency {concurrency}");
    println!(
        "{:<12} {:<8} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "latency", "run", "wall", "calls", "GET", "PATCH", "writes", "changes"
    );
    for ms in latencies {
        let sim = Simulator::start(SimConfig { latency: Duration::from_millis(ms), ..SimConfig::default() })
            .await
            .expect("simulator");
        let mut guac = GuacSettings::new(&sim.url(), "guacadmin", "guacadmin");
        guac.concurrency = concurrency;
        let client = Client::new(&guac).expect("client");
        for label in ["full", "no-op"] {
            sim.reset_calls();
            let started = Instant::now();
            let report = run_sync(&client, &[], &inputs, &settings, false).await.expect("sync");
            let wall = started.elapsed();
            let calls = sim.calls();
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
                "{:<12} {:<8} {:>9.2}s {:>8} {:>8} {:>8} {:>8} {:>8}",
                format!("+{ms} ms/call"),
                label,
                wall.as_secs_f64(),
                calls.total(),
                get,
                patch,
                calls.writes,
                changes
            );
        }
    }
}
