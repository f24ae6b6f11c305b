//! Per-template provisioning settings: network, target storage and how the container is finished.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Templates {
    Table,
    Net0,
    Storage,
    FinishMode,
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
                .table(Templates::Table)
                .add_column(string(Templates::Net0).default("name=eth0,bridge=vmbr0,ip=dhcp"))
                .to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table(Templates::Table).add_column(string_null(Templates::Storage)).to_owned())
            .await?;
        m.alter_table(
            Table::alter().table(Templates::Table).add_column(string(Templates::FinishMode).default("node")).to_owned(),
        )
        .await
    }
}
