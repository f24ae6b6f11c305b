//! A catalog entry may bound how many snapshots each of its machines keeps; NULL: the configured default.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Templates {
    Table,
    SnapshotLimit,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(Templates::Table).add_column(integer_null(Templates::SnapshotLimit)).to_owned(),
        )
        .await
    }
}
