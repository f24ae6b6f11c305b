//! Open console sessions, one row per relay, so the per-user cap holds across replicas.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConsoleSessions {
    Table,
    Id,
    UserId,
    SubjectType,
    SubjectId,
    Kind,
    OpenedAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ConsoleSessions::Table)
                .col(big_pk_auto(ConsoleSessions::Id))
                .col(big_integer(ConsoleSessions::UserId))
                .col(string(ConsoleSessions::SubjectType))
                .col(big_integer(ConsoleSessions::SubjectId))
                .col(string(ConsoleSessions::Kind))
                .col(timestamp_with_time_zone(ConsoleSessions::OpenedAt))
                .col(timestamp_with_time_zone(ConsoleSessions::LastSeenAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ConsoleSessions::Table, ConsoleSessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_console_sessions_user")
                .table(ConsoleSessions::Table)
                .col(ConsoleSessions::UserId)
                .col(ConsoleSessions::LastSeenAt)
                .to_owned(),
        )
        .await
    }
}
