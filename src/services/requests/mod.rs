//! Requests for machines: submitting, listing, and every status change (one conditional UPDATE each).

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QueryResult, QuerySelect, sea_query::Expr,
};
use serde_json::json;

use entities::{approval_rule, request, template, user};

mod access;
mod check;
pub mod stages;

use access::get_to_decide;
pub use access::{get, get_own};
pub use check::check;
use check::{CheckedRequest, check_new};

use super::{Actor, Page, ServiceError, approval_rules, audit, into_page, notifications, page_limit, quotas};
use crate::domain::notification::EventKind;
use crate::domain::quota::{Resources, TemplateLimits, check_quota, check_template_limits};
use crate::domain::request_origin::RequestOrigin;
use crate::domain::request_status::{RequestEvent, RequestStatus};
use crate::domain::values::bounded_text;

/// The job kind approval enqueues.
pub const PROVISION_JOB: &str = "provision";
/// The job kind deletion enqueues.
pub const DESTROY_JOB: &str = "destroy";

/// What a user submits.
#[derive(Debug, Clone, Default)]
pub struct NewRequest {
    pub template_id: i64,
    pub hostname: String,
    pub cores: i32,
    pub memory_mib: i32,
    pub disk_gib: i32,
    pub purpose: String,
    pub ssh_public_key: Option<String>,
    /// The storage chosen among the entry's allowed ones; `None`: the entry's first (or no choice).
    pub storage: Option<String>,
    /// The bridge chosen for `net0` among the entry's allowed ones.
    pub bridge: Option<String>,
    /// The installer ISO chosen (ISO entries).
    pub iso: Option<String>,
}

