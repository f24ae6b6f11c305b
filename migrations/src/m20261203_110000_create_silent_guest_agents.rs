//! QEMU guest agents that did not answer: the Guacamole sync skips them until a re-check is due, so a
//! silent agent costs PVE's 3 s ping once per re-check instead of on every run, on every replica.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SilentGuestAgents {
    Table,
    Vmid,
    Node,
    Since,
    CheckedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SilentGuestAgents::Table)
                .col(big_integer(SilentGuestAgents::Vmid))
                .col(string(SilentGuestAgents::Node))
                .col(timestamp_with_time_zone(SilentGuestAgents::Since))
                .col(timestamp_with_time_zone(SilentGuestAgents::CheckedAt))
                .primary_key(Index::create().col(SilentGuestAgents::Vmid).col(SilentGuestAgents::Node))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SilentGuestAgents::Table).to_owned()).await
    }
}
