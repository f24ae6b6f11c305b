//! Groups of users (admin): named sets of accounts that catalog entries' approval stages name. A group
//! an entry's stage uses cannot be deleted (409) until the entry stops naming it.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};
use serde_json::json;

use entities::{template, template_approval_stage as stage, user, user_group as group, user_group_member as member};

use super::{Actor, ServiceError, audit};
use crate::domain::values::bounded_text;
use crate::domain::{FieldError, FieldErrors};

/// A group with its members and the catalog entries whose stages name it.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub group: group::Model,
    /// (id, username), by name.
    pub members: Vec<(i64, String)>,
    /// Names of the entries with a stage for this group.
    pub used_by: Vec<String>,
}

/// A group's name and description as typed.
#[derive(Debug, Clone, Default)]
pub struct GroupInput {
    pub name: String,
    pub description: String,
}

/// Every group, by name, with members and users.
pub async fn list<C: ConnectionTrait>(conn: &C, actor: &Actor) -> Result<Vec<GroupRow>, ServiceError> {
    actor.require_admin()?;
    let groups = group::Entity::find().order_by_asc(group::Column::Name).all(conn).await?;
    let ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
    let memberships: Vec<(i64, i64, String)> = member::Entity::find()
        .select_only()
        .column(member::Column::GroupId)
        .column(member::Column::UserId)
        .column_as(Expr::cust("(SELECT username FROM users WHERE users.id = user_group_members.user_id)"), "username")
        .filter(member::Column::GroupId.is_in(ids.clone()))
        .into_tuple()
        .all(conn)
        .await?;
    let uses: Vec<(i64, String)> = stage::Entity::find()
        .select_only()
        .column(stage::Column::GroupId)
        .column_as(
            Expr::cust("(SELECT name FROM templates WHERE templates.id = template_approval_stages.template_id)"),
            "name",
        )
        .filter(stage::Column::GroupId.is_in(ids))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(groups
        .into_iter()
        .map(|g| {
            let mut members: Vec<(i64, String)> =
                memberships.iter().filter(|(gid, _, _)| *gid == g.id).map(|(_, u, n)| (*u, n.clone())).collect();
            members.sort_by(|a, b| a.1.cmp(&b.1));
            let mut used_by: Vec<String> =
                uses.iter().filter(|(gid, _)| *gid == g.id).map(|(_, n)| n.clone()).collect();
            used_by.sort();
            used_by.dedup();
            GroupRow { group: g, members, used_by }
        })
        .collect())
}

/// One group with its members and uses.
pub async fn get<C: ConnectionTrait>(conn: &C, actor: &Actor, id: i64) -> Result<GroupRow, ServiceError> {
    actor.require_admin()?;
    list(conn, actor).await?.into_iter().find(|g| g.group.id == id).ok_or(ServiceError::NotFound)
}

/// The name and description checked; the name must be free (`except`: the group being renamed).
async fn checked<C: ConnectionTrait>(
    conn: &C,
    input: &GroupInput,
    except: Option<i64>,
) -> Result<GroupInput, ServiceError> {
    let mut errors = FieldErrors::default();
    let name = errors.take(bounded_text("name", &input.name, 1, 64));
    let description = errors.take(bounded_text("description", &input.description, 0, 500));
    if let Some(n) = &name {
        let mut q = group::Entity::find().filter(group::Column::Name.eq(n.as_str()));
        if let Some(id) = except {
            q = q.filter(group::Column::Id.ne(id));
        }
        if q.one(conn).await?.is_some() {
            errors.push(FieldError::new("name", "error.group_name_taken").with("name", n));
        }
    }
    errors.into_result()?;
    Ok(GroupInput { name: name.unwrap_or_default(), description: description.unwrap_or_default() })
}

/// Two admins naming a group alike at once: the unique index decides, and the loser hears why.
fn name_taken(e: sea_orm::DbErr, name: &str) -> ServiceError {
    match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            FieldError::new("name", "error.group_name_taken").with("name", name).into()
        }
        _ => e.into(),
    }
}

/// Adds a group (admin).
#[tracing::instrument(skip(db, input), fields(actor = actor.id))]
pub async fn create(db: &DatabaseConnection, actor: &Actor, input: GroupInput) -> Result<group::Model, ServiceError> {
    actor.require_admin()?;
    let txn = crate::db::begin_write(db).await?;
    let v = checked(&txn, &input, None).await?;
    let row = group::ActiveModel {
        name: Set(v.name.clone()),
        description: Set(v.description),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| name_taken(e, &v.name))?;
    audit::record(&txn, Some(actor), "group.created", "group", row.id, json!({"name": row.name})).await?;
    txn.commit().await?;
    Ok(row)
}

