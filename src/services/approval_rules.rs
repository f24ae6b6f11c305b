//! Automatic approval rules: admins write them; a new request that the first enabled rule covers is
//! approved at once, in the transaction that records it, as "policy" (no person decided; the audit entry
//! and the request name the rule).

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use serde_json::json;

use entities::{approval_rule, approval_rule_subject, request, template, user, user_group};

use super::{Actor, ServiceError, audit, requests};
use crate::domain::FieldError;
use crate::domain::approval_rule::{ApprovalRule, RequestFacts, check_rule, first_covering};
use crate::domain::quota::Resources;
use crate::domain::request_status::{RequestEvent, RequestStatus};
use crate::domain::roles::Role;

/// What an admin submits for a rule (new or changed).
#[derive(Debug, Clone, Default)]
pub struct RuleInput {
    pub name: String,
    pub enabled: bool,
    pub template_id: Option<i64>,
    pub role: Option<Role>,
    pub max_cores: Option<i32>,
    pub max_memory_mib: Option<i32>,
    pub max_disk_gib: Option<i32>,
    pub max_machines: Option<i32>,
    pub user_ids: Vec<i64>,
    pub group_ids: Vec<i64>,
}

/// A rule with what people need beside it.
#[derive(Debug, Clone)]
pub struct RuleView {
    pub rule: ApprovalRule,
    pub template_name: Option<String>,
    pub usernames: Vec<String>,
    pub group_names: Vec<String>,
    /// Requests it approved so far.
    pub approved: u64,
    pub created_at: chrono::DateTime<Utc>,
}

/// Every rule, in the order they are tried (admin).
pub async fn list(db: &DatabaseConnection, actor: &Actor) -> Result<Vec<RuleView>, ServiceError> {
    actor.require_admin()?;
    let rows = approval_rule::Entity::find().order_by_asc(approval_rule::Column::Id).all(db).await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        views.push(view(db, row).await?);
    }
    Ok(views)
}

/// One rule (admin).
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<RuleView, ServiceError> {
    actor.require_admin()?;
    let row = approval_rule::Entity::find_by_id(id).one(db).await?.ok_or(ServiceError::NotFound)?;
    view(db, row).await
}

