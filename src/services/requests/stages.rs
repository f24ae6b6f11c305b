//! Approval stages of requests: an entry naming groups in order makes each of its requests wait for an
//! approval from each group in turn. Approving at a stage before the last records the approval and moves
//! the request on (one conditional UPDATE on `stage`, so two approvers of one stage have one winner);
//! approving at the last is the approval of entries without stages. Members of the current stage's group
//! may read and decide the request; admins may decide at any stage (noted in the audit).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr, sea_query::Expr,
};
use serde_json::json;

use entities::{request, request_approval, template_approval_stage as stage};

use super::{RequestRow, transition_in};
use crate::domain::approval_stages::{ApprovalStep, Approver, Authority, Refusal, authority, step};
use crate::domain::notification::EventKind;
use crate::domain::request_status::{RequestEvent, RequestStatus};
use crate::services::{Actor, Page, ServiceError, audit, groups, into_page, notifications, page_limit};

/// One stage of an entry: the group whose member approves at `position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub position: i32,
    pub group_id: i64,
    pub group_name: String,
}

/// An approval recorded at one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    pub stage: i32,
    pub user_id: i64,
    pub username: String,
    pub decided_at: DateTime<Utc>,
}

/// Where a request of an entry with stages stands: its stage, the entry's stages, the approvals given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub stage: i32,
    pub stages: Vec<Stage>,
    pub approvals: Vec<Given>,
}

impl Progress {
    /// The stage a pending request waits at (`None` once decided).
    pub fn waiting(&self, status: &str) -> Option<&Stage> {
        if RequestStatus::parse(status) != Some(RequestStatus::Pending) {
            return None;
        }
        self.stages.get(self.stage.max(0) as usize).or(self.stages.last())
    }

    /// `2/3`, the stage as people count.
    pub fn label(&self) -> String {
        crate::domain::approval_stages::label(self.stage, self.stages.len())
    }
}

/// The stages of each of `template_ids` that has any, in order.
pub async fn stages_of_templates<C: ConnectionTrait>(
    conn: &C,
    template_ids: &[i64],
) -> Result<HashMap<i64, Vec<Stage>>, ServiceError> {
    if template_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, i32, i64, Option<String>)> = stage::Entity::find()
        .select_only()
        .column(stage::Column::TemplateId)
        .column(stage::Column::Position)
        .column(stage::Column::GroupId)
        .column_as(
            Expr::cust("(SELECT name FROM user_groups WHERE user_groups.id = template_approval_stages.group_id)"),
            "group_name",
        )
        .filter(stage::Column::TemplateId.is_in(template_ids.to_vec()))
        .order_by_asc(stage::Column::TemplateId)
        .order_by_asc(stage::Column::Position)
        .into_tuple()
        .all(conn)
        .await?;
    let mut map: HashMap<i64, Vec<Stage>> = HashMap::new();
    for (template_id, position, group_id, name) in rows {
        map.entry(template_id).or_default().push(Stage { position, group_id, group_name: name.unwrap_or_default() });
    }
    Ok(map)
}

/// The stages of one entry (none for an adopted request without an entry).
pub async fn stages_of<C: ConnectionTrait>(conn: &C, template_id: Option<i64>) -> Result<Vec<Stage>, ServiceError> {
    let Some(t) = template_id else { return Ok(vec![]) };
    Ok(stages_of_templates(conn, &[t]).await?.remove(&t).unwrap_or_default())
}

/// An approval as read: request, stage, approver's id, when, approver's name.
type GivenRow = (i64, i32, i64, DateTime<Utc>, Option<String>);

