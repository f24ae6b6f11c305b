//! The PVE simulator's generated inventory: deterministic by seed, mixed as documented in
//! `sim/generate.rs`, served as PVE serves guests, and started from the command line.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use proxdesk::cli::{Cli, Command as CliCommand, SimCommand};
use proxdesk::integrations::pve::sim::{
    AgentState, Dhcp, DockerBridge, GeneratedInventory, Guest, GuestKind, GuestOs, InventorySummary, SimConfig,
    SimHandle, Simulator,
};
use proxdesk::integrations::pve::wire::Interface;

use crate::processes::{Proc, free_port, wait_http};
use crate::pve_client::{TOKEN_ID, TOKEN_SECRET, config, token_client};

type Shape = (u64, GuestKind, String, BTreeMap<String, String>, bool, Option<Ipv4Addr>);
type Inside = (AgentState, GuestOs, DockerBridge, Dhcp);

/// Everything a generated guest is, except the `Instant`s.
fn shape(g: &Guest) -> (Shape, Inside) {
    ((g.vmid, g.kind, g.node.clone(), g.config.clone(), g.running, g.ip), (g.agent, g.os, g.docker, g.dhcp))
}

async fn generated(guests: usize, seed: u64) -> SimHandle {
    Simulator::start(SimConfig { generated: Some(GeneratedInventory { guests, seed }), ..config() }).await.unwrap()
}

#[test]
fn a_generated_inventory_is_the_same_for_the_same_seed_and_differs_for_another() {
    let started = Instant::now();
    let a = GeneratedInventory { guests: 5000, seed: 7 }.guests();
    let took = started.elapsed();
    let b = GeneratedInventory { guests: 5000, seed: 7 }.guests();
    let c = GeneratedInventory { guests: 5000, seed: 8 }.guests();
    assert_eq!(a.len(), 5000);
    // Generous (it takes ~0.1 s idle): it catches an accidentally quadratic generator, not a slow machine.
    assert!(took < Duration::from_secs(5), "5,000 guests took {took:?}");
    let (a, b, c): (Vec<_>, Vec<_>, Vec<_>) =
        (a.iter().map(shape).collect(), b.iter().map(shape).collect(), c.iter().map(shape).collect());
    assert!(a == b, "same seed, same guests");
    let same = a.iter().zip(&c).filter(|(x, y)| x == y).count();
    assert!(same < 50, "{same} of 5,000 guests equal under another seed");
}

/// `part` of `whole` is `percent` % give or take `points`.
fn near(what: &str, part: usize, whole: usize, percent: f64, points: f64) {
    let actual = 100.0 * part as f64 / whole as f64;
    assert!((actual - percent).abs() <= points, "{what}: {actual:.1} % ({part}/{whole}), documented {percent} %");
}

