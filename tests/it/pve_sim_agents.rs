//! The PVE simulator's guests as a real cluster has them (pve-api.md §6.8, §7): guest agents in every
//! state with PVE's exact texts and timing, Windows and Linux shapes, `docker0`, guests without a lease,
//! static addresses — through the real client and, for exact texts, raw HTTP.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proxdesk::integrations::pve::PveError;
use proxdesk::integrations::pve::sim::{
    AgentState, Dhcp, DockerBridge, Guest, GuestKind, GuestOs, SimHandle, Simulator,
};
use proxdesk::integrations::pve::wire::Interface;
use serde_json::Value;

use crate::pve_client::{config, quick, token_client};
use crate::pve_sim_wire::get;

async fn sim() -> SimHandle {
    Simulator::start(config()).await.unwrap()
}

/// Puts a running Linux QEMU VM with `agent: 1` and a ready lease on pve1, then lets `shape` change it.
fn add_vm(sim: &SimHandle, vmid: u64, shape: impl FnOnce(&mut Guest)) -> Guest {
    let mac = format!("BC:24:11:00:{:02X}:{:02X}", vmid >> 8 & 0xff, vmid & 0xff);
    let config: BTreeMap<String, String> = [
        ("name", format!("vm-{vmid}")),
        ("agent", "1".into()),
        ("ostype", "l26".into()),
        ("net0", format!("virtio={mac},bridge=vmbr0")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut g = Guest {
        running: true,
        started_at: Some(Instant::now()),
        ip: Some(Ipv4Addr::new(10, 9, 0, (vmid % 250) as u8 + 2)),
        ip_ready_at: Some(Instant::now()),
        ..Guest::new(vmid, GuestKind::Qemu, "pve1", config)
    };
    shape(&mut g);
    sim.with_state(|s| s.guests.insert(vmid, g.clone()));
    g
}

/// A stopped CT on pve1 with `net0`'s `ip=` part as given.
fn add_ct(sim: &SimHandle, vmid: u64, ip: &str, dhcp: Dhcp) -> Guest {
    let net0 = format!("name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:00:{:02X},{ip},type=veth", vmid & 0xff);
    let config: BTreeMap<String, String> =
        [("hostname", format!("ct-{vmid}")), ("net0", net0), ("rootfs", format!("local-lvm:vm-{vmid}-disk-0,size=8G"))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    let g = Guest { dhcp, ..Guest::new(vmid, GuestKind::Lxc, "pve1", config) };
    sim.with_state(|s| s.guests.insert(vmid, g.clone()));
    g
}

fn agent_path(vmid: u64) -> String {
    format!("/api2/json/nodes/pve1/qemu/{vmid}/agent/network-get-interfaces")
}

/// The IPv4 addresses an interface carries (`ipv4` from the agent, `inet` from LXC).
fn ipv4s(i: &Interface) -> Vec<Ipv4Addr> {
    i.ip_addresses
        .iter()
        .filter(|a| a.kind == "ipv4" || a.kind == "inet")
        .filter_map(|a| a.address.parse().ok())
        .collect()
}

fn names(ifaces: &[Interface]) -> Vec<&str> {
    ifaces.iter().map(|i| i.name.as_str()).collect()
}

#[tokio::test]
async fn each_agent_state_answers_with_pves_exact_text_and_status() {
    let sim = sim().await;
    add_vm(&sim, 200, |g| {
        g.config.insert("agent".into(), "0".into());
    });
    add_vm(&sim, 201, |g| {
        g.config.insert("agent".into(), "enabled=0,fstrim_cloned_disks=1".into());
    });
    add_vm(&sim, 202, |g| g.agent = AgentState::NotRunning);
    add_vm(&sim, 203, |g| {
        g.config.remove("agent");
        g.running = false;
    });
    add_vm(&sim, 204, |g| {
        g.agent = AgentState::Silent;
        g.running = false;
    });
    let cases = [
        (102, "No QEMU guest agent configured"),
        (203, "No QEMU guest agent configured"),
        (101, "VM 101 is not running"),
        (204, "VM 204 is not running"),
        (200, "QEMU guest agent is not running"),
        (201, "QEMU guest agent is not running"),
        (202, "QEMU guest agent is not running"),
    ];
    for (vmid, text) in cases {
        let node = sim.state().guests[&vmid].node.clone();
        let started = Instant::now();
        let a = get(&sim, &agent_path(vmid).replace("pve1", &node)).await;
        assert_eq!(a.status_line, format!("HTTP/1.1 500 {text}"), "VM {vmid}");
        assert_eq!(a.json()["message"], format!("{text}\n"), "VM {vmid}");
        assert!(started.elapsed() < Duration::from_millis(500), "VM {vmid} answered at once");
    }
    let a = get(&sim, &agent_path(100)).await;
    assert_eq!(a.status_line, "HTTP/1.1 200 OK");
    let result = &a.json()["data"]["result"];
    assert_eq!(result[0]["name"], "lo");
    assert_eq!(result[1]["ip-addresses"][0]["ip-address-type"], "ipv4");
    assert!(result[1]["statistics"]["rx-bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_silent_agent_answers_after_pves_three_second_ping_timeout() {
    let sim = sim().await;
    add_vm(&sim, 210, |g| g.agent = AgentState::Silent);
    let pve = token_client(&sim);
    let started = Instant::now();
    let e = pve.qemu_agent_interfaces("pve1", 210).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&e, PveError::AgentUnavailable { configured: true, message } if message == "QEMU guest agent is not running"),
        "{e:?}"
    );
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(4), "took {took:?}");
}

#[tokio::test]
async fn two_silent_agents_are_waited_for_at_once_not_in_turn() {
    let sim = sim().await;
    add_vm(&sim, 211, |g| g.agent = AgentState::Silent);
    add_vm(&sim, 212, |g| g.agent = AgentState::Silent);
    let pve = token_client(&sim);
    let started = Instant::now();
    let (a, b) = tokio::join!(pve.qemu_agent_interfaces("pve1", 211), pve.qemu_agent_interfaces("pve1", 212));
    let took = started.elapsed();
    assert!(a.is_err() && b.is_err());
    assert!(took >= Duration::from_secs(3) && took < Duration::from_millis(4500), "took {took:?}, not ~3 s");
    // Meanwhile the simulator answers others at once: the wait holds no lock.
    let started = Instant::now();
    let (slow, fast) = tokio::join!(pve.qemu_agent_interfaces("pve1", 211), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        pve.qemu_agent_interfaces("pve1", 100).await.unwrap();
        t.elapsed()
    });
    assert!(slow.is_err() && started.elapsed() >= Duration::from_secs(3));
    assert!(fast < Duration::from_millis(500), "a responsive agent waited {fast:?} behind a silent one");
}

#[tokio::test]
async fn an_agent_key_whose_first_item_is_a_bare_one_is_enabled() {
    let sim = sim().await;
    add_vm(&sim, 220, |g| {
        g.config.insert("agent".into(), "1,fstrim_cloned_disks=1".into());
    });
    let pve = token_client(&sim);
    assert_eq!(pve.qemu_status("pve1", 220).await.unwrap().agent, Some(1));
    assert_eq!(pve.qemu_config("pve1", 220).await.unwrap().other["agent"], "1,fstrim_cloned_disks=1");
    assert!(!pve.qemu_agent_interfaces("pve1", 220).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_windows_guest_reports_ethernet_and_the_loopback_pseudo_interface() {
    let sim = sim().await;
    let g = add_vm(&sim, 230, |g| {
        g.os = GuestOs::Windows;
        g.config.insert("ostype".into(), "win11".into());
    });
    let ifaces = token_client(&sim).qemu_agent_interfaces("pve1", 230).await.unwrap();
    assert_eq!(names(&ifaces), ["Ethernet", "Loopback Pseudo-Interface 1"]);
    let (ethernet, loopback) = (&ifaces[0], &ifaces[1]);
    assert_eq!(ethernet.hardware_address.as_deref(), Some("bc:24:11:00:00:e6"));
    assert_eq!(ipv4s(ethernet), [g.live_ipv4().unwrap()]);
    let v6: Vec<&str> = ethernet.ip_addresses.iter().filter(|a| a.kind == "ipv6").map(|a| a.address.as_str()).collect();
    assert!(v6.len() == 1 && v6[0].starts_with("fe80::") && v6[0].contains('%'), "{v6:?}: with its scope id");
    assert_eq!(loopback.hardware_address, None);
    let lo: Vec<&str> = loopback.ip_addresses.iter().map(|a| a.address.as_str()).collect();
    assert_eq!(lo, ["::1", "127.0.0.1"]);
}

#[tokio::test]
async fn docker0_is_listed_beside_the_nic_and_is_not_the_guests_address() {
    let sim = sim().await;
    let pve = token_client(&sim);
    for (vmid, docker) in [(240, DockerBridge::BeforeNic), (241, DockerBridge::AfterNic)] {
        let g = add_vm(&sim, vmid, |g| g.docker = docker);
        let ifaces = pve.qemu_agent_interfaces("pve1", vmid).await.unwrap();
        let nic = if vmid % 3 == 0 { "eth0" } else { "ens18" };
        let expected = match docker {
            DockerBridge::BeforeNic => ["lo", "docker0", nic],
            _ => ["lo", nic, "docker0"],
        };
        assert_eq!(names(&ifaces), expected);
        let docker0 = ifaces.iter().find(|i| i.name == "docker0").unwrap();
        assert_eq!(ipv4s(docker0), [Ipv4Addr::new(172, 17, 0, 1)]);
        assert_eq!(docker0.ip_addresses[0].prefix, Some(16));
        assert!(docker0.hardware_address.as_deref().unwrap().starts_with("02:42:"));
        let on_nic = ipv4s(ifaces.iter().find(|i| i.name == nic).unwrap());
        assert_eq!(on_nic, [g.live_ipv4().unwrap()]);
        assert_ne!(g.live_ipv4(), Some(Ipv4Addr::new(172, 17, 0, 1)));
    }
}

#[tokio::test]
async fn a_guest_without_a_lease_has_only_its_ipv6_link_local_address() {
    let sim = sim().await;
    let g = add_vm(&sim, 250, |g| g.dhcp = Dhcp::NeverAnswers);
    let ifaces = token_client(&sim).qemu_agent_interfaces("pve1", 250).await.unwrap();
    let nic = ifaces.iter().find(|i| i.name == "ens18").unwrap();
    assert_eq!(nic.ip_addresses.len(), 1);
    assert_eq!(nic.ip_addresses[0].kind, "ipv6");
    assert!(nic.ip_addresses[0].address.starts_with("fe80::"));
    assert_eq!(g.live_ipv4(), None);
}

#[tokio::test]
async fn a_container_whose_dhcp_never_answers_keeps_only_fe80_on_eth0() {
    let sim = sim().await;
    add_ct(&sim, 260, "ip=dhcp", Dhcp::NeverAnswers);
    add_ct(&sim, 261, "ip=dhcp", Dhcp::Answers);
    let pve = token_client(&sim);
    for vmid in [260, 261] {
        let upid = pve.lxc_start("pve1", vmid).await.unwrap();
        pve.wait_task(&upid, quick()).await.unwrap();
    }
    // Well past the simulator's lease delay (50 ms in tests).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let never: Value = get(&sim, "/api2/json/nodes/pve1/lxc/260/interfaces").await.json();
    let eth0 = &never["data"][1];
    assert_eq!(eth0["name"], "eth0");
    assert!(eth0.get("inet").is_none(), "{eth0}");
    assert_eq!(eth0["ip-addresses"].as_array().unwrap().len(), 1);
    assert!(eth0["inet6"].as_str().unwrap().starts_with("fe80::"));
    assert_eq!(sim.state().guests[&260].live_ipv4(), None);
    let leased = pve.lxc_interfaces("pve1", 261).await.unwrap().unwrap();
    assert_eq!(ipv4s(&leased[1]), [sim.state().guests[&261].live_ipv4().unwrap()]);
}

#[tokio::test]
async fn a_container_with_a_static_address_shows_it_as_soon_as_it_runs() {
    let sim = sim().await;
    let g = add_ct(&sim, 270, "gw=10.1.2.1,ip=10.1.2.3/24", Dhcp::Answers);
    assert_eq!(g.static_ipv4(), Some(Ipv4Addr::new(10, 1, 2, 3)));
    assert_eq!(g.live_ipv4(), None, "stopped");
    let pve = token_client(&sim);
    let upid = pve.lxc_start("pve1", 270).await.unwrap();
    pve.wait_task(&upid, quick()).await.unwrap();
    let a: Value = get(&sim, "/api2/json/nodes/pve1/lxc/270/interfaces").await.json();
    assert_eq!(a["data"][1]["inet"], "10.1.2.3/24");
    assert_eq!(sim.state().guests[&270].live_ipv4(), Some(Ipv4Addr::new(10, 1, 2, 3)));
}

#[tokio::test]
async fn a_cloud_init_address_is_in_the_config_when_the_agent_cannot_tell() {
    let sim = sim().await;
    let ipconfig = "ip=10.20.30.40/24,gw=10.20.30.1";
    let quiet = add_vm(&sim, 280, |g| {
        g.config.insert("ipconfig0".into(), ipconfig.into());
        g.agent = AgentState::NotRunning;
    });
    let told = add_vm(&sim, 281, |g| {
        g.config.insert("ipconfig0".into(), "ip=10.20.30.41/24,gw=10.20.30.1".into());
    });
    let pve = token_client(&sim);
    assert_eq!(pve.qemu_config("pve1", 280).await.unwrap().other["ipconfig0"], ipconfig);
    assert_eq!(quiet.static_ipv4(), Some(Ipv4Addr::new(10, 20, 30, 40)));
    assert_eq!(quiet.live_ipv4(), None, "the agent cannot answer");
    assert!(pve.qemu_agent_interfaces("pve1", 280).await.is_err());
    let ifaces = pve.qemu_agent_interfaces("pve1", 281).await.unwrap();
    assert_eq!(ipv4s(&ifaces[1]), [Ipv4Addr::new(10, 20, 30, 41)]);
    assert_eq!(told.live_ipv4(), told.static_ipv4());
}
