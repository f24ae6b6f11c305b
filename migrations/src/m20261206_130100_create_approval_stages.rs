//! Approval stages: a catalog entry may name groups whose approvals a request needs, in order
//! (`template_approval_stages`, positions from 0). A request of such an entry carries its current stage
//! (`requests.stage`, 0-based; 0 for every request made before, whose entries have no stages) and each
//! approval given is recorded (`request_approvals`): one per stage, and one per person, so nobody
//! approves two stages of one request.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TemplateApprovalStages {
    Table,
    TemplateId,
    Position,
    GroupId,
}

#[derive(DeriveIden)]
enum RequestApprovals {
    Table,
    RequestId,
    Stage,
    UserId,
    DecidedAt,
}

#[derive(DeriveIden)]
enum Requests {
    Table,
    Id,
    Stage,
}

#[derive(DeriveIden)]
enum Templates {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum UserGroups {
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
                .table(TemplateApprovalStages::Table)
                .col(big_integer(TemplateApprovalStages::TemplateId))
                .col(integer(TemplateApprovalStages::Position))
                .col(big_integer(TemplateApprovalStages::GroupId))
                .primary_key(
                    Index::create().col(TemplateApprovalStages::TemplateId).col(TemplateApprovalStages::Position),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(TemplateApprovalStages::Table, TemplateApprovalStages::TemplateId)
                        .to(Templates::Table, Templates::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                // A group in use cannot go: the service refuses first (409), the database backs it.
                .foreign_key(
                    ForeignKey::create()
                        .from(TemplateApprovalStages::Table, TemplateApprovalStages::GroupId)
                        .to(UserGroups::Table, UserGroups::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_template_approval_stages_group")
                .table(TemplateApprovalStages::Table)
                .col(TemplateApprovalStages::GroupId)
                .to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table(Requests::Table).add_column(integer(Requests::Stage).default(0)).to_owned())
            .await?;
        m.create_table(
            Table::create()
                .table(RequestApprovals::Table)
                .col(big_integer(RequestApprovals::RequestId))
                .col(integer(RequestApprovals::Stage))
                .col(big_integer(RequestApprovals::UserId))
                .col(timestamp_with_time_zone(RequestApprovals::DecidedAt))
                .primary_key(Index::create().col(RequestApprovals::RequestId).col(RequestApprovals::Stage))
                .foreign_key(
                    ForeignKey::create()
                        .from(RequestApprovals::Table, RequestApprovals::RequestId)
                        .to(Requests::Table, Requests::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(RequestApprovals::Table, RequestApprovals::UserId)
                        .to(Users::Table, Users::Id),
                )
                .to_owned(),
        )
        .await?;
        // Each approver acts once per request, whichever stage.
        m.create_index(
            Index::create()
                .name("idx_request_approvals_request_user")
                .table(RequestApprovals::Table)
                .col(RequestApprovals::RequestId)
                .col(RequestApprovals::UserId)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RequestApprovals::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(TemplateApprovalStages::Table).to_owned()).await
    }
}
