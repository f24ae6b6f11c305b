//! Bulk actions: one run per submission (who, what action, when) and one item per machine, each item
//! carried out by its own job so that one failure never stops the others.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BulkRuns {
    Table,
    Id,
    UserId,
    Action,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BulkItems {
    Table,
    Id,
    RunId,
    MachineId,
    State,
    Reason,
    Message,
    UpdatedAt,
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
                .table(BulkRuns::Table)
                .col(big_pk_auto(BulkRuns::Id))
                .col(big_integer(BulkRuns::UserId))
                .col(string_len(BulkRuns::Action, 16))
                .col(timestamp_with_time_zone(BulkRuns::CreatedAt))
                .foreign_key(ForeignKey::create().from(BulkRuns::Table, BulkRuns::UserId).to(Users::Table, Users::Id))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_bulk_runs_user").table(BulkRuns::Table).col(BulkRuns::UserId).to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BulkItems::Table)
                .col(big_pk_auto(BulkItems::Id))
                .col(big_integer(BulkItems::RunId))
                // Not a foreign key: a machine id the actor may not see is recorded as refused, as given.
                .col(big_integer(BulkItems::MachineId))
                .col(string_len(BulkItems::State, 16))
                .col(string_len_null(BulkItems::Reason, 24))
                .col(text_null(BulkItems::Message))
                .col(timestamp_with_time_zone(BulkItems::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(BulkItems::Table, BulkItems::RunId)
                        .to(BulkRuns::Table, BulkRuns::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_bulk_items_run_machine")
                .table(BulkItems::Table)
                .col(BulkItems::RunId)
                .col(BulkItems::MachineId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_bulk_items_machine").table(BulkItems::Table).col(BulkItems::MachineId).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(BulkItems::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(BulkRuns::Table).to_owned()).await
    }
}
