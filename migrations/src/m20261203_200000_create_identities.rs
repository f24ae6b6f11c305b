//! Signing in as one already is: the outside identities (a Proxmox VE realm user, a directory entry,
//! an OpenID Connect subject) linked to proxdesk accounts; the half-done sign-ins waiting for the
//! person's next step (an OpenID redirect, a second factor); the sign-in policy an admin sets at run
//! time; and how each browser session was opened.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    DisplayName,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Method,
}

#[derive(DeriveIden)]
enum Identities {
    Table,
    Id,
    UserId,
    Provider,
    Issuer,
    Subject,
    Email,
    EmailVerified,
    DisplayName,
    CreatedAt,
    LastSignInAt,
}

#[derive(DeriveIden)]
enum PendingSignIns {
    Table,
    StateHash,
    Provider,
    Payload,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [Users::Email, Users::DisplayName] {
            m.alter_table(Table::alter().table(Users::Table).add_column(string_null(column)).to_owned()).await?;
        }
        m.alter_table(
            Table::alter().table(Sessions::Table).add_column(string(Sessions::Method).default("password")).to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Identities::Table)
                .col(big_integer(Identities::Id).auto_increment().primary_key())
                .col(big_integer(Identities::UserId))
                .col(string(Identities::Provider))
                .col(string(Identities::Issuer))
                .col(string(Identities::Subject))
                .col(string_null(Identities::Email))
                .col(boolean(Identities::EmailVerified).default(false))
                .col(string_null(Identities::DisplayName))
                .col(timestamp_with_time_zone(Identities::CreatedAt))
                .col(timestamp_with_time_zone_null(Identities::LastSignInAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Identities::Table, Identities::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // One account per outside identity: the same subject of the same issuer can never sign in as two.
        m.create_index(
            Index::create()
                .name("identities_provider_issuer_subject")
                .table(Identities::Table)
                .col(Identities::Provider)
                .col(Identities::Issuer)
                .col(Identities::Subject)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("identities_user").table(Identities::Table).col(Identities::UserId).to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PendingSignIns::Table)
                .col(string(PendingSignIns::StateHash).primary_key())
                .col(string(PendingSignIns::Provider))
                .col(text(PendingSignIns::Payload))
                .col(timestamp_with_time_zone(PendingSignIns::CreatedAt))
                .col(timestamp_with_time_zone(PendingSignIns::ExpiresAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Settings::Table)
                .col(string(Settings::Key).primary_key())
                .col(text(Settings::Value))
                .col(timestamp_with_time_zone(Settings::UpdatedAt))
                .to_owned(),
        )
        .await
    }
}