/// Validates and records a request (pending). Template bounds and quota are checked under a write
/// lock on the user's row, so two submissions at once cannot both squeeze under the quota.
#[tracing::instrument(skip(db, input), fields(actor = actor.id))]
pub async fn create(db: &DatabaseConnection, actor: &Actor, input: NewRequest) -> Result<request::Model, ServiceError> {
    let (checked, errors) = check_new(db, actor, &input, &[]).await?;
    errors.into_result()?;
    let Some(CheckedRequest { hostname, purpose, ssh_key, template, choices }) = checked else {
        return Err(ServiceError::Internal("a request without errors was not checked".into()));
    };
    let wanted = Resources { cores: input.cores, memory_mib: input.memory_mib, disk_gib: input.disk_gib };

    let txn = crate::db::begin_write(db).await?;
    lock_user(&txn, actor.id).await?;
    let quota = quotas::effective(&txn, actor.id).await?;
    let usage = quotas::usage(&txn, actor.id).await?;
    check_quota(quota, usage, wanted).into_result()?;
    let now = Utc::now();
    let row = request::ActiveModel {
        user_id: Set(actor.id),
        template_id: Set(Some(template.id)),
        origin: Set(RequestOrigin::Requested.as_str().to_owned()),
        hostname: Set(hostname.as_str().to_owned()),
        cores: Set(wanted.cores),
        memory_mib: Set(wanted.memory_mib),
        disk_gib: Set(wanted.disk_gib),
        purpose: Set(purpose),
        ssh_public_key: Set(ssh_key.map(|k| k.as_str().to_owned())),
        storage: Set(choices.storage.clone()),
        bridge: Set(choices.bridge.clone()),
        iso: Set(choices.iso.clone()),
        status: Set(RequestStatus::Pending.as_str().to_owned()),
        reason: Set(None),
        decided_by: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut details = json!({"template": template.name, "hostname": row.hostname, "cores": row.cores,
               "memory_mib": row.memory_mib, "disk_gib": row.disk_gib});
    for (key, value) in [("storage", &choices.storage), ("bridge", &choices.bridge), ("iso", &choices.iso)] {
        if let Some(v) = value {
            details[key] = json!(v);
        }
    }
    audit::record(&txn, Some(actor), "request.created", "request", row.id, details).await?;
    // A request a rule approves at once is told as approved (from the transition); only one that waits
    // is told as received, to its owner and to the approvers.
    let row = approval_rules::apply_to_new(&txn, actor, row).await?;
    if row.approved_by_rule.is_none() {
        let key = format!("request:{}:received", row.id);
        notifications::record(&txn, EventKind::RequestReceived, &key, row.id, None, None, None).await?;
    }
    txn.commit().await?;
    // The approvers hear of it, or its provisioning starts, now rather than at the workers' next poll.
    jobs::wake();
    Ok(row)
}

/// Takes the user's row lock: a no-op UPDATE, portable across SQLite and PostgreSQL.
pub(super) async fn lock_user<C: ConnectionTrait>(conn: &C, user_id: i64) -> Result<(), ServiceError> {
    user::Entity::update_many()
        .col_expr(user::Column::Id, Expr::col(user::Column::Id))
        .filter(user::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// List filters. Non-admins always see only their own requests.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<RequestStatus>,
    pub user_id: Option<i64>,
    pub template_id: Option<i64>,
    /// Only the requests this automatic approval rule approved.
    pub approved_by_rule: Option<i64>,
    /// Matches hostname or purpose.
    pub search: Option<String>,
    /// Oldest first (the admin queue) instead of newest first.
    pub oldest_first: bool,
    pub cursor: Option<i64>,
    pub limit: Option<u64>,
}

/// A request with the names people need beside it.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub request: request::Model,
    pub username: String,
    pub template_name: String,
    /// The name of the rule that approved it, if one did.
    pub rule_name: Option<String>,
    /// Where it stands in its entry's approval stages; `None` for entries without stages.
    pub approval: Option<stages::Progress>,
}

pub async fn list(db: &DatabaseConnection, actor: &Actor, f: RequestFilter) -> Result<Page<RequestRow>, ServiceError> {
    let limit = page_limit(f.limit);
    let mut q = request::Entity::find();
    let user_id = if actor.is_admin() { f.user_id } else { Some(actor.id) };
    if let Some(u) = user_id {
        q = q.filter(request::Column::UserId.eq(u));
    }
    if let Some(s) = f.status {
        q = q.filter(request::Column::Status.eq(s.as_str()));
    }
    if let Some(t) = f.template_id {
        q = q.filter(request::Column::TemplateId.eq(t));
    }
    if let Some(rule) = f.approved_by_rule {
        q = q.filter(request::Column::ApprovedByRule.eq(rule));
    }
    if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let s = super::search_term(s);
        let s = s.as_str();
        q = q.filter(
            Condition::any().add(request::Column::Hostname.contains(s)).add(request::Column::Purpose.contains(s)),
        );
    }
    q = match (f.oldest_first, f.cursor) {
        (true, Some(c)) => q.filter(request::Column::Id.gt(c)).order_by_asc(request::Column::Id),
        (true, None) => q.order_by_asc(request::Column::Id),
        (false, Some(c)) => q.filter(request::Column::Id.lt(c)).order_by_desc(request::Column::Id),
        (false, None) => q.order_by_desc(request::Column::Id),
    };
    // One query: the names come from scalar subqueries, evaluated only for the rows returned, so the
    // page still walks the primary key and stops at the LIMIT (a join made SQLite sort the whole table).
    let mut rows: Vec<RequestRow> = q
        .column_as(Expr::cust("(SELECT username FROM users WHERE users.id = requests.user_id)"), "username")
        .column_as(
            Expr::cust("(SELECT name FROM templates WHERE templates.id = requests.template_id)"),
            "template_name",
        )
        .column_as(
            Expr::cust("(SELECT name FROM approval_rules WHERE approval_rules.id = requests.approved_by_rule)"),
            "rule_name",
        )
        .limit(limit + 1)
        .into_model()
        .all(db)
        .await?;
    stages::with_progress(db, &mut rows).await?;
    Ok(into_page(rows, limit, |r| r.request.id))
}

impl FromQueryResult for RequestRow {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        let name = |column: &str| -> Result<String, DbErr> {
            Ok(res.try_get::<Option<String>>(pre, column)?.unwrap_or_default())
        };
        Ok(RequestRow {
            request: request::Model::from_query_result(res, pre)?,
            username: name("username")?,
            template_name: name("template_name")?,
            rule_name: res.try_get::<Option<String>>(pre, "rule_name")?,
            approval: None,
        })
    }
}