/// The progress of each request of `rows` whose entry has stages: two queries for the whole page, the
/// second only when some entry has stages.
pub async fn progress_for<C: ConnectionTrait>(
    conn: &C,
    rows: &[&request::Model],
) -> Result<HashMap<i64, Progress>, ServiceError> {
    let mut template_ids: Vec<i64> = rows.iter().filter_map(|r| r.template_id).collect();
    template_ids.sort_unstable();
    template_ids.dedup();
    let stages = stages_of_templates(conn, &template_ids).await?;
    if stages.is_empty() {
        return Ok(HashMap::new());
    }
    let staged: Vec<&request::Model> =
        rows.iter().copied().filter(|r| r.template_id.is_some_and(|t| stages.contains_key(&t))).collect();
    let given: Vec<GivenRow> = request_approval::Entity::find()
        .select_only()
        .column(request_approval::Column::RequestId)
        .column(request_approval::Column::Stage)
        .column(request_approval::Column::UserId)
        .column(request_approval::Column::DecidedAt)
        .column_as(Expr::cust("(SELECT username FROM users WHERE users.id = request_approvals.user_id)"), "username")
        .filter(request_approval::Column::RequestId.is_in(staged.iter().map(|r| r.id).collect::<Vec<_>>()))
        .order_by_asc(request_approval::Column::Stage)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(staged
        .into_iter()
        .map(|r| {
            let approvals = given
                .iter()
                .filter(|g| g.0 == r.id)
                .map(|(_, stage, user_id, at, name)| Given {
                    stage: *stage,
                    user_id: *user_id,
                    username: name.clone().unwrap_or_default(),
                    decided_at: *at,
                })
                .collect();
            let stages = r.template_id.and_then(|t| stages.get(&t)).cloned().unwrap_or_default();
            (r.id, Progress { stage: r.stage, stages, approvals })
        })
        .collect())
}

/// Fills in the progress of every row whose entry has stages.
pub async fn with_progress<C: ConnectionTrait>(conn: &C, rows: &mut [RequestRow]) -> Result<(), ServiceError> {
    let mut progress = progress_for(conn, &rows.iter().map(|r| &r.request).collect::<Vec<_>>()).await?;
    for row in rows {
        row.approval = progress.remove(&row.request.id);
    }
    Ok(())
}

/// Whether `actor` is in the group of any stage of `r`'s entry: someone who may decide it, or may have
/// been about to (the loser of a race learns that someone decided first, not that the request is gone).
pub(super) async fn is_stage_member<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    r: &request::Model,
) -> Result<bool, ServiceError> {
    let stages = stages_of(conn, r.template_id).await?;
    if stages.is_empty() {
        return Ok(false);
    }
    let mine = groups::member_group_ids(conn, actor.id).await?;
    Ok(stages.iter().any(|s| mine.contains(&s.group_id)))
}

/// Whether `actor` may read `r` as an approver: it is pending at a stage whose group they are in.
pub(super) async fn may_review<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    r: &request::Model,
) -> Result<bool, ServiceError> {
    if r.status != RequestStatus::Pending.as_str() {
        return Ok(false);
    }
    let stages = stages_of(conn, r.template_id).await?;
    let Some(current) = stages.get(r.stage.max(0) as usize).or(stages.last()) else { return Ok(false) };
    Ok(groups::member_group_ids(conn, actor.id).await?.contains(&current.group_id))
}

/// The rules' verdict on `actor` deciding `r` at its current stage.
async fn authorize<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    r: &request::Model,
    stages: &[Stage],
    current: &Stage,
    event: RequestEvent,
) -> Result<Authority, ServiceError> {
    let status = RequestStatus::parse(&r.status)
        .ok_or_else(|| ServiceError::Internal(format!("request {} has unknown status", r.id)))?;
    if status != RequestStatus::Pending {
        // Decided already (someone won the race, or it ended): the state machine's own refusal.
        status.apply(event)?;
    }
    let approved_before = request_approval::Entity::find()
        .filter(request_approval::Column::RequestId.eq(r.id))
        .filter(request_approval::Column::UserId.eq(actor.id))
        .one(conn)
        .await?
        .is_some();
    let mine = groups::member_group_ids(conn, actor.id).await?;
    let who = Approver {
        is_admin: actor.is_admin(),
        is_owner: r.user_id == actor.id,
        in_current_group: mine.contains(&current.group_id),
        approved_before,
        in_passed_group: stages.iter().any(|s| s.position < current.position && mine.contains(&s.group_id)),
    };
    authority(who).map_err(|refusal| match refusal {
        Refusal::AlreadyApproved | Refusal::StagePassed => ServiceError::Conflict(refusal.to_string()),
        Refusal::NotAnApprover | Refusal::OwnRequest => ServiceError::Forbidden,
    })
}

