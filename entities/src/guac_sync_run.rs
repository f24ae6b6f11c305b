//! One Guacamole sync run: when, what it changed, and what went wrong.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "guac_sync_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub started_at: DateTimeUtc,
    pub finished_at: DateTimeUtc,
    /// A dry run computed the plan only.
    pub dry_run: bool,
    /// Connections wanted.
    pub desired: i32,
    /// Managed connections found in Guacamole.
    pub managed: i32,
    pub created: i32,
    pub updated: i32,
    pub deleted: i32,
    pub groups_created: i32,
    pub groups_deleted: i32,
    pub users_created: i32,
    pub grants_added: i32,
    pub grants_removed: i32,
    /// Error diagnostics (skipped note entries, refused calls).
    pub error_count: i32,
    /// JSON array of diagnostics (`vmid`, `line`, `column`, `severity`, `message`).
    pub diagnostics: String,
    /// Why the run failed as a whole (Guacamole unreachable, login refused); `None` when it ran.
    pub failure: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
