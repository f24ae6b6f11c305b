//! Requests, the machines made from them, and the audit log.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Requests {
    Table,
    Id,
    UserId,
    TemplateId,
    Hostname,
    Cores,
    MemoryMib,
    DiskGib,
    Purpose,
    SshPublicKey,
    Status,
    Reason,
    DecidedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Machines {
    Table,
    Id,
    RequestId,
    UserId,
    Node,
    Vmid,
    Hostname,
    Ipv4,
    LoginUser,
    PasswordSealed,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    ActorId,
    ActorName,
    Action,
    SubjectType,
    SubjectId,
    Details,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Templates {
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
                .table(Requests::Table)
                .col(big_pk_auto(Requests::Id))
                .col(big_integer(Requests::UserId))
                .col(big_integer(Requests::TemplateId))
                .col(string(Requests::Hostname))
                .col(integer(Requests::Cores))
                .col(integer(Requests::MemoryMib))
                .col(integer(Requests::DiskGib))
                .col(text(Requests::Purpose))
                .col(text_null(Requests::SshPublicKey))
                .col(string(Requests::Status))
                .col(text_null(Requests::Reason))
                .col(big_integer_null(Requests::DecidedBy))
                .col(timestamp_with_time_zone(Requests::CreatedAt))
                .col(timestamp_with_time_zone(Requests::UpdatedAt))
                .foreign_key(ForeignKey::create().from(Requests::Table, Requests::UserId).to(Users::Table, Users::Id))
                .foreign_key(
                    ForeignKey::create()
                        .from(Requests::Table, Requests::TemplateId)
                        .to(Templates::Table, Templates::Id),
                )
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            ("idx_requests_status_id", vec![Requests::Status, Requests::Id]),
            ("idx_requests_user_id", vec![Requests::UserId, Requests::Id]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Requests::Table);
            for col in cols {
                index.col(col);
            }
            m.create_index(index.to_owned()).await?;
        }
        m.create_table(
            Table::create()
                .table(Machines::Table)
                .col(big_pk_auto(Machines::Id))
                .col(big_integer_uniq(Machines::RequestId))
                .col(big_integer(Machines::UserId))
                .col(string(Machines::Node))
                .col(big_integer_null(Machines::Vmid))
                .col(string(Machines::Hostname))
                .col(string_null(Machines::Ipv4))
                .col(string_null(Machines::LoginUser))
                .col(text_null(Machines::PasswordSealed))
                .col(timestamp_with_time_zone(Machines::CreatedAt))
                .col(timestamp_with_time_zone_null(Machines::DeletedAt))
                .foreign_key(
                    ForeignKey::create().from(Machines::Table, Machines::RequestId).to(Requests::Table, Requests::Id),
                )
                .foreign_key(ForeignKey::create().from(Machines::Table, Machines::UserId).to(Users::Table, Users::Id))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(big_pk_auto(AuditLog::Id))
                .col(timestamp_with_time_zone(AuditLog::At))
                .col(big_integer_null(AuditLog::ActorId))
                .col(string(AuditLog::ActorName))
                .col(string(AuditLog::Action))
                .col(string(AuditLog::SubjectType))
                .col(big_integer(AuditLog::SubjectId))
                .col(text(AuditLog::Details))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_audit_subject")
                .table(AuditLog::Table)
                .col(AuditLog::SubjectType)
                .col(AuditLog::SubjectId)
                .to_owned(),
        )
        .await
    }
}
