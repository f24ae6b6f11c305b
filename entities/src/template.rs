//! The catalog: LXC templates users may request, with their resource bounds.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "templates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub description: String,
    /// PVE node holding the template.
    pub node: String,
    /// VMID of the template container on `node`.
    pub vmid: i64,
    pub default_cores: i32,
    pub max_cores: i32,
    pub default_memory_mib: i32,
    pub max_memory_mib: i32,
    pub default_disk_gib: i32,
    pub max_disk_gib: i32,
    pub full_clone: bool,
    pub enabled: bool,
    /// `net0` of new containers, e.g. `name=eth0,bridge=vmbr0,ip=dhcp`.
    pub net0: String,
    /// Target storage of full clones; `None` keeps the template's.
    pub storage: Option<String>,
    /// How containers are finished over SSH: `node` (`pct exec` on the node), `guest` or `none`.
    pub finish_mode: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
