//! The template catalog and the quotas (per role, with per-user overrides).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Templates {
    Table,
    Id,
    Name,
    Description,
    Node,
    Vmid,
    DefaultCores,
    MaxCores,
    DefaultMemoryMib,
    MaxMemoryMib,
    DefaultDiskGib,
    MaxDiskGib,
    FullClone,
    Enabled,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RoleQuotas {
    Table,
    Role,
    MaxMachines,
    MaxCores,
    MaxMemoryMib,
    MaxDiskGib,
}

#[derive(DeriveIden)]
enum UserQuotas {
    Table,
    UserId,
    MaxMachines,
    MaxCores,
    MaxMemoryMib,
    MaxDiskGib,
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
                .table(Templates::Table)
                .col(big_pk_auto(Templates::Id))
                .col(string(Templates::Name))
                .col(text(Templates::Description))
                .col(string(Templates::Node))
                .col(big_integer(Templates::Vmid))
                .col(integer(Templates::DefaultCores))
                .col(integer(Templates::MaxCores))
                .col(integer(Templates::DefaultMemoryMib))
                .col(integer(Templates::MaxMemoryMib))
                .col(integer(Templates::DefaultDiskGib))
                .col(integer(Templates::MaxDiskGib))
                .col(boolean(Templates::FullClone).default(true))
                .col(boolean(Templates::Enabled).default(true))
                .col(timestamp_with_time_zone(Templates::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RoleQuotas::Table)
                .col(string(RoleQuotas::Role).primary_key())
                .col(integer(RoleQuotas::MaxMachines))
                .col(integer(RoleQuotas::MaxCores))
                .col(integer(RoleQuotas::MaxMemoryMib))
                .col(integer(RoleQuotas::MaxDiskGib))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(UserQuotas::Table)
                .col(big_integer(UserQuotas::UserId).primary_key())
                .col(integer_null(UserQuotas::MaxMachines))
                .col(integer_null(UserQuotas::MaxCores))
                .col(integer_null(UserQuotas::MaxMemoryMib))
                .col(integer_null(UserQuotas::MaxDiskGib))
                .foreign_key(
                    ForeignKey::create()
                        .from(UserQuotas::Table, UserQuotas::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Sensible role defaults so a fresh instance is usable; admins edit them in the UI.
        let insert = Query::insert()
            .into_table(RoleQuotas::Table)
            .columns([
                RoleQuotas::Role,
                RoleQuotas::MaxMachines,
                RoleQuotas::MaxCores,
                RoleQuotas::MaxMemoryMib,
                RoleQuotas::MaxDiskGib,
            ])
            .values_panic(["user".into(), 3.into(), 8.into(), 8192.into(), 100.into()])
            .values_panic(["admin".into(), 20.into(), 64.into(), 65536.into(), 1000.into()])
            .to_owned();
        m.exec_stmt(insert).await
    }
}
