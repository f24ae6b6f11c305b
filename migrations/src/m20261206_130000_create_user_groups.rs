//! Groups of users: named sets of accounts (a course's teachers, the IT team) that a catalog entry's
//! approval stages name. A member appears once per group; deleting a group drops its memberships.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserGroups {
    Table,
    Id,
    Name,
    Description,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UserGroupMembers {
    Table,
    GroupId,
    UserId,
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
                .table(UserGroups::Table)
                .col(big_pk_auto(UserGroups::Id))
                .col(string_len_uniq(UserGroups::Name, 64))
                .col(text(UserGroups::Description))
                .col(timestamp_with_time_zone(UserGroups::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(UserGroupMembers::Table)
                .col(big_integer(UserGroupMembers::GroupId))
                .col(big_integer(UserGroupMembers::UserId))
                .primary_key(Index::create().col(UserGroupMembers::GroupId).col(UserGroupMembers::UserId))
                .foreign_key(
                    ForeignKey::create()
                        .from(UserGroupMembers::Table, UserGroupMembers::GroupId)
                        .to(UserGroups::Table, UserGroups::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(UserGroupMembers::Table, UserGroupMembers::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // "Which groups is this person in?" is asked on every approval and page.
        m.create_index(
            Index::create()
                .name("idx_user_group_members_user")
                .table(UserGroupMembers::Table)
                .col(UserGroupMembers::UserId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(UserGroupMembers::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(UserGroups::Table).to_owned()).await
    }
}
