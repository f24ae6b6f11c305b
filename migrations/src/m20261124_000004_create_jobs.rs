//! The durable job queue's table (the `jobs` crate reads and writes it).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Payload,
    State,
    Attempts,
    MaxAttempts,
    RunAfter,
    IdempotencyKey,
    LeaseOwner,
    LeaseExpiresAt,
    LastError,
    Checkpoint,
    CancelRequested,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .col(big_pk_auto(Jobs::Id))
                .col(string(Jobs::Kind))
                .col(text(Jobs::Payload))
                .col(string(Jobs::State))
                .col(integer(Jobs::Attempts).default(0))
                .col(integer(Jobs::MaxAttempts))
                .col(timestamp_with_time_zone(Jobs::RunAfter))
                .col(string_null(Jobs::IdempotencyKey).unique_key())
                .col(string_null(Jobs::LeaseOwner))
                .col(timestamp_with_time_zone_null(Jobs::LeaseExpiresAt))
                .col(text_null(Jobs::LastError))
                .col(text_null(Jobs::Checkpoint))
                .col(boolean(Jobs::CancelRequested).default(false))
                .col(timestamp_with_time_zone(Jobs::CreatedAt))
                .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_jobs_state_run_after")
                .table(Jobs::Table)
                .col(Jobs::State)
                .col(Jobs::RunAfter)
                .to_owned(),
        )
        .await
    }
}
