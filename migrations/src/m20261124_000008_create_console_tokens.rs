//! Single-use console URLs for API clients: only a SHA-256 of the token is stored, with its expiry.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConsoleTokens {
    Table,
    TokenHash,
    UserId,
    MachineId,
    Kind,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ConsoleTokens::Table)
                .col(string(ConsoleTokens::TokenHash).primary_key())
                .col(big_integer(ConsoleTokens::UserId))
                .col(big_integer(ConsoleTokens::MachineId))
                .col(string(ConsoleTokens::Kind))
                .col(timestamp_with_time_zone(ConsoleTokens::CreatedAt))
                .col(timestamp_with_time_zone(ConsoleTokens::ExpiresAt))
                .col(timestamp_with_time_zone_null(ConsoleTokens::UsedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_console_tokens_expires_at")
                .table(ConsoleTokens::Table)
                .col(ConsoleTokens::ExpiresAt)
                .to_owned(),
        )
        .await
    }
}
