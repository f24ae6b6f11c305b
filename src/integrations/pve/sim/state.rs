//! The simulated cluster's state: nodes, storages, guests with their config files, tasks, pools.
//! Tests read a copy through `SimHandle::state`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use sha1::{Digest, Sha1};

use super::cloudinit::CloudInitImage;
use super::guest_net::{AgentState, Dhcp, DockerBridge, GuestOs};
use super::reply::ApiError;
use crate::integrations::pve::Upid;

/// LXC container or QEMU VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestKind {
    Lxc,
    Qemu,
}

impl GuestKind {
    /// `lxc` or `qemu`, as in paths and resource ids.
    pub fn as_str(self) -> &'static str {
        match self {
            GuestKind::Lxc => "lxc",
            GuestKind::Qemu => "qemu",
        }
    }
    /// `CT` or `VM`, as in PVE's error texts.
    pub fn label(self) -> &'static str {
        match self {
            GuestKind::Lxc => "CT",
            GuestKind::Qemu => "VM",
        }
    }
}

/// One guest and its config file (values as stored; `description` as written by the last PUT).
#[derive(Debug, Clone)]
pub struct Guest {
    pub vmid: u64,
    pub kind: GuestKind,
    pub node: String,
    pub config: BTreeMap<String, String>,
    pub running: bool,
    pub started_at: Option<Instant>,
    /// When it last stopped (for the RRD history of `metrics.rs`).
    pub stopped_at: Option<Instant>,
    /// Whether `status/current` sampled its CPU time before (the first sample reads 0, §8.1).
    pub cpu_sampled: bool,
    /// The DHCP lease, visible in `interfaces` from `ip_ready_at` on.
    pub ip: Option<Ipv4Addr>,
    pub ip_ready_at: Option<Instant>,
    pub pool: Option<String>,
    /// When the guest was created by the simulator (`None` for the initial inventory).
    pub created_at: Option<Instant>,
    /// What proxdesk's finishing script set over the node's SSH (`pct exec`), if it ran.
    pub finished: Option<FinishRecord>,
    /// The container's `/etc/passwd`; a clone starts with its template's.
    pub passwd: super::passwd::Passwd,
    /// What the QEMU guest agent inside does (the `agent` config key only opens the channel).
    pub agent: AgentState,
    /// Shapes the agent's interface list (Linux or Windows names).
    pub os: GuestOs,
    /// A `docker0` bridge beside the NIC, and where it is listed.
    pub docker: DockerBridge,
    /// Whether a DHCP lease ever arrives (static addresses do not ask).
    pub dhcp: Dhcp,
    /// QEMU `[PENDING]` values: changes a running VM takes at its next start (pve-qemu-day2.md §2.6).
    pub pending: BTreeMap<String, String>,
    /// QEMU `[PENDING]` `delete:` keys.
    pub pending_delete: Vec<String>,
    /// The cloud-init data the VM booted with, rebuilt from the config at each start (QEMU with a
    /// `vm-<vmid>-cloudinit` drive only).
    pub cloudinit: Option<CloudInitImage>,
    /// The config file's `[<snapname>]` sections (pve-qemu-day2.md §6); the current state's parent is
    /// the `parent` config key, as in PVE's file.
    pub snapshots: BTreeMap<String, super::snapshot_tree::Snapshot>,
}

/// The result of the finishing script (`ssh::finish_command`) run in a container through the simulated
/// node's SSH. The password is kept only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishRecord {
    /// The login created (or reused) in the container.
    pub login_user: String,
    /// SHA-256 (hex) of the password read from the first line of stdin.
    pub password_sha256: String,
    /// The line written to the user's `authorized_keys`, if a key was given.
    pub authorized_key: Option<String>,
    /// Written to `/etc/hostname`; the `hostname` config key is set to it too.
    pub hostname: String,
}

