//! A generated inventory of N guests mixed like a real cluster's, deterministic by seed
//! ([`GeneratedInventory`]); it replaces the default inventory's sample VMs (templates 9000–9002 and 9100 stay).
//!
//! The mix, each drawn independently per guest (percentages of the population named):
//! - kind: 70 % QEMU, 30 % LXC; 20 % of all guests stopped; nodes `pve1…pveK`, K = max(3, N / 400);
//!   VMIDs from 100 upward with a gap after ~3 % of guests.
//! - QEMU `agent` key: 30 % absent, 5 % off (`0` or `enabled=0`), 65 % on (`1`,
//!   `enabled=1,fstrim_cloned_disks=1` or `1,fstrim_cloned_disks=1`). The agent inside each QEMU guest:
//!   75 % responsive, 10 % not running, 15 % silent (it matters where the key is on).
//! - 15 % of QEMU guests run Windows; the rest, and every CT, Linux.
//! - 15 % of QEMU guests have a cloud-init static address (`ipconfig0: ip=10.…/24,gw=…`).
//! - 5 % of Linux QEMU guests without a static address never get a DHCP lease (IPv6 link-local only).
//! - LXC: 10 % on DHCP that never answers, 15 % static `ip=10.…/24` in `net0`, the rest leased.
//! - 10 % of Linux guests have a `docker0` bridge (172.17.0.1/16); in QEMU half of them list it
//!   before the NIC.
//! - notes: 12 % credential entries in the `key:"value"` syntax (Windows `rdp`, Linux `ssh`, a quarter
//!   with a second protocol, about one in ten malformed), 40 % prose (`Owner: …`), 48 % none.
//! - 10 % tagged, 1 % locked (`lock: backup`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::guest_net::{AgentState, Dhcp, DockerBridge, GuestOs};
use super::inventory::random_mac;
use super::state::{Guest, GuestKind};

/// How many guests to generate and from which seed: same seed, same inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedInventory {
    /// How many guests (templates not counted).
    pub guests: usize,
    /// Seeds every draw, MACs included; independent of [`super::SimConfig::seed`]'s other uses.
    pub seed: u64,
}

impl GeneratedInventory {
    /// `pve1…pveK` with K = max(3, guests / 400).
    pub fn node_names(&self) -> Vec<String> {
        (1..=(self.guests / 400).max(3)).map(|i| format!("pve{i}")).collect()
    }

    /// The guests, placed on [`GeneratedInventory::node_names`]; VMIDs skip the templates 9000–9002, 9100.
    pub fn guests(&self) -> Vec<Guest> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let nodes = self.node_names();
        let mut names = Names::default();
        let mut vmid = 100;
        let now = Instant::now();
        (0..self.guests)
            .map(|i| {
                if rng.random_bool(0.03) {
                    vmid += rng.random_range(1..=5);
                }
                if (9000..=9002).contains(&vmid) {
                    vmid = 9003;
                }
                if vmid == 9100 {
                    vmid = 9101;
                }
                let node = nodes[rng.random_range(0..nodes.len())].clone();
                let g = guest(&mut rng, &mut names, vmid, node, i as u32, now);
                vmid += 1;
                g
            })
            .collect()
    }
}

const LINUX_ROLES: &[&str] = &[
    "web",
    "db",
    "ci-runner",
    "k8s-node",
    "app",
    "cache",
    "mon",
    "proxy",
    "git",
    "mail",
    "dns",
    "build",
    "lb",
    "kafka",
    "es",
    "jump",
    "vpn",
    "backup",
    "grafana",
    "nfs",
];
const WINDOWS_ROLES: &[&str] = &["win-build", "win-srv", "win-dc", "rdp-gw", "win-sql", "win-app", "win-dev"];
const PEOPLE: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"];
const TAGS: &[&str] = &["prod", "dev", "test", "ci", "backup-daily", "team-a", "team-b", "legacy"];

