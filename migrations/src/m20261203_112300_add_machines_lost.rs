//! A machine whose container no longer carries its marker is `lost`: why, and since when.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Machines {
    Table,
    LostReason,
    LostAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        m.alter_table(Table::alter().table(Machines::Table).add_column(string_null(Machines::LostReason)).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Machines::Table)
                .add_column(timestamp_with_time_zone_null(Machines::LostAt))
                .to_owned(),
        )
        .await
    }
}