impl Guest {
    /// A stopped guest with `config`, no lease, a responsive agent, Linux, no `docker0`, DHCP answering.
    pub fn new(vmid: u64, kind: GuestKind, node: impl Into<String>, config: BTreeMap<String, String>) -> Self {
        Guest {
            vmid,
            kind,
            node: node.into(),
            config,
            running: false,
            started_at: None,
            stopped_at: None,
            cpu_sampled: false,
            ip: None,
            ip_ready_at: None,
            pool: None,
            created_at: None,
            finished: None,
            passwd: super::passwd::Passwd::default(),
            agent: AgentState::default(),
            os: GuestOs::default(),
            docker: DockerBridge::default(),
            dhcp: Dhcp::default(),
            pending: BTreeMap::new(),
            pending_delete: vec![],
            cloudinit: None,
            snapshots: BTreeMap::new(),
        }
    }
    /// The `lock` config key, if any.
    pub fn lock(&self) -> Option<&str> {
        self.config.get("lock").map(String::as_str)
    }
    /// Whether `template: 1` is set.
    pub fn is_template(&self) -> bool {
        self.config.get("template").is_some_and(|t| t == "1")
    }
    /// `CT is locked (create)` when locked (pve-api.md §3.2).
    pub fn check_lock(&self) -> Result<(), ApiError> {
        match self.lock() {
            Some(l) => Err(ApiError::internal(format!("{} is locked ({l})", self.kind.label()))),
            None => Ok(()),
        }
    }
    /// The `hwaddr=` of `net0`.
    pub fn mac(&self) -> Option<String> {
        let net0 = self.config.get("net0")?;
        net0.split(',').find_map(|kv| kv.strip_prefix("hwaddr=")).map(str::to_owned)
    }
    /// The displayed name: hostname (LXC) or name (QEMU).
    pub fn name(&self) -> String {
        let key = if self.kind == GuestKind::Lxc { "hostname" } else { "name" };
        match self.config.get(key) {
            Some(n) => n.split_whitespace().collect(),
            None if self.kind == GuestKind::Lxc => format!("CT{}", self.vmid),
            None => format!("VM {}", self.vmid),
        }
    }
    /// The Notes as GET returns them (pve-api.md §9): LXC appends `\n` per line, QEMU strips the end.
    pub fn description_read_back(&self) -> Option<String> {
        let raw = self.config.get("description")?;
        let lines: Vec<&str> = raw.split('\n').collect();
        let keep = lines.iter().rposition(|l| !l.is_empty()).map(|i| i + 1).unwrap_or(0);
        if keep == 0 {
            return None;
        }
        let text: String = lines[..keep].iter().map(|l| format!("{l}\n")).collect();
        match self.kind {
            GuestKind::Lxc => Some(text),
            GuestKind::Qemu => Some(text.trim_end().to_owned()),
        }
    }
    /// SHA-1 of the config file text, like PVE's `digest`.
    pub fn digest(&self) -> String {
        let mut text = String::new();
        if let Some(d) = self.config.get("description") {
            for line in d.split('\n') {
                text.push_str(&format!("#{line}\n"));
            }
        }
        for (k, v) in self.config.iter().filter(|(k, _)| *k != "description") {
            text.push_str(&format!("{k}: {v}\n"));
        }
        if !self.pending.is_empty() || !self.pending_delete.is_empty() {
            text.push_str("\n[PENDING]\n");
            if !self.pending_delete.is_empty() {
                text.push_str(&format!("delete: {}\n", self.pending_delete.join(",")));
            }
            for (k, v) in &self.pending {
                text.push_str(&format!("{k}: {v}\n"));
            }
        }
        hex::encode(Sha1::digest(text.as_bytes()))
    }
    /// The rootfs size in bytes (`size=8G`); for QEMU the first disk of the boot order.
    pub fn rootfs_bytes(&self) -> u64 {
        let key = if self.kind == GuestKind::Lxc { "rootfs".to_owned() } else { super::drive::boot_disk(&self.config) };
        self.config
            .get(&key)
            .and_then(|r| r.split(',').find_map(|kv| kv.strip_prefix("size=")))
            .and_then(parse_size)
            .unwrap_or(4 << 30)
    }
}

/// `8G`, `512M`, `1024` (bytes) → bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let (num, mult) = match text.chars().last()? {
        'K' => (&text[..text.len() - 1], 1u64 << 10),
        'M' => (&text[..text.len() - 1], 1 << 20),
        'G' => (&text[..text.len() - 1], 1 << 30),
        'T' => (&text[..text.len() - 1], 1 << 40),
        _ => (text, 1),
    };
    num.parse::<f64>().ok().filter(|n| *n >= 0.0).map(|n| (n * mult as f64) as u64)
}

/// Bytes → `16G` (or `M`/`K` when not a whole number of GiB).
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Running or stopped with its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running,
    Stopped { exit_status: String },
}

/// One task: its UPID, state and log lines.
#[derive(Debug, Clone)]
pub struct Task {
    pub upid: Upid,
    pub state: TaskState,
    pub log: Vec<String>,
}

