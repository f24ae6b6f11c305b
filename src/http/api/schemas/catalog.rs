//! Catalog entries.

use poem_openapi::{Enum, Object};

use super::Text;
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

/// How a new machine is finished (its login, password and key set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum FinishMode {
    /// `pct exec` on the node (LXC only).
    Node,
    /// SSH to the machine.
    Guest,
    /// Not at all (cloud-init does it, or the installer).
    None,
}

impl FinishMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishMode::Node => "node",
            FinishMode::Guest => "guest",
            FinishMode::None => "none",
        }
    }

    /// From the stored word (one of `services::catalog::FINISH_MODES`).
    pub fn from_stored(s: &str) -> Self {
        match s {
            "guest" => FinishMode::Guest,
            "none" => FinishMode::None,
            _ => FinishMode::Node,
        }
    }
}

/// A catalog entry.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
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
    pub finish_mode: FinishMode,
    /// Snapshots each machine may keep; `null`: the server's `snapshot_limit_default`.
    pub snapshot_limit: Option<i32>,
    /// Lease of new machines in days; `null`: the server's `lease_default_days`.
    pub lease_days: Option<i32>,
    /// Longest lease an owner may extend to, in days from now; `null`: the server's `lease_max_days`.
    pub lease_max_days: Option<i32>,
    /// The groups whose approvals a request needs, in order; empty: admins decide alone.
    pub approval_stages: Vec<String>,
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
            finish_mode: FinishMode::from_stored(&t.finish_mode),
            snapshot_limit: t.snapshot_limit,
            lease_days: t.lease_days,
            lease_max_days: t.lease_max_days,
            approval_stages: vec![],
        }
    }
}

/// A catalog entry as an admin writes it. Every node, template, storage, bridge and ISO named must
/// exist on the cluster (checked with PVE when saved; 503 when PVE does not answer).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TemplateBody {
    /// Free text: not blank, no control characters but tab and newline.
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Text,
    /// No control characters but tab and newline.
    #[oai(nullable, default, validator(max_length = 2000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"))]
    pub description: Text,
    /// Default `lxc`.
    #[oai(nullable)]
    pub kind: Option<TemplateKind>,
    /// The template guest's node (LXC and cloud-init entries): a host name, at most 63 of
    /// `a-z A-Z 0-9 -`, not starting or ending with `-`.
    #[oai(nullable, validator(max_length = 63, pattern = r"^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)?$"))]
    pub node: Option<Text>,
    /// The template guest's VMID (LXC and cloud-init entries).
    #[oai(nullable, validator(minimum(value = "100"), maximum(value = "999999999")))]
    pub vmid: Option<i64>,
    /// ISO entries: at least one node.
    #[oai(nullable, default)]
    pub nodes: Vec<Text>,
    /// Allowed storages (ISO entries: at least one).
    #[oai(nullable, default)]
    pub storages: Vec<Text>,
    /// Allowed bridges (ISO entries: at least one).
    #[oai(nullable, default)]
    pub bridges: Vec<Text>,
    /// ISO entries: allowed installer images (`local:iso/…`), at least one.
    #[oai(nullable, default)]
    pub isos: Vec<Text>,
    /// ISO entries: default `l26`.
    #[oai(nullable)]
    pub ostype: Option<Text>,
    /// Cloud-init entries: `first-last/prefix`; absent: DHCP.
    #[oai(nullable)]
    pub ip_pool: Option<Text>,
    #[oai(nullable)]
    pub gateway: Option<Text>,
    /// At most `max_cores`.
    #[oai(validator(minimum(value = "1")))]
    pub default_cores: i32,
    #[oai(validator(minimum(value = "1")))]
    pub max_cores: i32,
    /// At most `max_memory_mib`.
    #[oai(validator(minimum(value = "1")))]
    pub default_memory_mib: i32,
    #[oai(validator(minimum(value = "1")))]
    pub max_memory_mib: i32,
    /// At most `max_disk_gib`.
    #[oai(validator(minimum(value = "1")))]
    pub default_disk_gib: i32,
    #[oai(validator(minimum(value = "1")))]
    pub max_disk_gib: i32,
    #[oai(nullable, default = "default_true")]
    pub full_clone: bool,
    #[oai(nullable, default = "default_true")]
    pub enabled: bool,
    /// LXC entries: a PVE `net0` property string on one line, naming the interface (`name=…`); default
    /// `name=eth0,bridge=vmbr0,ip=dhcp`.
    #[oai(nullable, validator(pattern = r"^([^\r\n]*name=[^\r\n]*)?$"))]
    pub net0: Option<Text>,
    /// Default `node` for LXC, `none` for QEMU.
    #[oai(nullable)]
    pub finish_mode: Option<FinishMode>,
    /// Snapshots each machine may keep; absent: the server's `snapshot_limit_default`.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "100")))]
    pub snapshot_limit: Option<i32>,
    /// Lease of new machines in days (1–3650); absent: the server's `lease_default_days`.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "3650")))]
    pub lease_days: Option<i32>,
    /// Longest lease an owner may extend to, in days from now (1–3650, not below `lease_days`); absent:
    /// the server's `lease_max_days`. Admins may go beyond it.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "3650")))]
    pub lease_max_days: Option<i32>,
    /// Names of existing groups whose approvals a request needs, in order, each once (at most 5); `[]`:
    /// admins decide alone; absent: unchanged (none for a new entry). Not changeable while the entry has
    /// pending requests.
    #[oai(nullable, validator(max_items = 5))]
    pub approval_stages: Option<Vec<Text>>,
}

fn default_true() -> bool {
    true
}
