//! A record of each Guacamole sync run, for the admin page (last run's time, counts and errors).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GuacSyncRuns {
    Table,
    Id,
    StartedAt,
    FinishedAt,
    DryRun,
    Desired,
    Managed,
    Created,
    Updated,
    Deleted,
    GroupsCreated,
    GroupsDeleted,
    UsersCreated,
    GrantsAdded,
    GrantsRemoved,
    ErrorCount,
    Diagnostics,
    Failure,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(GuacSyncRuns::Table)
                .col(big_pk_auto(GuacSyncRuns::Id))
                .col(timestamp_with_time_zone(GuacSyncRuns::StartedAt))
                .col(timestamp_with_time_zone(GuacSyncRuns::FinishedAt))
                .col(boolean(GuacSyncRuns::DryRun))
                .col(integer(GuacSyncRuns::Desired))
                .col(integer(GuacSyncRuns::Managed))
                .col(integer(GuacSyncRuns::Created))
                .col(integer(GuacSyncRuns::Updated))
                .col(integer(GuacSyncRuns::Deleted))
                .col(integer(GuacSyncRuns::GroupsCreated))
                .col(integer(GuacSyncRuns::GroupsDeleted))
                .col(integer(GuacSyncRuns::UsersCreated))
                .col(integer(GuacSyncRuns::GrantsAdded))
                .col(integer(GuacSyncRuns::GrantsRemoved))
                .col(integer(GuacSyncRuns::ErrorCount))
                .col(text(GuacSyncRuns::Diagnostics))
                .col(text_null(GuacSyncRuns::Failure))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_guac_sync_runs_started_at")
                .table(GuacSyncRuns::Table)
                .col(GuacSyncRuns::StartedAt)
                .to_owned(),
        )
        .await
    }
}