async fn view(db: &DatabaseConnection, row: approval_rule::Model) -> Result<RuleView, ServiceError> {
    let subjects = subjects_of(db, row.id).await?;
    let template_name = match row.template_id {
        Some(t) => template::Entity::find_by_id(t).one(db).await?.map(|t| t.name),
        None => None,
    };
    let mut usernames = Vec::new();
    for uid in &subjects.0 {
        if let Some(u) = user::Entity::find_by_id(*uid).one(db).await? {
            usernames.push(u.username);
        }
    }
    let group_names = user_group::Entity::find()
        .filter(user_group::Column::Id.is_in(subjects.1.clone()))
        .order_by_asc(user_group::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    let approved = request::Entity::find().filter(request::Column::ApprovedByRule.eq(row.id)).count(db).await?;
    let created_at = row.created_at;
    Ok(RuleView { rule: to_domain(row, subjects), template_name, usernames, group_names, approved, created_at })
}

async fn subjects_of<C: ConnectionTrait>(conn: &C, rule_id: i64) -> Result<(Vec<i64>, Vec<i64>), ServiceError> {
    let rows = approval_rule_subject::Entity::find()
        .filter(approval_rule_subject::Column::RuleId.eq(rule_id))
        .order_by_asc(approval_rule_subject::Column::Id)
        .all(conn)
        .await?;
    Ok((rows.iter().filter_map(|s| s.user_id).collect(), rows.iter().filter_map(|s| s.group_id).collect()))
}

fn to_domain(row: approval_rule::Model, (user_ids, group_ids): (Vec<i64>, Vec<i64>)) -> ApprovalRule {
    ApprovalRule {
        id: row.id,
        name: row.name,
        enabled: row.enabled,
        template_id: row.template_id,
        role: row.role.as_deref().and_then(Role::parse),
        max_cores: row.max_cores,
        max_memory_mib: row.max_memory_mib,
        max_disk_gib: row.max_disk_gib,
        max_machines: row.max_machines,
        user_ids,
        group_ids,
    }
}

/// Checks the input against the domain's rules and against what exists (entry, users, a free name).
async fn check_input(
    db: &DatabaseConnection,
    input: &RuleInput,
    id: Option<i64>,
) -> Result<ApprovalRule, ServiceError> {
    let rule = ApprovalRule {
        id: id.unwrap_or_default(),
        name: input.name.trim().to_owned(),
        enabled: input.enabled,
        template_id: input.template_id,
        role: input.role,
        max_cores: input.max_cores,
        max_memory_mib: input.max_memory_mib,
        max_disk_gib: input.max_disk_gib,
        max_machines: input.max_machines,
        user_ids: dedup(&input.user_ids),
        group_ids: dedup(&input.group_ids),
    };
    let mut errors = check_rule(&rule).err().unwrap_or_default();
    if let Some(t) = rule.template_id
        && template::Entity::find_by_id(t).one(db).await?.is_none()
    {
        errors.push(FieldError::new("template_id", "error.template_unknown"));
    }
    let known = user::Entity::find().filter(user::Column::Id.is_in(rule.user_ids.clone())).count(db).await?;
    if known != rule.user_ids.len() as u64 {
        errors.push(FieldError::new("users", "error.rule_unknown_user"));
    }
    let groups =
        user_group::Entity::find().filter(user_group::Column::Id.is_in(rule.group_ids.clone())).count(db).await?;
    if groups != rule.group_ids.len() as u64 {
        errors.push(FieldError::new("groups", "error.rule_unknown_group"));
    }
    let taken = approval_rule::Entity::find()
        .filter(approval_rule::Column::Name.eq(rule.name.as_str()))
        .filter(approval_rule::Column::Id.ne(id.unwrap_or(0)))
        .count(db)
        .await?;
    if taken > 0 {
        errors.push(FieldError::new("name", "error.rule_name_taken"));
    }
    errors.into_result()?;
    Ok(rule)
}

fn dedup(ids: &[i64]) -> Vec<i64> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Records a new rule (admin); it covers requests made from now on.
#[tracing::instrument(skip(db, input), fields(actor = actor.id))]
pub async fn create(db: &DatabaseConnection, actor: &Actor, input: RuleInput) -> Result<RuleView, ServiceError> {
    actor.require_admin()?;
    let rule = check_input(db, &input, None).await?;
    let txn = crate::db::begin_write(db).await?;
    let row = approval_rule::ActiveModel { created_at: Set(Utc::now()), ..columns(&rule) }.insert(&txn).await?;
    write_subjects(&txn, row.id, &rule).await?;
    audit::record(&txn, Some(actor), "approval_rule.created", "approval_rule", row.id, summary(&rule)).await?;
    txn.commit().await?;
    view(db, row).await
}

/// Changes a rule (admin). Requests it approved before keep their approval.
#[tracing::instrument(skip(db, input), fields(actor = actor.id))]
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i64,
    input: RuleInput,
) -> Result<RuleView, ServiceError> {
    actor.require_admin()?;
    let current = approval_rule::Entity::find_by_id(id).one(db).await?.ok_or(ServiceError::NotFound)?;
    let rule = check_input(db, &input, Some(id)).await?;
    let txn = crate::db::begin_write(db).await?;
    let row = approval_rule::ActiveModel { id: Set(id), created_at: Set(current.created_at), ..columns(&rule) }
        .update(&txn)
        .await?;
    approval_rule_subject::Entity::delete_many()
        .filter(approval_rule_subject::Column::RuleId.eq(id))
        .exec(&txn)
        .await?;
    write_subjects(&txn, id, &rule).await?;
    audit::record(&txn, Some(actor), "approval_rule.updated", "approval_rule", id, summary(&rule)).await?;
    txn.commit().await?;
    view(db, row).await
}

/// Deletes a rule (admin). The requests it approved keep naming it in their audit entries.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let row = approval_rule::Entity::find_by_id(id).one(db).await?.ok_or(ServiceError::NotFound)?;
    let txn = crate::db::begin_write(db).await?;
    approval_rule::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(&txn, Some(actor), "approval_rule.deleted", "approval_rule", id, json!({"name": row.name})).await?;
    txn.commit().await?;
    Ok(())
}

