//! Per-user quota overrides; a `None` field falls back to the role's quota.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_quotas")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub max_machines: Option<i32>,
    pub max_cores: Option<i32>,
    pub max_memory_mib: Option<i32>,
    pub max_disk_gib: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
