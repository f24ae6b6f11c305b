//! Reading jobs, cancelling them and retrying dead ones.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::{JobError, JobState, entity};

/// One job as the application sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Row id.
    pub id: i64,
    /// Which handler runs it.
    pub kind: String,
    /// JSON payload.
    pub payload: serde_json::Value,
    /// Current state; `failed`, `dead` and `cancelled` are final and keep `last_error`.
    pub state: JobState,
    /// Attempts used so far.
    pub attempts: i32,
    /// Attempts allowed as stored at enqueue (the kind's registered maximum overrides it).
    pub max_attempts: i32,
    /// Not claimed before this time.
    pub run_after: DateTime<Utc>,
    /// The key that makes enqueueing idempotent.
    pub idempotency_key: Option<String>,
    /// Lease token of the worker running it.
    pub lease_owner: Option<String>,
    /// When the current lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The last failure or retry reason.
    pub last_error: Option<String>,
    /// The handler's last checkpoint.
    pub checkpoint: Option<serde_json::Value>,
    /// Whether cancellation was asked for while it ran.
    pub cancel_requested: bool,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The id of the request that enqueued it, if any.
    pub request_id: Option<String>,
}

impl TryFrom<entity::Model> for Job {
    type Error = JobError;

    fn try_from(m: entity::Model) -> Result<Self, JobError> {
        Ok(Job {
            id: m.id,
            kind: m.kind,
            payload: serde_json::from_str(&m.payload)?,
            state: m.state.parse()?,
            attempts: m.attempts,
            max_attempts: m.max_attempts,
            run_after: m.run_after,
            idempotency_key: m.idempotency_key,
            lease_owner: m.lease_owner,
            lease_expires_at: m.lease_expires_at,
            last_error: m.last_error,
            checkpoint: m.checkpoint.as_deref().map(serde_json::from_str).transpose()?,
            cancel_requested: m.cancel_requested,
            created_at: m.created_at,
            updated_at: m.updated_at,
            request_id: m.req_id,
        })
    }
}

/// Which jobs [`list`] returns; the default is the latest 100 of any kind and state.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only these states (empty: any).
    pub states: Vec<JobState>,
    /// At most this many (default 100).
    pub limit: Option<u64>,
}

/// How many jobs are queued or running, per kind and state: one grouped count over the state index.
pub async fn depth<C: ConnectionTrait>(conn: &C) -> Result<Vec<(String, JobState, i64)>, JobError> {
    let rows: Vec<(String, String, i64)> = entity::Entity::find()
        .select_only()
        .column(entity::Column::Kind)
        .column(entity::Column::State)
        .column_as(entity::Column::Id.count(), "n")
        .filter(entity::Column::State.is_in([JobState::Queued.as_str(), JobState::Running.as_str()]))
        .group_by(entity::Column::Kind)
        .group_by(entity::Column::State)
        .into_tuple()
        .all(conn)
        .await?;
    rows.into_iter().map(|(kind, state, n)| Ok((kind, state.parse()?, n))).collect()
}

/// The job with `id`, if any.
pub async fn get<C: ConnectionTrait>(conn: &C, id: i64) -> Result<Option<Job>, JobError> {
    entity::Entity::find_by_id(id).one(conn).await?.map(Job::try_from).transpose()
}

/// Jobs matching `filter`, newest first.
pub async fn list<C: ConnectionTrait>(conn: &C, filter: &JobFilter) -> Result<Vec<Job>, JobError> {
    let mut query = entity::Entity::find().order_by_desc(entity::Column::Id);
    if let Some(kind) = &filter.kind {
        query = query.filter(entity::Column::Kind.eq(kind.as_str()));
    }
    if !filter.states.is_empty() {
        query = query.filter(entity::Column::State.is_in(filter.states.iter().map(|s| s.as_str())));
    }
    let rows = query.limit(filter.limit.unwrap_or(100)).all(conn).await?;
    rows.into_iter().map(Job::try_from).collect()
}

/// What [`cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was queued and is now `cancelled`.
    Cancelled,
    /// The job is running: its worker trips the job's stop signal at its next heartbeat, and the job
    /// ends `cancelled` unless the handler still returns `Done`.
    Requested,
    /// The job had already finished in this state; nothing changed.
    AlreadyFinished(JobState),
}

/// Cancels job `id`, on `conn` (a connection or the caller's transaction). Queued jobs are cancelled
/// at once; running ones are asked to stop.
pub async fn cancel<C: ConnectionTrait>(conn: &C, id: i64) -> Result<CancelOutcome, JobError> {
    // The job may move between queued and running while we look; each try is one conditional update.
    for _ in 0..3 {
        let now = Utc::now();
        let cancelled = entity::Entity::update_many()
            .col_expr(entity::Column::State, Expr::value(JobState::Cancelled.as_str()))
            .col_expr(entity::Column::LastError, Expr::value("cancelled"))
            .col_expr(entity::Column::UpdatedAt, Expr::value(now))
            .filter(entity::Column::Id.eq(id))
            .filter(entity::Column::State.eq(JobState::Queued.as_str()))
            .exec(conn)
            .await?;
        if cancelled.rows_affected == 1 {
            return Ok(CancelOutcome::Cancelled);
        }
        let requested = entity::Entity::update_many()
            .col_expr(entity::Column::CancelRequested, Expr::value(true))
            .col_expr(entity::Column::UpdatedAt, Expr::value(now))
            .filter(entity::Column::Id.eq(id))
            .filter(entity::Column::State.eq(JobState::Running.as_str()))
            .exec(conn)
            .await?;
        if requested.rows_affected == 1 {
            return Ok(CancelOutcome::Requested);
        }
        let job = get(conn, id).await?.ok_or(JobError::NotFound(id))?;
        if job.state.is_final() {
            return Ok(CancelOutcome::AlreadyFinished(job.state));
        }
    }
    Err(sea_orm::DbErr::Custom(format!("job {id} kept changing state while being cancelled")).into())
}

/// Queues a `dead` or `failed` job again with its attempts reset, keeping its checkpoint. Returns
/// whether it was requeued (false when the job is in another state).
pub async fn retry_dead<C: ConnectionTrait>(conn: &C, id: i64) -> Result<bool, JobError> {
    let now = Utc::now();
    let res = entity::Entity::update_many()
        .col_expr(entity::Column::State, Expr::value(JobState::Queued.as_str()))
        .col_expr(entity::Column::Attempts, Expr::value(0))
        .col_expr(entity::Column::RunAfter, Expr::value(now))
        .col_expr(entity::Column::CancelRequested, Expr::value(false))
        .col_expr(entity::Column::UpdatedAt, Expr::value(now))
        .filter(entity::Column::Id.eq(id))
        .filter(entity::Column::State.is_in([JobState::Dead.as_str(), JobState::Failed.as_str()]))
        .exec(conn)
        .await?;
    if res.rows_affected == 1 {
        crate::wake();
    }
    Ok(res.rows_affected == 1)
}