/// Adds user and template names with two queries for the whole page.
pub async fn with_names(db: &DatabaseConnection, rows: Vec<request::Model>) -> Result<Vec<RequestRow>, ServiceError> {
    let mut user_ids: Vec<i64> = rows.iter().map(|r| r.user_id).collect();
    user_ids.sort_unstable();
    user_ids.dedup();
    let mut template_ids: Vec<i64> = rows.iter().filter_map(|r| r.template_id).collect();
    template_ids.sort_unstable();
    template_ids.dedup();
    let users: Vec<(i64, String)> = user::Entity::find()
        .select_only()
        .columns([user::Column::Id, user::Column::Username])
        .filter(user::Column::Id.is_in(user_ids))
        .into_tuple()
        .all(db)
        .await?;
    let templates: Vec<(i64, String)> = template::Entity::find()
        .select_only()
        .columns([template::Column::Id, template::Column::Name])
        .filter(template::Column::Id.is_in(template_ids))
        .into_tuple()
        .all(db)
        .await?;
    let mut rule_ids: Vec<i64> = rows.iter().filter_map(|r| r.approved_by_rule).collect();
    rule_ids.dedup();
    let rules: Vec<(i64, String)> = approval_rule::Entity::find()
        .select_only()
        .columns([approval_rule::Column::Id, approval_rule::Column::Name])
        .filter(approval_rule::Column::Id.is_in(rule_ids))
        .into_tuple()
        .all(db)
        .await?;
    let name =
        |list: &[(i64, String)], id| list.iter().find(|(i, _)| *i == id).map(|(_, n)| n.clone()).unwrap_or_default();
    let mut rows: Vec<RequestRow> = rows
        .into_iter()
        .map(|r| RequestRow {
            username: name(&users, r.user_id),
            template_name: r.template_id.map(|t| name(&templates, t)).unwrap_or_default(),
            rule_name: r.approved_by_rule.map(|id| name(&rules, id)),
            request: r,
            approval: None,
        })
        .collect();
    stages::with_progress(db, &mut rows).await?;
    Ok(rows)
}

/// Resource changes an admin may make while approving.
#[derive(Debug, Clone, Copy, Default)]
pub struct Adjustments {
    pub cores: Option<i32>,
    pub memory_mib: Option<i32>,
    pub disk_gib: Option<i32>,
}

/// Approves a pending request (optionally adjusting resources within the template's bounds) and
/// enqueues its provisioning job in the same transaction. A request of an entry with approval stages is
/// approved at its current stage by a member of that stage's group or an admin (see [`stages`]); only
/// admins adjust resources.
#[tracing::instrument(skip(db), fields(actor = actor.id))]
pub async fn approve(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i64,
    adj: Adjustments,
) -> Result<request::Model, ServiceError> {
    let current = get_to_decide(db, actor, id).await?;
    let stages = stages::stages_of(db, current.template_id).await?;
    let adjusting = adj.cores.is_some() || adj.memory_mib.is_some() || adj.disk_gib.is_some();
    if stages.is_empty() || adjusting {
        actor.require_admin()?;
    }
    let wanted = Resources {
        cores: adj.cores.unwrap_or(current.cores),
        memory_mib: adj.memory_mib.unwrap_or(current.memory_mib),
        disk_gib: adj.disk_gib.unwrap_or(current.disk_gib),
    };
    if let Some(tid) = current.template_id
        && let Some(t) = template::Entity::find_by_id(tid).one(db).await?
    {
        let max = Resources { cores: t.max_cores, memory_mib: t.max_memory_mib, disk_gib: t.max_disk_gib };
        check_template_limits(TemplateLimits { max }, wanted).into_result()?;
    }
    let extra = vec![
        (request::Column::Cores, wanted.cores.into()),
        (request::Column::MemoryMib, wanted.memory_mib.into()),
        (request::Column::DiskGib, wanted.disk_gib.into()),
        (request::Column::DecidedBy, Some(actor.id).into()),
    ];
    let details = json!({"cores": wanted.cores, "memory_mib": wanted.memory_mib, "disk_gib": wanted.disk_gib});
    if !stages.is_empty() {
        return stages::approve(db, actor, current, stages, extra, details).await;
    }
    transition(db, Some(actor), id, RequestEvent::Approve, extra, details).await
}

/// Rejects a pending request with a reason the requester sees; at any approval stage, a rejection by
/// that stage's group (or an admin) ends the request.
pub async fn reject(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i64,
    reason: &str,
) -> Result<request::Model, ServiceError> {
    let current = get_to_decide(db, actor, id).await?;
    let stages = stages::stages_of(db, current.template_id).await?;
    if stages.is_empty() {
        actor.require_admin()?;
    }
    let reason = bounded_text("reason", reason, 1, 1000)?;
    let extra = vec![
        (request::Column::Reason, Some(reason.clone()).into()),
        (request::Column::DecidedBy, Some(actor.id).into()),
    ];
    if !stages.is_empty() {
        return stages::reject(db, actor, current, stages, extra, json!({"reason": reason})).await;
    }
    transition(db, Some(actor), id, RequestEvent::Reject, extra, json!({"reason": reason})).await
}

