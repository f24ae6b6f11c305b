//! Request and response types of the endpoints proxdesk uses, shaped as PVE sends them (pve-api.md §1:
//! booleans as 0/1, some numbers as strings).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod access;
mod discovery;
mod metrics;
mod qemu;
mod snapshots;
#[cfg(test)]
mod tests;

pub use access::{PermissionMap, Realm, TicketCheckAnswer, UserRecord};
pub use discovery::{NetworkInterface, StorageContentItem};
pub use metrics::{GuestUsage, RrdPoint, Timeframe};
pub use qemu::{
    DeleteOptions, PowerCommand, QemuCloneRequest, QemuConfigUpdate, QemuCreateRequest, decode_sshkeys, encode_sshkeys,
};
pub use snapshots::SnapshotEntry;

/// Accepts `101` and `"101"` alike (vmid, port, pid: pve-api.md §1).
pub fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Int(u64),
        Float(f64),
        Str(String),
    }
    match N::deserialize(d)? {
        N::Int(n) => Ok(n),
        // `as` would turn -1 into 0 and 1.5 into 1: only whole, non-negative numbers are ids and sizes.
        N::Float(f) if f.fract() == 0.0 && (0.0..u64::MAX as f64).contains(&f) => Ok(f as u64),
        N::Float(f) => Err(serde::de::Error::custom(format!("{f} is not a whole non-negative number"))),
        N::Str(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

fn lenient_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "lenient_u64")] u64);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

/// Form encoding of booleans: only `0` and `1` are accepted (pve-api.md §1).
pub fn bool01<S: Serializer>(v: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_u8(u8::from(*b)),
        None => s.serialize_none(),
    }
}

/// `GET /version`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Version {
    pub version: String,
    pub release: String,
    pub repoid: String,
    #[serde(default)]
    pub console: Option<String>,
}

/// One entry of `GET /nodes`.
#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    pub node: String,
    pub status: String,
    #[serde(default)]
    pub ssl_fingerprint: Option<String>,
    #[serde(default)]
    pub maxcpu: Option<u64>,
    #[serde(default)]
    pub maxmem: Option<u64>,
    #[serde(default)]
    pub uptime: Option<u64>,
}

/// One entry of `GET /cluster/resources` (guest, node, storage or pool).
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterResource {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub vmid: Option<u64>,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub template: Option<u8>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub storage: Option<String>,
    /// CPU use as a fraction of `maxcpu` (0.0–1.0); guests and nodes (nodes only with `Sys.Audit`).
    #[serde(default)]
    pub cpu: Option<f64>,
    /// CPUs: a node's cores, a guest's vCPUs (an LXC `cpulimit` may make it fractional).
    #[serde(default)]
    pub maxcpu: Option<f64>,
    /// Memory used, bytes.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub mem: Option<u64>,
    /// Memory size, bytes.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub maxmem: Option<u64>,
    /// Disk used, bytes (a node's root file system, a storage's use, a guest's root disk).
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub disk: Option<u64>,
    /// Disk size, bytes.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub maxdisk: Option<u64>,
    /// Seconds since start.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub uptime: Option<u64>,
}

/// A guest as listed by `GET /nodes/{node}/lxc` and by `status/current` (LXC and QEMU).
#[derive(Debug, Clone, Deserialize)]
pub struct GuestStatus {
    #[serde(deserialize_with = "lenient_u64")]
    pub vmid: u64,
    pub status: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub template: Option<u8>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default)]
    pub cpus: Option<f64>,
    #[serde(default)]
    pub maxmem: Option<u64>,
    #[serde(default)]
    pub maxdisk: Option<u64>,
    #[serde(default)]
    pub uptime: Option<u64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub pid: Option<u64>,
    /// QEMU only.
    #[serde(default)]
    pub qmpstatus: Option<String>,
    /// QEMU only: 1 when the guest agent is enabled in the config.
    #[serde(default)]
    pub agent: Option<u8>,
}

impl GuestStatus {
    /// Whether the guest is running.
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }
    /// Whether the guest is a template.
    pub fn is_template(&self) -> bool {
        self.template == Some(1)
    }
}

/// `POST /nodes/{node}/lxc/{vmid}/clone` (pve-api.md §6.2).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CloneRequest {
    pub newid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Only for full clones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bool01")]
    pub full: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// `GET /nodes/{node}/{lxc|qemu}/{vmid}/config`: the known keys typed, the rest kept as they came.