#[tokio::test]
async fn a_generated_inventory_has_the_documented_mix_within_a_few_points() {
    let sim = generated(5000, 11).await;
    let state = sim.state();
    assert_eq!(state.nodes.len(), 12, "max(3, 5000 / 400)");
    let templates: Vec<u64> = state.guests.values().filter(|g| g.is_template()).map(|g| g.vmid).collect();
    assert_eq!(templates, [9000, 9001, 9002, 9100]);
    assert_ne!(state.guests[&100].name(), "web-legacy", "the sample VMs gave way");
    let all: Vec<&Guest> = state.guests.values().filter(|g| !g.is_template()).collect();
    let count = |gs: &[&Guest], f: &dyn Fn(&Guest) -> bool| gs.iter().filter(|g| f(g)).count();
    let vmids: Vec<u64> = all.iter().map(|g| g.vmid).collect();
    assert_eq!((vmids[0], all.len()), (100, 5000));
    assert!(vmids.last().unwrap() - 100 >= 5000, "a few gaps");
    let qemu: Vec<&Guest> = all.iter().copied().filter(|g| g.kind == GuestKind::Qemu).collect();
    let lxc: Vec<&Guest> = all.iter().copied().filter(|g| g.kind == GuestKind::Lxc).collect();
    near("QEMU", qemu.len(), all.len(), 70.0, 3.0);
    near("stopped", count(&all, &|g| !g.running), all.len(), 20.0, 3.0);
    near("agent key absent", count(&qemu, &|g| !g.config.contains_key("agent")), qemu.len(), 30.0, 3.0);
    let off = |g: &Guest| g.config.contains_key("agent") && !g.agent_enabled();
    near("agent key off", count(&qemu, &off), qemu.len(), 5.0, 2.0);
    let on: Vec<&Guest> = qemu.iter().copied().filter(|g| g.agent_enabled()).collect();
    near("agent responsive", count(&on, &|g| g.agent == AgentState::Responsive), on.len(), 75.0, 3.0);
    near("agent not running", count(&on, &|g| g.agent == AgentState::NotRunning), on.len(), 10.0, 3.0);
    near("agent silent", count(&on, &|g| g.agent == AgentState::Silent), on.len(), 15.0, 3.0);
    near("Windows", count(&qemu, &|g| g.os == GuestOs::Windows), qemu.len(), 15.0, 3.0);
    let linux: Vec<&Guest> = all.iter().copied().filter(|g| g.os == GuestOs::Linux).collect();
    near("docker0", count(&linux, &|g| g.docker != DockerBridge::Absent), linux.len(), 10.0, 3.0);
    near("cloud-init", count(&qemu, &|g| g.config.contains_key("ipconfig0")), qemu.len(), 15.0, 3.0);
    let dhcp_linux_qemu: Vec<&Guest> =
        qemu.iter().copied().filter(|g| g.os == GuestOs::Linux && g.static_ipv4().is_none()).collect();
    near(
        "link-local only",
        count(&dhcp_linux_qemu, &|g| g.dhcp == Dhcp::NeverAnswers),
        dhcp_linux_qemu.len(),
        5.0,
        2.0,
    );
    near("LXC never leased", count(&lxc, &|g| g.dhcp == Dhcp::NeverAnswers), lxc.len(), 10.0, 3.0);
    near("LXC static", count(&lxc, &|g| g.static_ipv4().is_some()), lxc.len(), 15.0, 3.0);
    let notes = |g: &Guest| g.config.get("description").cloned().unwrap_or_default();
    let credentials = |g: &Guest| notes(g).contains("pass:") || notes(g).contains("password:");
    near("credential notes", count(&all, &credentials), all.len(), 12.0, 3.0);
    near("prose notes", count(&all, &|g| !credentials(g) && !notes(g).is_empty()), all.len(), 40.0, 3.0);
    near("tagged", count(&all, &|g| g.config.contains_key("tags")), all.len(), 10.0, 3.0);
    near("locked", count(&all, &|g| g.lock() == Some("backup")), all.len(), 1.0, 1.0);
    let windows_rdp = count(&all, &|g| g.os == GuestOs::Windows && credentials(g) && notes(g).contains("rdp"));
    assert!(windows_rdp > 0 && count(&all, &|g| notes(g).contains("ssh,vnc")) > 0);
    let names: std::collections::BTreeSet<String> = all.iter().map(|g| g.name()).collect();
    assert_eq!(names.len(), all.len(), "names are unique");
    assert!(names.iter().any(|n| n.starts_with("win-build-")) && names.iter().any(|n| n.starts_with("web-")));
    let summary = sim.summary();
    assert_eq!((summary.guests, summary.qemu, summary.lxc, summary.nodes), (5000, qemu.len(), lxc.len(), 12));
    assert_eq!(summary.agent_on, on.len());
    assert_eq!(summary, InventorySummary::of(&state));
}

#[tokio::test]
async fn generated_guests_are_listed_and_read_as_pve_serves_guests() {
    let sim = generated(1500, 3).await;
    let state = sim.state();
    let pve = token_client(&sim);
    let listed = pve.cluster_resources(Some("vm")).await.unwrap();
    assert_eq!(listed.len(), 1504);
    for r in &listed {
        let g = &state.guests[&r.vmid.unwrap()];
        assert_eq!(r.kind, g.kind.as_str());
        assert_eq!(r.node.as_deref(), Some(g.node.as_str()));
        assert_eq!(r.status.as_deref(), Some(if g.running { "running" } else { "stopped" }));
        assert_eq!(r.name.as_deref(), Some(g.name().as_str()));
        assert_eq!(r.template, Some(u8::from(g.is_template())));
        assert_eq!(r.lock.as_deref(), g.lock());
        assert_eq!(r.tags.as_ref(), g.config.get("tags"));
    }
    assert!(listed.iter().any(|r| r.lock.as_deref() == Some("backup")) && listed.iter().any(|r| r.tags.is_some()));
    let ct = state.guests.values().find(|g| g.kind == GuestKind::Lxc && !g.is_template() && g.running).unwrap();
    let status = pve.lxc_status(&ct.node, ct.vmid).await.unwrap();
    assert_eq!((status.status.as_str(), status.name.as_deref()), ("running", Some(ct.name().as_str())));
    assert_eq!(pve.lxc_config(&ct.node, ct.vmid).await.unwrap().net0.as_ref(), ct.config.get("net0"));
    let win = state.guests.values().find(|g| g.os == GuestOs::Windows).unwrap();
    let config = pve.qemu_config(&win.node, win.vmid).await.unwrap();
    assert!(config.other["ostype"].as_str().unwrap().starts_with("win"));
}

/// The IPv4 a client should take: on the guest's NIC, never `docker0`, never loopback.
fn nic_ipv4(ifaces: &[Interface]) -> Vec<Ipv4Addr> {
    ifaces
        .iter()
        .filter(|i| !matches!(i.name.as_str(), "lo" | "docker0" | "Loopback Pseudo-Interface 1"))
        .flat_map(|i| i.ip_addresses.iter().filter(|a| a.kind == "ipv4" || a.kind == "inet"))
        .filter_map(|a| a.address.parse().ok())
        .collect()
}