/// The stage `r` waits at, by the entry's list (the last one for a stage past the end).
fn current_stage(r: &request::Model, stages: &[Stage]) -> Result<Stage, ServiceError> {
    stages
        .get(r.stage.max(0) as usize)
        .or(stages.last())
        .cloned()
        .ok_or_else(|| ServiceError::Internal(format!("request {} has no approval stage", r.id)))
}

/// The audit details naming the stage and group, and an admin's override.
fn stage_details(r: &request::Model, stages: &[Stage], current: &Stage, how: Authority) -> serde_json::Value {
    let mut details = json!({"stage": r.stage + 1, "stages": stages.len(), "group": current.group_name});
    if how == Authority::AdminOverride {
        details["admin_override"] = json!(true);
    }
    details
}

/// Takes the request's row while it is still pending at the stage read (`rows_affected` decides races);
/// a no-op write, so the change that follows in this transaction sees exactly that stage.
async fn hold_stage<C: ConnectionTrait>(conn: &C, r: &request::Model, set_to: i32) -> Result<(), ServiceError> {
    let held = request::Entity::update_many()
        .col_expr(request::Column::Stage, Expr::value(set_to))
        .col_expr(request::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(request::Column::Id.eq(r.id))
        .filter(request::Column::Status.eq(RequestStatus::Pending.as_str()))
        .filter(request::Column::Stage.eq(r.stage))
        .exec(conn)
        .await?;
    if held.rows_affected != 1 {
        return Err(ServiceError::Conflict(format!("request {} was decided by someone else", r.id)));
    }
    Ok(())
}

/// Records `actor`'s approval at `stage`; a second approval of the stage, or a second by the same
/// person, is a conflict (the unique keys decide, whatever the pre-checks saw).
async fn record<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    r: &request::Model,
    stage: i32,
) -> Result<(), ServiceError> {
    let row = request_approval::ActiveModel {
        request_id: Set(r.id),
        stage: Set(stage),
        user_id: Set(actor.id),
        decided_at: Set(Utc::now()),
    };
    match row.insert(conn).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(ServiceError::Conflict(format!("request {} was approved at this stage already", r.id)))
        }
        Err(DbErr::RecordNotInserted) => Err(ServiceError::Conflict(format!("request {} changed", r.id))),
        Err(e) => Err(e.into()),
    }
}

