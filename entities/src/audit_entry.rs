//! Append-only audit log: who did what to which subject, when.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    /// `None` for the system (jobs, schedules).
    pub actor_id: Option<i64>,
    pub actor_name: String,
    /// Dotted action name, e.g. `request.approved`.
    pub action: String,
    /// `request`, `user`, `template`, `token`, `machine`, `quota`.
    pub subject_type: String,
    pub subject_id: i64,
    /// JSON object with the details of the change.
    pub details: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
