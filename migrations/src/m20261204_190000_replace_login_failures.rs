//! Sign-in throttling becomes one counter row per scope (`pair:`, `user:` or `addr:`), counted and
//! checked in one atomic statement before each password check. The old one-row-per-failure table goes:
//! its rows only ever locked accounts for 15 minutes, nothing worth carrying over.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LoginThrottles {
    Table,
    Scope,
    Failures,
    NextAtMs,
    LastAtMs,
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(LoginFailures::Table).to_owned()).await?;
        // Times are Unix milliseconds: the delay is computed in SQL, the same on SQLite and PostgreSQL.
        m.create_table(
            Table::create()
                .table(LoginThrottles::Table)
                .col(string(LoginThrottles::Scope).primary_key())
                .col(big_integer(LoginThrottles::Failures))
                .col(big_integer(LoginThrottles::NextAtMs))
                .col(big_integer(LoginThrottles::LastAtMs))
                .to_owned(),
        )
        .await?;
        // Quiet rows are deleted by age at every counted attempt.
        m.create_index(
            Index::create()
                .name("idx_login_throttles_last_at_ms")
                .table(LoginThrottles::Table)
                .col(LoginThrottles::LastAtMs)
                .to_owned(),
        )
        .await
    }
}
