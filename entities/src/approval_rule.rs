//! An automatic approval rule (`domain::approval_rule`): what it covers and the most it approves.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "approval_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub enabled: bool,
    /// The catalog entry it covers; `None`: every entry.
    pub template_id: Option<i64>,
    /// `user` or `admin`; `None`: every role.
    pub role: Option<String>,
    pub max_cores: Option<i32>,
    pub max_memory_mib: Option<i32>,
    pub max_disk_gib: Option<i32>,
    /// Machines of the entry a requester may hold, the new one included.
    pub max_machines: Option<i32>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