/// Approves `r` at its current stage. Before the last stage: the approval is recorded and the request
/// moves on (still pending). At the last: recorded, then today's approval with its provisioning job,
/// `extra` and `details` as `requests::approve` prepared them.
pub(super) async fn approve(
    db: &DatabaseConnection,
    actor: &Actor,
    r: request::Model,
    stages: Vec<Stage>,
    extra: Vec<(request::Column, sea_orm::Value)>,
    details: serde_json::Value,
) -> Result<request::Model, ServiceError> {
    let current = current_stage(&r, &stages)?;
    let how = authorize(db, actor, &r, &stages, &current, RequestEvent::Approve).await?;
    let mut audit_details = stage_details(&r, &stages, &current, how);
    let txn = crate::db::begin_write(db).await?;
    match step(r.stage, stages.len()) {
        ApprovalStep::Advance { from, to } => {
            hold_stage(&txn, &r, to).await?;
            record(&txn, actor, &r, from).await?;
            audit::record(&txn, Some(actor), "request.stage_approved", "request", r.id, audit_details).await?;
            let key = format!("request:{}:stage:{to}", r.id);
            notifications::record(&txn, EventKind::RequestAwaiting, &key, r.id, None, None, None).await?;
            let moved = request::Entity::find_by_id(r.id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
            txn.commit().await?;
            Ok(moved)
        }
        ApprovalStep::Final { stage } => {
            hold_stage(&txn, &r, r.stage).await?;
            record(&txn, actor, &r, stage).await?;
            if let (Some(target), serde_json::Value::Object(more)) = (audit_details.as_object_mut(), details) {
                target.extend(more);
            }
            let approved = transition_in(&txn, Some(actor), r.id, RequestEvent::Approve, extra, audit_details).await?;
            txn.commit().await?;
            jobs::wake();
            Ok(approved)
        }
    }
}

/// Rejects `r` at its current stage: the request ends, whichever stage it was at.
pub(super) async fn reject(
    db: &DatabaseConnection,
    actor: &Actor,
    r: request::Model,
    stages: Vec<Stage>,
    extra: Vec<(request::Column, sea_orm::Value)>,
    details: serde_json::Value,
) -> Result<request::Model, ServiceError> {
    let current = current_stage(&r, &stages)?;
    let how = authorize(db, actor, &r, &stages, &current, RequestEvent::Reject).await?;
    let mut audit_details = stage_details(&r, &stages, &current, how);
    if let (Some(target), serde_json::Value::Object(more)) = (audit_details.as_object_mut(), details) {
        target.extend(more);
    }
    let txn = crate::db::begin_write(db).await?;
    hold_stage(&txn, &r, r.stage).await?;
    let rejected = transition_in(&txn, Some(actor), r.id, RequestEvent::Reject, extra, audit_details).await?;
    txn.commit().await?;
    Ok(rejected)
}

/// The pending requests waiting at a stage of a group `actor` is in, oldest first: not their own, and not
/// ones they approved at an earlier stage (they may not act on those).
pub async fn awaiting(
    db: &DatabaseConnection,
    actor: &Actor,
    cursor: Option<i64>,
    limit: Option<u64>,
) -> Result<Page<RequestRow>, ServiceError> {
    let limit = page_limit(limit);
    // `actor.id` is an integer from the session, never text typed by anyone.
    let waiting_for_me = Expr::cust(format!(
        "EXISTS (SELECT 1 FROM template_approval_stages s \
         JOIN user_group_members m ON m.group_id = s.group_id \
         WHERE s.template_id = requests.template_id AND s.position = requests.stage AND m.user_id = {id}) \
         AND NOT EXISTS (SELECT 1 FROM request_approvals a WHERE a.request_id = requests.id AND a.user_id = {id})",
        id = actor.id
    ));
    let mut q = request::Entity::find()
        .filter(request::Column::Status.eq(RequestStatus::Pending.as_str()))
        .filter(request::Column::UserId.ne(actor.id))
        .filter(waiting_for_me);
    if let Some(c) = cursor {
        q = q.filter(request::Column::Id.gt(c));
    }
    let rows = q.order_by_asc(request::Column::Id).limit(limit + 1).all(db).await?;
    let rows = super::with_names(db, rows).await?;
    Ok(into_page(rows, limit, |r| r.request.id))
}

/// Who may approve `r` at its current stage besides admins: the active members of that stage's group,
/// but its owner and anyone who approved an earlier stage. `None` for a request whose entry has no stages
/// (admins alone decide it) or that is no longer pending. For telling approvers a request waits for them.
pub async fn current_approvers<C: ConnectionTrait>(
    conn: &C,
    r: &request::Model,
) -> Result<Option<Vec<entities::user::Model>>, ServiceError> {
    if RequestStatus::parse(&r.status) != Some(RequestStatus::Pending) {
        return Ok(None);
    }
    let stages = stages_of(conn, r.template_id).await?;
    let Some(current) = stages.get(r.stage.max(0) as usize).or(stages.last()) else { return Ok(None) };
    let acted: Vec<i64> = request_approval::Entity::find()
        .select_only()
        .column(request_approval::Column::UserId)
        .filter(request_approval::Column::RequestId.eq(r.id))
        .into_tuple()
        .all(conn)
        .await?;
    let members = groups::members(conn, current.group_id).await?;
    Ok(Some(members.into_iter().filter(|u| !u.disabled && u.id != r.user_id && !acted.contains(&u.id)).collect()))
}

/// The group names of stages, in order, for forms and the API.
pub fn names(stages: &[Stage]) -> Vec<String> {
    stages.iter().map(|s| s.group_name.clone()).collect()
}