/// A storage defined on every node.
#[derive(Debug, Clone)]
pub struct StorageDef {
    pub id: String,
    pub kind: String,
    pub content: String,
    pub total: u64,
    pub used: u64,
}

/// A file on a storage that is not a guest's volume: an ISO image or a container template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFile {
    /// `local:iso/debian-12.iso`.
    pub volid: String,
    /// `iso` or `vztmpl`.
    pub content: String,
    pub size: u64,
    pub ctime: i64,
}

/// A network interface every node has: a Linux bridge or an SDN vnet (pve-qemu-day2.md §7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDef {
    pub iface: String,
    /// `bridge` or `vnet`.
    pub kind: String,
    /// `bridge_ports` of a bridge (`""` for a port-less one).
    pub ports: String,
    /// `a.b.c.d/len` of a bridge with an address.
    pub cidr: Option<String>,
    pub gateway: Option<String>,
    /// The SDN zone of a vnet (its ACL path is `/sdn/zones/<zone>/<vnet>`).
    pub zone: Option<String>,
}

/// A console session opened by vncproxy/termproxy, waiting for its websocket.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub authid: String,
    pub vmid: u64,
    pub ticket: String,
    pub terminal: bool,
    pub created: Instant,
    pub upid: String,
    /// LXC or QEMU.
    pub kind: GuestKind,
    /// A QEMU terminal's `serial` parameter (`serial0`…), if given.
    pub serial: Option<String>,
}

/// The whole simulated cluster.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub nodes: Vec<String>,
    pub storages: Vec<StorageDef>,
    /// ISO images and templates, by storage.
    pub files: Vec<StorageFile>,
    /// Bridges and vnets, the same on every node.
    pub networks: Vec<NetworkDef>,
    pub guests: BTreeMap<u64, Guest>,
    pub tasks: BTreeMap<String, Task>,
    /// The most tasks of one type that ran at once on one node, by `node/type` (e.g. `pve1/vzclone`):
    /// how a test sees that a limit on concurrent work held.
    pub peak_running: BTreeMap<String, usize>,
    pub pools: BTreeMap<String, String>,
    pub consoles: BTreeMap<u16, ConsoleSession>,
    pub next_pid: u32,
    /// QEMU config flocks held by running workers, by VMID: the number of shared holders (clones of a
    /// stopped source), or [`EXCLUSIVE`] (a clone of a running one).
    pub flocks: BTreeMap<u64, u32>,
    /// Realms, users, groups, pools, roles and ACLs, as seeded by `SimConfig::access`.
    pub access: super::access::AccessConfig,
}

/// The [`State::flocks`] value of an exclusive flock.
pub const EXCLUSIVE: u32 = u32::MAX;

impl State {
    /// The guest `vmid` of `kind` on `node`, or PVE's "does not exist" text (pve-api.md §3.2).
    pub fn guest(&self, node: &str, kind: GuestKind, vmid: u64) -> Result<&Guest, ApiError> {
        self.guests
            .get(&vmid)
            .filter(|g| g.node == node && g.kind == kind)
            .ok_or_else(|| missing_config(node, kind, vmid))
    }

    /// Mutable variant of [`State::guest`].
    pub fn guest_mut(&mut self, node: &str, kind: GuestKind, vmid: u64) -> Result<&mut Guest, ApiError> {
        self.guests
            .get_mut(&vmid)
            .filter(|g| g.node == node && g.kind == kind)
            .ok_or_else(|| missing_config(node, kind, vmid))
    }

    /// Fails like `lock_config` after its wait when a worker holds the VM's config flock (pve-api.md §3.2).
    pub(crate) fn config_flock_free(&self, vmid: u64) -> Result<(), String> {
        match self.flocks.get(&vmid) {
            Some(_) => Err(format!("can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout")),
            None => Ok(()),
        }
    }

    /// The LXC containers (templates included), for test assertions.
    pub fn containers(&self) -> Vec<&Guest> {
        self.guests.values().filter(|g| g.kind == GuestKind::Lxc).collect()
    }
}

fn missing_config(node: &str, kind: GuestKind, vmid: u64) -> ApiError {
    let dir = if kind == GuestKind::Lxc { "lxc" } else { "qemu-server" };
    ApiError::internal(format!("Configuration file 'nodes/{node}/{dir}/{vmid}.conf' does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip() {
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("8"), Some(8));
        assert_eq!(format_size(16 << 30), "16G");
        assert_eq!(format_size(1536 << 20), "1536M");
    }
}