/// Withdraws a pending request (its owner, or an admin).
pub async fn cancel(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<request::Model, ServiceError> {
    get_own(db, actor, id).await?;
    transition(db, Some(actor), id, RequestEvent::Cancel, vec![], json!({})).await
}

/// Sends a failed request back to provisioning (admin).
pub async fn retry(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<request::Model, ServiceError> {
    actor.require_admin()?;
    get_own(db, actor, id).await?;
    let extra = vec![(request::Column::Reason, Option::<String>::None.into())];
    transition(db, Some(actor), id, RequestEvent::Retry, extra, json!({})).await
}

/// Applies `event`: computes the next state from the domain table, then one conditional UPDATE
/// (`WHERE id = ? AND status = <the state we read>`) decides races; its audit entry, and for
/// approvals the provisioning job, are written in the same transaction.
pub async fn transition(
    db: &DatabaseConnection,
    actor: Option<&Actor>,
    id: i64,
    event: RequestEvent,
    extra: Vec<(request::Column, sea_orm::Value)>,
    details: serde_json::Value,
) -> Result<request::Model, ServiceError> {
    let txn = crate::db::begin_write(db).await?;
    let updated = transition_in(&txn, actor, id, event, extra, details).await?;
    txn.commit().await?;
    if matches!(RequestStatus::parse(&updated.status), Some(RequestStatus::Approved | RequestStatus::Deleting)) {
        // The job became visible with the commit: let local workers pick it up now.
        jobs::wake();
    }
    Ok(updated)
}

/// [`transition`] inside the caller's transaction, for changes that must commit together with it.
pub async fn transition_in<C: ConnectionTrait>(
    txn: &C,
    actor: Option<&Actor>,
    id: i64,
    event: RequestEvent,
    extra: Vec<(request::Column, sea_orm::Value)>,
    details: serde_json::Value,
) -> Result<request::Model, ServiceError> {
    transition_in_by(txn, actor.into(), id, event, extra, details).await
}

/// [`transition_in`] naming who decided (an automatic approval rule decides as policy).
pub async fn transition_in_by<C: ConnectionTrait>(
    txn: &C,
    by: audit::By<'_>,
    id: i64,
    event: RequestEvent,
    extra: Vec<(request::Column, sea_orm::Value)>,
    details: serde_json::Value,
) -> Result<request::Model, ServiceError> {
    let current = request::Entity::find_by_id(id).one(txn).await?.ok_or(ServiceError::NotFound)?;
    let from = RequestStatus::parse(&current.status)
        .ok_or_else(|| ServiceError::Internal(format!("request {id} has unknown status")))?;
    let to = from.apply(event)?;
    let mut update = request::Entity::update_many()
        .col_expr(request::Column::Status, Expr::value(to.as_str()))
        .col_expr(request::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(request::Column::Id.eq(id))
        .filter(request::Column::Status.eq(from.as_str()));
    for (col, value) in extra {
        update = update.col_expr(col, Expr::value(value));
    }
    if update.exec(txn).await?.rows_affected != 1 {
        return Err(ServiceError::Conflict(format!("request {id} was changed by someone else")));
    }
    let mut details = details;
    details["from"] = json!(from.as_str());
    details["to"] = json!(to.as_str());
    let audit_id = audit::record_by(txn, by, event.audit_action(), "request", id, details).await?;
    let job = match to {
        RequestStatus::Approved => Some(PROVISION_JOB),
        RequestStatus::Deleting => Some(DESTROY_JOB),
        _ => None,
    };
    if let Some(kind) = job {
        let job = jobs::NewJob::new(kind, json!({"request_id": id})).idempotency_key(format!("{kind}:{id}:{audit_id}"));
        jobs::enqueue(txn, job).await?;
    }
    let updated = request::Entity::find_by_id(id).one(txn).await?.ok_or(ServiceError::NotFound)?;
    // Told in the same commit as the change: a rolled-back change tells nobody.
    notifications::record_transition(txn, &updated, from, to, audit_id).await?;
    Ok(updated)
}

/// How many requests are in `status` now (the queue's badge, the admin home).
pub async fn count_in(db: &DatabaseConnection, status: RequestStatus) -> Result<u64, ServiceError> {
    use sea_orm::PaginatorTrait;
    Ok(request::Entity::find().filter(request::Column::Status.eq(status.as_str())).count(db).await?)
}
