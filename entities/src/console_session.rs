//! Console sessions open right now, one row per relay, on whichever replica runs it: the per-user cap
//! counts them. A relay refreshes `last_seen_at` while it runs and deletes its row when it ends; a row
//! not seen for a while (its replica crashed) no longer counts.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "console_sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// `machine` or `pve_guest`.
    pub subject_type: String,
    /// The machine's id, or the guest's VMID.
    pub subject_id: i64,
    /// `vnc` or `terminal`.
    pub kind: String,
    pub opened_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
