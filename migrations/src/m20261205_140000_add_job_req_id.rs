//! A job remembers the id of the HTTP request that enqueued it (`req_id`, the `X-Request-Id` it was answered with; null for cron ticks and
//! jobs enqueued elsewhere), so its log lines can be found from the request's.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    ReqId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Jobs::Table).add_column(string_len_null(Jobs::ReqId, 64)).to_owned()).await
    }
}
