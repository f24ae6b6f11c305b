//! The default inventory: nodes pve1–pve3, storages (ISOs on `local`), bridges `vmbr0`/`vmbr1` and the
//! SDN vnet `lab10` on every node, LXC templates 9000–9002 (proxdesk's demo catalog), the cloud-init VM
//! template 9100, and three QEMU VMs with notes: 100 running with a responsive agent, 101 stopped, 102
//! without an `agent` key. With [`SimConfig::generated`] the VMs give way to generated guests
//! (`generate.rs`); the templates stay.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::Rng;
use rand::rngs::StdRng;

use super::SimConfig;
use super::state::{Guest, GuestKind, NetworkDef, State, StorageDef, StorageFile};

/// A MAC with Proxmox's default prefix `BC:24:11` (pve-api.md §6.2).
pub(crate) fn random_mac(rng: &mut StdRng) -> String {
    let b: [u8; 3] = rng.random();
    format!("BC:24:11:{:02X}:{:02X}:{:02X}", b[0], b[1], b[2])
}

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn template(vmid: u64, node: &str, host: &str, ostype: &str, notes: &str, rng: &mut StdRng) -> Guest {
    let mac = random_mac(rng);
    let mut cfg = config(&[
        ("arch", "amd64"),
        ("cores", "1"),
        ("memory", "512"),
        ("swap", "512"),
        ("hostname", host),
        ("ostype", ostype),
        ("template", "1"),
        ("unprivileged", "1"),
        ("features", "nesting=1"),
        ("description", notes),
    ]);
    cfg.insert("rootfs".into(), format!("local-lvm:base-{vmid}-disk-0,size=8G"));
    cfg.insert("net0".into(), format!("name=eth0,bridge=vmbr0,firewall=1,hwaddr={mac},ip=dhcp,type=veth"));
    Guest::new(vmid, GuestKind::Lxc, node, cfg)
}

/// VM template 9100 `debian-12-cloud`: a cloud image with the agent, a cloud-init drive and a serial
/// console (the contract's QEMU catalog entry).
fn cloud_template(rng: &mut StdRng) -> Guest {
    let mac = random_mac(rng);
    let mut cfg = config(&[
        ("name", "debian-12-cloud"),
        ("template", "1"),
        ("agent", "1"),
        ("cores", "1"),
        ("sockets", "1"),
        ("memory", "1024"),
        ("ostype", "l26"),
        ("scsihw", "virtio-scsi-single"),
        ("scsi0", "local-lvm:base-9100-disk-0,size=2G"),
        ("ide2", "local-lvm:vm-9100-cloudinit,media=cdrom"),
        ("serial0", "socket"),
        ("boot", "order=scsi0"),
        ("smbios1", "uuid=5f8e1a7c-3b2d-4c6e-9a1f-0d7b3c5e9a21"),
        ("vmgenid", "b4c1d2e3-7f60-4a8b-9c0d-1e2f3a4b5c6d"),
        ("meta", "creation-qemu=10.1.2,ctime=1733330000"),
        ("description", "Debian 12 cloud image (genericcloud)\nManaged by: infra"),
    ]);
    cfg.insert("net0".into(), format!("virtio={mac},bridge=vmbr0"));
    Guest::new(9100, GuestKind::Qemu, "pve1", cfg)
}

fn iso(name: &str, mib: u64, ctime: i64) -> StorageFile {
    StorageFile { volid: format!("local:iso/{name}"), content: "iso".into(), size: mib << 20, ctime }
}

fn bridge(iface: &str, ports: &str, cidr: Option<&str>, gateway: Option<&str>) -> NetworkDef {
    NetworkDef {
        iface: iface.into(),
        kind: "bridge".into(),
        ports: ports.into(),
        cidr: cidr.map(str::to_owned),
        gateway: gateway.map(str::to_owned),
        zone: None,
    }
}

fn vm(vmid: u64, node: &str, name: &str, notes: &str, running: bool, agent: bool, rng: &mut StdRng) -> Guest {
    let mac = random_mac(rng);
    let mut cfg = config(&[
        ("name", name),
        ("cores", "2"),
        ("sockets", "1"),
        ("memory", "2048"),
        ("ostype", "l26"),
        ("boot", "order=scsi0"),
        ("description", notes),
    ]);
    cfg.insert("scsi0".into(), format!("local-lvm:vm-{vmid}-disk-0,size=32G"));
    cfg.insert("net0".into(), format!("virtio={mac},bridge=vmbr0"));
    if agent {
        cfg.insert("agent".into(), "1".into());
    }
    let ip = running.then(|| std::net::Ipv4Addr::new(10, 10, 0, (vmid % 200) as u8 + 10));
    Guest {
        running,
        started_at: running.then(Instant::now),
        ip,
        ip_ready_at: running.then(Instant::now),
        ..Guest::new(vmid, GuestKind::Qemu, node, cfg)
    }
}

pub(crate) fn build(cfg: &SimConfig, rng: &mut StdRng) -> State {
    let nodes = match &cfg.generated {
        Some(generated) => generated.node_names(),
        None => vec!["pve1".into(), "pve2".into(), "pve3".into()],
    };
    let mut state = State {
        nodes,
        storages: vec![
            StorageDef {
                id: "local".into(),
                kind: "dir".into(),
                content: "backup,iso,vztmpl".into(),
                total: 100 << 30,
                used: 12 << 30,
            },
            StorageDef {
                id: "local-lvm".into(),
                kind: "lvmthin".into(),
                content: "images,rootdir".into(),
                total: 500 << 30,
                used: 60 << 30,
            },
        ],
        files: vec![
            iso("alpine-virt-3.20.3-x86_64.iso", 63, 1_726_000_000),
            iso("debian-12.8.0-amd64-netinst.iso", 631, 1_731_700_000),
            iso("ubuntu-24.04.1-live-server-amd64.iso", 2_694, 1_724_900_000),
        ],
        networks: vec![
            bridge("vmbr0", "eno1", Some("192.0.2.10/24"), Some("192.0.2.1")),
            bridge("vmbr1", "", None, None),
            NetworkDef {
                iface: "lab10".into(),
                kind: "vnet".into(),
                ports: String::new(),
                cidr: None,
                gateway: None,
                zone: Some("lab".into()),
            },
        ],
        next_pid: 100_000 + rng.random_range(0..50_000),
        access: super::access::seed(cfg),
        ..State::default()
    };
    state.pools.insert("proxdesk".into(), "guests created by proxdesk".into());
    super::access::register_pools(&mut state);
    if !cfg.default_inventory && cfg.generated.is_none() {
        return state;
    }
    let templates = [
        template(9000, "pve1", "debian-12", "debian", "Debian 12 base template\nManaged by: infra", rng),
        template(9001, "pve2", "ubuntu-2404", "ubuntu", "Ubuntu 24.04 base template", rng),
        template(9002, "pve3", "alpine-320", "alpine", "Alpine 3.20 base template", rng),
        cloud_template(rng),
    ];
    let guests = match &cfg.generated {
        Some(generated) => generated.guests(),
        None => vec![
            vm(100, "pve1", "web-legacy", "Owner: alice\nPurpose: legacy web\n\nguac: rdp 3389", true, true, rng),
            vm(101, "pve2", "db-archive", "Owner: bob\nPurpose: database archive", false, true, rng),
            vm(102, "pve3", "win-build", "Owner: carol\nPurpose: Windows builds", true, false, rng),
        ],
    };
    for g in templates.into_iter().chain(guests) {
        state.guests.insert(g.vmid, g);
    }
    state
}
