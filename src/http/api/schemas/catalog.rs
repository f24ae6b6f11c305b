//! Catalog entries.

use poem_openapi::{Enum, Object};

use crate::domain::guest::{MachineKind, split_list};

/// How an entry makes machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum TemplateKind {
    /// Clone an LXC template.
    #[oai(rename = "lxc")]
    Lxc,
    /// Clone a QEMU template with a cloud-init drive.
    #[oai(rename = "qemu-cloudinit")]
    QemuCloudinit,
    /// Create a blank QEMU VM that boots an installer ISO.
    #[oai(rename = "qemu-iso")]
    QemuIso,
}

impl From<TemplateKind> for MachineKind {
    fn from(k: TemplateKind) -> Self {
        match k {
            TemplateKind::Lxc => MachineKind::Lxc,
            TemplateKind::QemuCloudinit => MachineKind::QemuCloudInit,
            TemplateKind::QemuIso => MachineKind::QemuIso,
        }
    }
}

impl From<MachineKind> for TemplateKind {
    fn from(k: MachineKind) -> Self {
        match k {
            MachineKind::Lxc => TemplateKind::Lxc,
            MachineKind::QemuCloudInit => TemplateKind::QemuCloudinit,
            MachineKind::QemuIso => TemplateKind::QemuIso,
        }
    }
}

/// A catalog entry.
#[derive(Debug, Object)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub kind: TemplateKind,
    /// The template guest's node (ISO entries: the first of `nodes`).
    pub node: String,
    /// The template guest's VMID (0 for ISO entries).
    pub vmid: i64,
    /// ISO entries: the nodes new VMs may be placed on.
    pub nodes: Vec<String>,
    /// The storages a request may choose (`storage`); empty: the template's own.
    pub storages: Vec<String>,
    /// The bridges a request may choose (`bridge`); empty: the template's network as it is.
    pub bridges: Vec<String>,
    /// ISO entries: the installer images a request may choose (`iso`).
    pub isos: Vec<String>,
    /// ISO entries: PVE's `ostype` of new VMs.
    pub ostype: String,
    /// Cloud-init entries: static addresses `first-last/prefix`; absent: DHCP.
    pub ip_pool: Option<String>,
    /// Cloud-init entries with a pool: the gateway.
    pub gateway: Option<String>,
    pub default_cores: i32,
    pub max_cores: i32,
    pub default_memory_mib: i32,
    pub max_memory_mib: i32,
    pub default_disk_gib: i32,
    pub max_disk_gib: i32,
    pub full_clone: bool,
    pub enabled: bool,
    /// Containers' `net0` (LXC entries; empty otherwise).
    pub net0: String,
    /// `node` (`pct exec` on the node, LXC only), `guest` (SSH to the machine) or `none`.
    pub finish_mode: String,
    /// Snapshots each machine may keep; `null`: the server's `snapshot_limit_default`.
    pub snapshot_limit: Option<i32>,
}

impl From<entities::template::Model> for Template {
    fn from(t: entities::template::Model) -> Self {
        Template {
            id: t.id,
            kind: crate::services::catalog::kind_of(&t).into(),
            name: t.name,
            description: t.description,
            node: t.node,
            vmid: t.vmid,
            nodes: split_list(&t.nodes),
            storages: split_list(&t.storages),
            bridges: split_list(&t.bridges),
            isos: split_list(&t.isos),
            ostype: t.ostype,
            ip_pool: t.ip_pool,
            gateway: t.gateway,
            default_cores: t.default_cores,
            max_cores: t.max_cores,
            default_memory_mib: t.default_memory_mib,
            max_memory_mib: t.max_memory_mib,
            default_disk_gib: t.default_disk_gib,
            max_disk_gib: t.max_disk_gib,
            full_clone: t.full_clone,
            enabled: t.enabled,
            net0: t.net0,
            finish_mode: t.finish_mode,
            snapshot_limit: t.snapshot_limit,
        }
    }
}

/// A catalog entry as an admin writes it. Every node, template, storage, bridge and ISO named must
/// exist on the cluster (checked with PVE when saved; 503 when PVE does not answer).
#[derive(Debug, Object)]
pub struct TemplateBody {
    pub name: String,
    #[oai(default)]
    pub description: String,
    /// Default `lxc`.
    pub kind: Option<TemplateKind>,
    /// The template guest's node (LXC and cloud-init entries).
    pub node: Option<String>,
    /// The template guest's VMID (LXC and cloud-init entries).
    pub vmid: Option<i64>,
    /// ISO entries: at least one node.
    #[oai(default)]
    pub nodes: Vec<String>,
    /// Allowed storages (ISO entries: at least one).
    #[oai(default)]
    pub storages: Vec<String>,
    /// Allowed bridges (ISO entries: at least one).
    #[oai(default)]
    pub bridges: Vec<String>,
    /// ISO entries: allowed installer images (`local:iso/…`), at least one.
    #[oai(default)]
    pub isos: Vec<String>,
    /// ISO entries: default `l26`.
    pub ostype: Option<String>,
    /// Cloud-init entries: `first-last/prefix`; absent: DHCP.
    pub ip_pool: Option<String>,
    pub gateway: Option<String>,
    pub default_cores: i32,
    pub max_cores: i32,
    pub default_memory_mib: i32,
    pub max_memory_mib: i32,
    pub default_disk_gib: i32,
    pub max_disk_gib: i32,
    #[oai(default = "default_true")]
    pub full_clone: bool,
    #[oai(default = "default_true")]
    pub enabled: bool,
    /// LXC entries; default `name=eth0,bridge=vmbr0,ip=dhcp`.
    pub net0: Option<String>,
    /// `node` (default for LXC), `guest` or `none` (default for QEMU).
    pub finish_mode: Option<String>,
    /// Snapshots each machine may keep (0–100); absent: the server's `snapshot_limit_default`.
    pub snapshot_limit: Option<i32>,
}

fn default_true() -> bool {
    true
}
