//! Notifications: the kinds of mail each user turned off (`notification_opt_outs`), and the webhooks
//! admins configured (`webhooks`: URL, sealed signing secret, the kinds it wants, its last delivery).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum NotificationOptOuts {
    Table,
    UserId,
    Kind,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Url,
    SecretSealed,
    Events,
    CreatedBy,
    CreatedAt,
    LastStatus,
    LastStatusCode,
    LastError,
    LastAttemptAt,
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
                .table(NotificationOptOuts::Table)
                .col(big_integer(NotificationOptOuts::UserId))
                .col(string(NotificationOptOuts::Kind))
                .col(timestamp_with_time_zone(NotificationOptOuts::CreatedAt))
                .primary_key(Index::create().col(NotificationOptOuts::UserId).col(NotificationOptOuts::Kind))
                .foreign_key(
                    ForeignKey::create()
                        .from(NotificationOptOuts::Table, NotificationOptOuts::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Webhooks::Table)
                .col(big_pk_auto(Webhooks::Id))
                .col(text(Webhooks::Url))
                .col(text(Webhooks::SecretSealed))
                // Comma-separated kinds; empty: every kind.
                .col(text(Webhooks::Events).default(""))
                .col(big_integer_null(Webhooks::CreatedBy))
                .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                .col(string_null(Webhooks::LastStatus))
                .col(integer_null(Webhooks::LastStatusCode))
                .col(text_null(Webhooks::LastError))
                .col(timestamp_with_time_zone_null(Webhooks::LastAttemptAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Webhooks::Table, Webhooks::CreatedBy)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await
    }
}
