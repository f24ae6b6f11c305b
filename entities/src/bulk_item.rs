//! One machine of a bulk run and what became of it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bulk_items")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    /// The machine id as submitted (one the actor may not see is refused, never looked up further).
    pub machine_id: i64,
    /// `queued`, `running`, `done`, `refused` or `failed` (`domain::bulk::ItemState`).
    pub state: String,
    /// Why it was refused or failed, as a code (`domain::bulk::Reason`).
    pub reason: Option<String>,
    /// The detail: PVE's own words for a failure, the lock's name for a busy guest.
    pub message: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
