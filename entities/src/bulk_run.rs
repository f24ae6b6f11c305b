//! One submission of a bulk action: who asked for which action, on the machines of its items.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bulk_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Who submitted it; each item acts with this user's rights as they are when it runs.
    pub user_id: i64,
    /// `start`, `shutdown`, `stop`, `reboot` or `delete` (`domain::bulk::BulkAction`).
    pub action: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
