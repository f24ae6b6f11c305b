//! The catalog: the kinds of machine users may request (an LXC template, a QEMU template with cloud-init,
//! or a QEMU VM installed from an ISO), with their resource bounds and allowed choices.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "templates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub description: String,
    /// `domain::guest::MachineKind`: `lxc`, `qemu-cloudinit` or `qemu-iso`.
    pub kind: String,
    /// PVE node holding the template (ISO entries: the first of `nodes`).
    pub node: String,
    /// VMID of the template guest on `node` (unused by ISO entries).
    pub vmid: i64,
    /// ISO entries: comma list of the nodes new VMs may be placed on (empty: `node`).
    pub nodes: String,
    /// Comma list of the storages a requester may pick (full clones, ISO VMs' disks); empty: the template's.
    pub storages: String,
    /// Comma list of the bridges a requester may pick for `net0`; empty: the template's.
    pub bridges: String,
    /// ISO entries: comma list of the installer ISOs a requester may pick (`local:iso/…`).
    pub isos: String,
    /// ISO entries: PVE's `ostype` of new VMs (`l26`, `win11`, …).
    pub ostype: String,
    /// Cloud-init entries: static addresses `first-last/prefix` handed out in order; `None`: DHCP.
    pub ip_pool: Option<String>,
    /// Cloud-init entries with a pool: the gateway written into `ipconfig0`.
    pub gateway: Option<String>,
    pub default_cores: i32,
    pub max_cores: i32,
    pub default_memory_mib: i32,
    pub max_memory_mib: i32,
    pub default_disk_gib: i32,
    pub max_disk_gib: i32,
    pub full_clone: bool,
    pub enabled: bool,
    /// `net0` of new containers, e.g. `name=eth0,bridge=vmbr0,ip=dhcp` (LXC entries).
    pub net0: String,
    /// Target storage of full clones; `None` keeps the template's.
    pub storage: Option<String>,
    /// How machines are finished over SSH: `node` (`pct exec` on the node, LXC only), `guest` or `none`.
    pub finish_mode: String,
    /// How many snapshots each machine of this entry may keep; `None`: the `snapshot_limit_default` key.
    pub snapshot_limit: Option<i32>,
    /// Lease of new machines in days; `None`: the `lease_default_days` config key.
    pub lease_days: Option<i32>,
    /// Longest lease an owner may extend to, in days from now; `None`: the `lease_max_days` config key.
    pub lease_max_days: Option<i32>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