#[derive(Debug, Clone, Deserialize)]
pub struct GuestConfig {
    #[serde(default)]
    pub hostname: Option<String>,
    /// QEMU's name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub cores: Option<u64>,
    /// MiB; QEMU sends it as a string (pve-api.md §9).
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub memory: Option<u64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub swap: Option<u64>,
    #[serde(default)]
    pub rootfs: Option<String>,
    #[serde(default)]
    pub net0: Option<String>,
    /// The Notes; LXC appends `\n` to each line, QEMU strips the final one (pve-api.md §9).
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub onboot: Option<u64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub template: Option<u64>,
    #[serde(default)]
    pub lock: Option<String>,
    pub digest: String,
    /// Every other key, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `PUT /nodes/{node}/lxc/{vmid}/config` (pve-api.md §6.3). Unset fields are not sent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LxcConfigUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bool01")]
    pub onboot: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net0: Option<String>,
    /// Comma-separated keys to remove.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<String>,
    /// Refuse the change if the config changed since this digest was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// `PUT /nodes/{node}/{lxc|qemu}/{vmid}/resize`: `size` like `+2G` (grow by) or `16G` (absolute).
#[derive(Debug, Clone, Serialize)]
pub struct ResizeRequest {
    pub disk: String,
    pub size: String,
}

/// One address of an interface (LXC `inet`/`inet6`, QEMU agent `ipv4`/`ipv6`).
#[derive(Debug, Clone, Deserialize)]
pub struct IpAddress {
    #[serde(rename = "ip-address-type")]
    pub kind: String,
    #[serde(rename = "ip-address")]
    pub address: String,
    #[serde(default)]
    pub prefix: Option<u8>,
}

/// One entry of LXC `GET …/interfaces` (pve-api.md §6.8) or of the QEMU agent's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub hwaddr: Option<String>,
    #[serde(default, rename = "hardware-address")]
    pub hardware_address: Option<String>,
    #[serde(default)]
    pub inet: Option<String>,
    #[serde(default)]
    pub inet6: Option<String>,
    /// Absent on older servers (pve-api.md §0).
    #[serde(default, rename = "ip-addresses")]
    pub ip_addresses: Vec<IpAddress>,
}

/// The address a person would pick (moved beside the other address rules).
pub use super::address::first_ipv4;

/// `GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces`.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentInterfaces {
    pub result: Vec<Interface>,
}

/// The answer of `vncproxy` and `termproxy` (pve-api.md §6.9, §8.1).
#[derive(Debug, Clone, Deserialize)]
pub struct ConsoleTicket {
    pub user: String,
    /// Send verbatim as `vncticket`.
    pub ticket: String,
    #[serde(deserialize_with = "lenient_u64")]
    pub port: u64,
    pub upid: String,
    #[serde(default)]
    pub cert: Option<String>,
    /// The VNC password when present (current versions with `websocket=1`).
    #[serde(default)]
    pub password: Option<String>,
}

/// `GET /nodes/{node}/tasks/{upid}/status` (pve-api.md §4.3).
#[derive(Debug, Clone, Deserialize)]
pub struct TaskStatus {
    pub upid: String,
    pub node: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub user: String,
    #[serde(default)]
    pub tokenid: Option<String>,
    /// `running` or `stopped`.
    pub status: String,
    /// Only when stopped: `OK`, `WARNINGS: n`, or the error text.
    #[serde(default)]
    pub exitstatus: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub starttime: Option<u64>,
}

/// One entry of `GET /nodes/{node}/tasks` (pve-api.md §4.5).
#[derive(Debug, Clone, Deserialize)]
pub struct TaskListEntry {
    pub upid: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The guest the task is about (for a clone: the source).
    pub id: String,
    pub user: String,
    #[serde(default)]
    pub tokenid: Option<String>,
    /// `RUNNING` while active, else the exit status.
    #[serde(default)]
    pub status: Option<String>,
}

/// One line of `GET /nodes/{node}/tasks/{upid}/log`.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskLogLine {
    pub n: u64,
    pub t: String,
}

/// One entry of `GET /pools`.
#[derive(Debug, Clone, Deserialize)]
pub struct Pool {
    pub poolid: String,
    #[serde(default)]
    pub comment: Option<String>,
}

/// One entry of `GET /nodes/{node}/storage`.
#[derive(Debug, Clone, Deserialize)]
pub struct Storage {
    pub storage: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub active: Option<u8>,
    #[serde(default)]
    pub enabled: Option<u8>,
    #[serde(default)]
    pub shared: Option<u8>,
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub avail: Option<u64>,
}

/// `POST /access/ticket` (pve-api.md §2.1).
#[derive(Debug, Clone, Deserialize)]
pub struct TicketAnswer {
    pub username: String,
    pub ticket: String,
    #[serde(rename = "CSRFPreventionToken")]
    pub csrf: String,
    #[serde(default)]
    pub cap: Option<serde_json::Value>,
}

/// `GET /access/permissions`: ACL path → privilege → 1.
pub type Permissions = BTreeMap<String, BTreeMap<String, u8>>;