/// Renames or re-describes a group (admin).
#[tracing::instrument(skip(db, input), fields(actor = actor.id))]
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i64,
    input: GroupInput,
) -> Result<group::Model, ServiceError> {
    actor.require_admin()?;
    let txn = crate::db::begin_write(db).await?;
    let existing = group::Entity::find_by_id(id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    let v = checked(&txn, &input, Some(id)).await?;
    let before = existing.name.clone();
    let mut row: group::ActiveModel = existing.into();
    row.name = Set(v.name.clone());
    row.description = Set(v.description);
    let row = row.update(&txn).await.map_err(|e| name_taken(e, &v.name))?;
    audit::record(&txn, Some(actor), "group.updated", "group", id, json!({"name": row.name, "was": before})).await?;
    txn.commit().await?;
    Ok(row)
}

/// Deletes a group (admin); refused with 409 while a catalog entry's stage names it.
#[tracing::instrument(skip(db), fields(actor = actor.id))]
pub async fn delete(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let txn = crate::db::begin_write(db).await?;
    let g = group::Entity::find_by_id(id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    let users: Vec<String> = template::Entity::find()
        .select_only()
        .column(template::Column::Name)
        .filter(
            template::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(stage::Column::TemplateId)
                    .from(stage::Entity)
                    .and_where(stage::Column::GroupId.eq(id))
                    .to_owned(),
            ),
        )
        .into_tuple()
        .all(&txn)
        .await?;
    if !users.is_empty() {
        return Err(ServiceError::Conflict(format!(
            "the group {} is an approval stage of {}; remove it there first",
            g.name,
            users.join(", ")
        )));
    }
    // A rule limited to this group would cover everyone without it: the admin changes the rule first.
    let rules: Vec<String> = entities::approval_rule::Entity::find()
        .select_only()
        .column(entities::approval_rule::Column::Name)
        .filter(
            entities::approval_rule::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(entities::approval_rule_subject::Column::RuleId)
                    .from(entities::approval_rule_subject::Entity)
                    .and_where(entities::approval_rule_subject::Column::GroupId.eq(id))
                    .to_owned(),
            ),
        )
        .into_tuple()
        .all(&txn)
        .await?;
    if !rules.is_empty() {
        return Err(ServiceError::Conflict(format!(
            "the group {} limits the approval rules {}; change them first",
            g.name,
            rules.join(", ")
        )));
    }
    member::Entity::delete_many().filter(member::Column::GroupId.eq(id)).exec(&txn).await?;
    group::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(&txn, Some(actor), "group.deleted", "group", id, json!({"name": g.name})).await?;
    txn.commit().await?;
    Ok(())
}

/// Adds `user_id` to the group (admin); adding a member again changes nothing.
#[tracing::instrument(skip(db), fields(actor = actor.id))]
pub async fn add_member(
    db: &DatabaseConnection,
    actor: &Actor,
    group_id: i64,
    user_id: i64,
) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let txn = crate::db::begin_write(db).await?;
    let g = group::Entity::find_by_id(group_id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    let u = user::Entity::find_by_id(user_id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    if member::Entity::find_by_id((group_id, user_id)).one(&txn).await?.is_none() {
        member::ActiveModel { group_id: Set(group_id), user_id: Set(user_id) }.insert(&txn).await?;
        let details = json!({"group": g.name, "user": u.username, "user_id": u.id});
        audit::record(&txn, Some(actor), "group.member_added", "group", group_id, details).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Removes `user_id` from the group (admin); 404 when they are not in it.
#[tracing::instrument(skip(db), fields(actor = actor.id))]
pub async fn remove_member(
    db: &DatabaseConnection,
    actor: &Actor,
    group_id: i64,
    user_id: i64,
) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let txn = crate::db::begin_write(db).await?;
    let g = group::Entity::find_by_id(group_id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    let gone = member::Entity::delete_many()
        .filter(member::Column::GroupId.eq(group_id))
        .filter(member::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    if gone.rows_affected == 0 {
        return Err(ServiceError::NotFound);
    }
    let username = user::Entity::find_by_id(user_id).one(&txn).await?.map(|u| u.username).unwrap_or_default();
    let details = json!({"group": g.name, "user": username, "user_id": user_id});
    audit::record(&txn, Some(actor), "group.member_removed", "group", group_id, details).await?;
    txn.commit().await?;
    Ok(())
}

/// The ids of the groups `user_id` is a member of.
pub async fn member_group_ids<C: ConnectionTrait>(conn: &C, user_id: i64) -> Result<Vec<i64>, ServiceError> {
    Ok(member::Entity::find()
        .select_only()
        .column(member::Column::GroupId)
        .filter(member::Column::UserId.eq(user_id))
        .into_tuple()
        .all(conn)
        .await?)
}

/// The accounts in a group, by name (the approvers of a stage).
pub async fn members<C: ConnectionTrait>(conn: &C, group_id: i64) -> Result<Vec<user::Model>, ServiceError> {
    Ok(user::Entity::find()
        .filter(
            user::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(member::Column::UserId)
                    .from(member::Entity)
                    .and_where(member::Column::GroupId.eq(group_id))
                    .to_owned(),
            ),
        )
        .order_by_asc(user::Column::Username)
        .all(conn)
        .await?)
}

/// Whether `user_id` is in a group that some catalog entry's stage names (the pages' "Approvals" link).
pub async fn is_stage_approver<C: ConnectionTrait>(conn: &C, user_id: i64) -> Result<bool, ServiceError> {
    let found: Option<i64> = member::Entity::find()
        .select_only()
        .column(member::Column::GroupId)
        .filter(member::Column::UserId.eq(user_id))
        .filter(member::Column::GroupId.in_subquery(
            sea_orm::sea_query::Query::select().column(stage::Column::GroupId).from(stage::Entity).to_owned(),
        ))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(found.is_some())
}

/// The groups named `names`, in that order; an unknown name is a field error on `field`.
pub async fn by_names<C: ConnectionTrait>(
    conn: &C,
    field: &'static str,
    names: &[String],
) -> Result<Vec<group::Model>, ServiceError> {
    let mut errors = FieldErrors::default();
    let mut found = Vec::with_capacity(names.len());
    let all = group::Entity::find().filter(group::Column::Name.is_in(names.to_vec())).all(conn).await?;
    for n in names {
        match all.iter().find(|g| &g.name == n) {
            Some(g) => found.push(g.clone()),
            None => errors.push(FieldError::new(field, "error.group_unknown").with("name", n)),
        }
    }
    errors.into_result()?;
    Ok(found)
}
