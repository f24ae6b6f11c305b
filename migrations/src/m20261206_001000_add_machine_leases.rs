//! Leases: a machine expires (`expires_at`; NULL: no expiry, as every machine made before this) and its
//! lease moves through stages (`lease_stage`: warnings, stopped, reclaimed). A catalog entry may set the
//! lease of its new machines and the longest one an owner may extend to (NULL: the configured defaults).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Machines {
    Table,
    ExpiresAt,
    LeaseStage,
}

#[derive(DeriveIden)]
enum Templates {
    Table,
    LeaseDays,
    LeaseMaxDays,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        m.alter_table(
            Table::alter()
                .table(Machines::Table)
                .add_column(timestamp_with_time_zone_null(Machines::ExpiresAt))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table(Machines::Table).add_column(string(Machines::LeaseStage).default("active")).to_owned(),
        )
        .await?;
        // The sweep reads only the machines whose expiry is near.
        m.create_index(
            Index::create().name("idx_machines_expires_at").table(Machines::Table).col(Machines::ExpiresAt).to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table(Templates::Table).add_column(integer_null(Templates::LeaseDays)).to_owned())
            .await?;
        m.alter_table(
            Table::alter().table(Templates::Table).add_column(integer_null(Templates::LeaseMaxDays)).to_owned(),
        )
        .await
    }
}