fn columns(rule: &ApprovalRule) -> approval_rule::ActiveModel {
    approval_rule::ActiveModel {
        name: Set(rule.name.clone()),
        enabled: Set(rule.enabled),
        template_id: Set(rule.template_id),
        role: Set(rule.role.map(|r| r.as_str().to_owned())),
        max_cores: Set(rule.max_cores),
        max_memory_mib: Set(rule.max_memory_mib),
        max_disk_gib: Set(rule.max_disk_gib),
        max_machines: Set(rule.max_machines),
        ..Default::default()
    }
}

async fn write_subjects<C: ConnectionTrait>(conn: &C, rule_id: i64, rule: &ApprovalRule) -> Result<(), ServiceError> {
    let users = rule.user_ids.iter().map(|u| (Some(*u), None));
    let groups = rule.group_ids.iter().map(|g| (None, Some(*g)));
    for (user_id, group_id) in users.chain(groups) {
        approval_rule_subject::ActiveModel {
            rule_id: Set(rule_id),
            user_id: Set(user_id),
            group_id: Set(group_id),
            ..Default::default()
        }
        .insert(conn)
        .await?;
    }
    Ok(())
}

fn summary(rule: &ApprovalRule) -> serde_json::Value {
    json!({"name": rule.name, "enabled": rule.enabled, "template_id": rule.template_id,
           "role": rule.role.map(Role::as_str), "max_cores": rule.max_cores,
           "max_memory_mib": rule.max_memory_mib, "max_disk_gib": rule.max_disk_gib,
           "max_machines": rule.max_machines, "user_ids": rule.user_ids, "group_ids": rule.group_ids})
}

/// Inside the transaction that recorded `row` (pending): approves it at once when a rule covers it,
/// enqueuing its provisioning job like a person's approval. Returns the request as it now stands.
pub(super) async fn apply_to_new<C: ConnectionTrait>(
    txn: &C,
    actor: &Actor,
    row: request::Model,
) -> Result<request::Model, ServiceError> {
    let Some(template_id) = row.template_id else { return Ok(row) };
    let rules = covering_candidates(txn, template_id).await?;
    if rules.is_empty() {
        return Ok(row);
    }
    let facts = RequestFacts {
        template_id,
        user_id: actor.id,
        role: actor.role,
        group_ids: super::groups::member_group_ids(txn, actor.id).await?,
        wanted: Resources { cores: row.cores, memory_mib: row.memory_mib, disk_gib: row.disk_gib },
        held_from_entry: held_from_entry(txn, actor.id, template_id, row.id).await?,
    };
    let Some(rule) = first_covering(&rules, &facts) else { return Ok(row) };
    let extra = vec![(request::Column::ApprovedByRule, Some(rule.id).into())];
    let details = json!({"rule_id": rule.id, "rule": rule.name, "cores": row.cores,
                         "memory_mib": row.memory_mib, "disk_gib": row.disk_gib});
    requests::transition_in_by(txn, audit::By::Policy, row.id, RequestEvent::Approve, extra, details).await
}

/// The enabled rules that may cover a request of this entry, in order.
async fn covering_candidates<C: ConnectionTrait>(
    conn: &C,
    template_id: i64,
) -> Result<Vec<ApprovalRule>, ServiceError> {
    use sea_orm::Condition;
    let rows = approval_rule::Entity::find()
        .filter(approval_rule::Column::Enabled.eq(true))
        .filter(
            Condition::any()
                .add(approval_rule::Column::TemplateId.is_null())
                .add(approval_rule::Column::TemplateId.eq(template_id)),
        )
        .order_by_asc(approval_rule::Column::Id)
        .all(conn)
        .await?;
    let mut rules = Vec::with_capacity(rows.len());
    for row in rows {
        let subjects = subjects_of(conn, row.id).await?;
        rules.push(to_domain(row, subjects));
    }
    Ok(rules)
}

async fn held_from_entry<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    template_id: i64,
    except: i64,
) -> Result<i32, ServiceError> {
    let holding: Vec<&str> = RequestStatus::ALL.into_iter().filter(|s| s.holds_quota()).map(|s| s.as_str()).collect();
    let n = request::Entity::find()
        .filter(request::Column::UserId.eq(user_id))
        .filter(request::Column::TemplateId.eq(template_id))
        .filter(request::Column::Status.is_in(holding))
        .filter(request::Column::Id.ne(except))
        .count(conn)
        .await?;
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}
