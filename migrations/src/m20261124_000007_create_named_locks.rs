//! Short locks shared by every proxdesk process on the database (e.g. sending one clone at a time).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum NamedLocks {
    Table,
    Name,
    Owner,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(NamedLocks::Table)
                .col(string(NamedLocks::Name).primary_key())
                .col(string(NamedLocks::Owner))
                .col(timestamp_with_time_zone(NamedLocks::ExpiresAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(NamedLocks::Table).to_owned()).await
    }
}
