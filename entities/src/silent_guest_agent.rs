//! A QEMU guest agent that did not answer PVE (`QEMU guest agent is not running`), remembered so the
//! Guacamole sync does not wait for it on every run.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "silent_guest_agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub vmid: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub node: String,
    /// When it was first found silent.
    pub since: DateTimeUtc,
    /// When it was last asked (and did not answer).
    pub checked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
