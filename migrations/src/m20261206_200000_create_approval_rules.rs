//! Automatic approval rules: what a rule covers and the most it approves, the users and groups it is
//! limited to, and on each request the rule that approved it (NULL: a person did, or nobody yet).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApprovalRules {
    Table,
    Id,
    Name,
    Enabled,
    TemplateId,
    Role,
    MaxCores,
    MaxMemoryMib,
    MaxDiskGib,
    MaxMachines,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApprovalRuleSubjects {
    Table,
    Id,
    RuleId,
    UserId,
    GroupId,
}

#[derive(DeriveIden)]
enum Requests {
    Table,
    ApprovedByRule,
}

#[derive(DeriveIden)]
enum Templates {
    Table,
    Id,
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
                .table(ApprovalRules::Table)
                .col(big_pk_auto(ApprovalRules::Id))
                .col(string_len_uniq(ApprovalRules::Name, 80))
                .col(boolean(ApprovalRules::Enabled).default(true))
                .col(big_integer_null(ApprovalRules::TemplateId))
                .col(string_len_null(ApprovalRules::Role, 16))
                .col(integer_null(ApprovalRules::MaxCores))
                .col(integer_null(ApprovalRules::MaxMemoryMib))
                .col(integer_null(ApprovalRules::MaxDiskGib))
                .col(integer_null(ApprovalRules::MaxMachines))
                .col(timestamp_with_time_zone(ApprovalRules::CreatedAt))
                // An entry's rules go with it.
                .foreign_key(
                    ForeignKey::create()
                        .from(ApprovalRules::Table, ApprovalRules::TemplateId)
                        .to(Templates::Table, Templates::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApprovalRuleSubjects::Table)
                .col(big_pk_auto(ApprovalRuleSubjects::Id))
                .col(big_integer(ApprovalRuleSubjects::RuleId))
                // Exactly one of the two is set.
                .col(big_integer_null(ApprovalRuleSubjects::UserId))
                .col(big_integer_null(ApprovalRuleSubjects::GroupId))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApprovalRuleSubjects::Table, ApprovalRuleSubjects::RuleId)
                        .to(ApprovalRules::Table, ApprovalRules::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ApprovalRuleSubjects::Table, ApprovalRuleSubjects::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_approval_rule_subjects_rule")
                .table(ApprovalRuleSubjects::Table)
                .col(ApprovalRuleSubjects::RuleId)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table(Requests::Table).add_column(big_integer_null(Requests::ApprovedByRule)).to_owned(),
        )
        .await
    }
}