/// Per-role counters, so names are unique and look like real ones (`web-03`, `ci-runner-7`).
#[derive(Default)]
struct Names(BTreeMap<&'static str, u32>);

impl Names {
    fn next(&mut self, rng: &mut StdRng, os: GuestOs) -> String {
        let roles = if os == GuestOs::Windows { WINDOWS_ROLES } else { LINUX_ROLES };
        let role = roles[rng.random_range(0..roles.len())];
        let n = self.0.entry(role).or_insert(0);
        *n += 1;
        // Most teams zero-pad, some do not.
        if role.len() % 3 == 0 { format!("{role}-{n}") } else { format!("{role}-{n:02}") }
    }
}

/// The i-th address of a /24-per-252-hosts plan under `10.<base>.0.0/…`: (address, gateway `.1`).
fn address(base: u8, i: u32) -> (Ipv4Addr, Ipv4Addr) {
    let (host, net) = ((i % 252) as u8 + 2, i / 252);
    let (b1, b2) = (base.saturating_add((net / 256) as u8), (net % 256) as u8);
    (Ipv4Addr::new(10, b1, b2, host), Ipv4Addr::new(10, b1, b2, 1))
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn guest(rng: &mut StdRng, names: &mut Names, vmid: u64, node: String, i: u32, now: Instant) -> Guest {
    let kind = if rng.random_bool(0.7) { GuestKind::Qemu } else { GuestKind::Lxc };
    let running = rng.random_bool(0.8);
    let qemu = kind == GuestKind::Qemu;
    let os = if qemu && rng.random_bool(0.15) { GuestOs::Windows } else { GuestOs::Linux };
    let name = names.next(rng, os);
    let mac = random_mac(rng);
    let mut config = BTreeMap::new();
    let mut set = |k: &str, v: String| config.insert(k.to_owned(), v);
    let (mut dhcp, mut agent) = (Dhcp::Answers, AgentState::Responsive);
    let docker = match os {
        GuestOs::Linux if rng.random_bool(0.10) => {
            if qemu && rng.random_bool(0.5) {
                DockerBridge::BeforeNic
            } else {
                DockerBridge::AfterNic
            }
        }
        _ => DockerBridge::Absent,
    };
    let (lease, _) = address(64, i);
    if qemu {
        set("name", name.clone());
        set("sockets", "1".into());
        set("cores", pick(rng, &["1", "2", "4", "8"]).into());
        set("scsihw", "virtio-scsi-single".into());
        set("boot", "order=scsi0;net0".into());
        let (ostype, disk, memory, model) = match os {
            GuestOs::Windows => (pick(rng, &["win10", "win11"]), "80G", pick(rng, &["8192", "16384"]), "e1000"),
            GuestOs::Linux => ("l26", "32G", pick(rng, &["1024", "2048", "4096", "8192"]), "virtio"),
        };
        set("ostype", ostype.into());
        set("memory", memory.into());
        set("scsi0", format!("local-lvm:vm-{vmid}-disk-0,iothread=1,size={disk}"));
        set("net0", format!("{model}={mac},bridge=vmbr0,firewall=1"));
        if os == GuestOs::Windows {
            set("bios", "ovmf".into());
            set("machine", "pc-q35-9.0".into());
        }
        let r: f64 = rng.random();
        if r >= 0.30 {
            let value = if r < 0.35 {
                pick(rng, &["0", "enabled=0"])
            } else {
                pick(rng, &["1", "1", "1", "enabled=1,fstrim_cloned_disks=1", "1,fstrim_cloned_disks=1"])
            };
            set("agent", value.into());
        }
        let r: f64 = rng.random();
        agent = if r < 0.75 {
            AgentState::Responsive
        } else if r < 0.85 {
            AgentState::NotRunning
        } else {
            AgentState::Silent
        };
        if rng.random_bool(0.15) {
            let (ip, gw) = address(32, i);
            set("ide2", format!("local-lvm:vm-{vmid}-cloudinit,media=cdrom"));
            set("ciuser", if os == GuestOs::Windows { "Administrator".into() } else { "debian".into() });
            set("ipconfig0", format!("ip={ip}/24,gw={gw}"));
        } else if os == GuestOs::Linux && rng.random_bool(0.05) {
            dhcp = Dhcp::NeverAnswers;
        }
    } else {
        set("hostname", name.clone());
        set("arch", "amd64".into());
        set("cores", pick(rng, &["1", "2", "4"]).into());
        set("memory", pick(rng, &["512", "1024", "2048"]).into());
        set("swap", "512".into());
        set("ostype", pick(rng, &["debian", "ubuntu", "alpine"]).into());
        set("unprivileged", "1".into());
        set("rootfs", format!("local-lvm:vm-{vmid}-disk-0,size=8G"));
        if docker != DockerBridge::Absent {
            set("features", "keyctl=1,nesting=1".into());
        }
        let r: f64 = rng.random();
        let ip = if r < 0.10 {
            dhcp = Dhcp::NeverAnswers;
            "ip=dhcp".to_owned()
        } else if r < 0.25 {
            let (ip, gw) = address(32, i);
            format!("gw={gw},ip={ip}/24")
        } else {
            "ip=dhcp".to_owned()
        };
        set("net0", format!("name=eth0,bridge=vmbr0,firewall=1,hwaddr={mac},{ip},type=veth"));
    }
    let r: f64 = rng.random();
    if r < 0.12 {
        set("description", credential_notes(rng, os));
    } else if r < 0.52 {
        set("description", prose_notes(rng, &name));
    }
    if rng.random_bool(0.10) {
        let mut tags = vec![pick(rng, TAGS), pick(rng, TAGS)];
        tags.truncate(rng.random_range(1..=2));
        tags.sort_unstable();
        tags.dedup();
        set("tags", tags.join(";"));
    }
    if rng.random_bool(0.01) {
        set("lock", "backup".into());
    }
    if rng.random_bool(0.3) {
        set("onboot", "1".into());
    }
    let uptime = Duration::from_secs(rng.random_range(60..90 * 86_400));
    let started_at = running.then(|| now.checked_sub(uptime).unwrap_or(now));
    let mut g = Guest::new(vmid, kind, node, config);
    g.running = running;
    g.started_at = started_at;
    g.ip = (dhcp == Dhcp::Answers).then_some(lease);
    g.ip_ready_at = started_at;
    g.agent = agent;
    g.os = os;
    g.docker = docker;
    g.dhcp = dhcp;
    g
}

fn password(rng: &mut StdRng) -> String {
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#%&*-_@";
    (0..rng.random_range(10..18)).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// An entry in the notes syntax (notes-syntax.md), in the spellings people use, about one in ten broken.
fn credential_notes(rng: &mut StdRng, os: GuestOs) -> String {
    let pw = password(rng);
    let (user, protos) = match os {
        GuestOs::Windows => ("Administrator", if rng.random_bool(0.25) { "rdp,vnc" } else { "rdp" }),
        GuestOs::Linux => {
            (pick(rng, &["root", "admin", "debian", "deploy"]), if rng.random_bool(0.25) { "ssh,vnc" } else { "ssh" })
        }
    };
    let entry = match rng.random_range(0..30) {
        0 => format!("user:\"{user}\" pass:\"{pw}\" protos:\"{protos}\""),
        1 => format!("user:\"{user}\" pass:\"{pw} protos:\"{protos}\";"),
        2 => format!("user:\"{user}\" pass:\"{pw}\" protos:\"{protos}\" port:\"22a\";"),
        3..=6 => format!("username:\"{user}\" password:\"{pw}\" protocols:\"{protos}\";"),
        7..=9 => format!("user:{user} pass:{pw} protos:{protos};"),
        _ => format!("user:\"{user}\" pass:\"{pw}\" protos:\"{protos}\";"),
    };
    if rng.random_bool(0.5) { format!("Owner: {}\n{entry}", pick(rng, PEOPLE)) } else { entry }
}

fn prose_notes(rng: &mut StdRng, name: &str) -> String {
    let owner = pick(rng, PEOPLE);
    match rng.random_range(0..4) {
        0 => format!("Owner: {owner}"),
        1 => format!("Owner: {owner}\nPurpose: {name}\nTicket: OPS-{}", rng.random_range(100..9999)),
        2 => format!("## {name}\nManaged by Ansible; do not edit by hand.\n\nOwner: {owner}"),
        _ => format!(
            "Owner: {owner}\nDecommission after {}-{:02}",
            rng.random_range(2025..2028),
            rng.random_range(1..13)
        ),
    }
}