#[tokio::test]
async fn live_ipv4_is_what_the_generated_guests_report_on_the_wire() {
    let sim = generated(600, 5).await;
    let pve = token_client(&sim);
    let (mut answered, mut without) = (0, 0);
    for g in sim.state().guests.values().filter(|g| g.running && !g.is_template() && g.agent != AgentState::Silent) {
        let ifaces = match g.kind {
            GuestKind::Lxc => pve.lxc_interfaces(&g.node, g.vmid).await.unwrap().unwrap(),
            GuestKind::Qemu => match pve.qemu_agent_interfaces(&g.node, g.vmid).await {
                Ok(ifaces) => ifaces,
                Err(_) => {
                    assert_eq!(g.live_ipv4(), None, "VM {}: the agent cannot answer", g.vmid);
                    continue;
                }
            },
        };
        answered += 1;
        assert_eq!(nic_ipv4(&ifaces), g.live_ipv4().into_iter().collect::<Vec<_>>(), "guest {}", g.vmid);
        without += usize::from(g.live_ipv4().is_none());
    }
    assert!(answered > 250 && without > 0, "{answered} answered, {without} without an address");
}

#[test]
fn the_cli_takes_the_number_of_guests_a_seed_and_the_agent_timeout() {
    let cli =
        Cli::try_parse_from(["proxdesk", "sim", "pve", "--guests", "5000", "--seed", "3", "--agent-timeout-ms", "500"])
            .unwrap();
    let CliCommand::Sim(SimCommand::Pve(args)) = cli.command else { panic!("not sim pve") };
    assert_eq!((args.guests, args.seed, args.agent_timeout_ms), (Some(5000), 3, 500));
    let cli = Cli::try_parse_from(["proxdesk", "sim", "pve"]).unwrap();
    let CliCommand::Sim(SimCommand::Pve(args)) = cli.command else { panic!("not sim pve") };
    assert_eq!((args.guests, args.agent_timeout_ms), (None, 3000));
    assert!(Cli::try_parse_from(["proxdesk", "sim", "pve", "--guests", "many"]).is_err());
}

#[tokio::test]
async fn sim_pve_with_guests_prints_the_mix_and_serves_that_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proxdesk"));
    cmd.args(["sim", "pve", "--listen", &format!("127.0.0.1:{port}"), "--no-auth-delay"])
        .args(["--token", &format!("{TOKEN_ID}={TOKEN_SECRET}")])
        .args(["--guests", "2000", "--seed", "9", "--agent-timeout-ms", "300"]);
    let proc = Proc::spawn(cmd, dir.path().join("sim.log"));
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_http(&http, &format!("{url}/_sim/stats"), &proc).await;
    let expected = GeneratedInventory { guests: 2000, seed: 9 }.guests();
    let mut state = proxdesk::integrations::pve::sim::State {
        nodes: GeneratedInventory { guests: 2000, seed: 9 }.node_names(),
        ..Default::default()
    };
    state.guests = expected.iter().map(|g| (g.vmid, g.clone())).collect();
    let line = format!("  inventory: {}\n", InventorySummary::of(&state));
    let until = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&proc.log).unwrap().contains(&line) {
        assert!(Instant::now() < until, "no {line:?} in:\n{}", proc.tail());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats: serde_json::Value = http.get(format!("{url}/_sim/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["guests"].as_array().unwrap().len(), 2004);
    let silent = expected.iter().find(|g| g.running && g.agent_enabled() && g.agent == AgentState::Silent).unwrap();
    let path = format!("{url}/api2/json/nodes/{}/qemu/{}/agent/network-get-interfaces", silent.node, silent.vmid);
    let started = Instant::now();
    let a =
        http.get(path).header("Authorization", format!("PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}")).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(a.status().as_u16(), 500);
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "took {took:?}");
}

/// `proxdesk demo --guests N` runs the demo on a cluster that looks like a real one: it prints the
/// generated mix and serves the desk over it.
#[tokio::test]
async fn the_demo_runs_on_a_generated_cluster() {
    proxdesk::integrations::install_tls_provider();
    let cli = Cli::try_parse_from(["proxdesk", "demo", "--guests", "800"]).unwrap();
    assert!(matches!(cli.command, CliCommand::Demo { guests: Some(800) }));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proxdesk"));
    cmd.args(["demo", "--guests", "800"])
        .env("PROXDESK_LISTEN", format!("127.0.0.1:{port}"))
        .env("PROXDESK_DATA_DIR", dir.path().join("data"));
    let proc = Proc::spawn(cmd, dir.path().join("demo.log"));
    let http = reqwest::Client::new();
    wait_http(&http, &format!("http://127.0.0.1:{port}/readyz"), &proc).await;
    let until = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&proc.log).unwrap().contains("800 guests on 3 nodes") {
        assert!(Instant::now() < until, "no generated mix printed:\n{}", proc.tail());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proc.kill();
}
