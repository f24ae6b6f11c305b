//! Putting work on the queue, inside the caller's transaction when it has one.
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use tokio::sync::Notify;

use crate::{JobError, JobState, entity};

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Handler kind.
    pub kind: String,
    /// JSON payload.
    pub payload: serde_json::Value,
    /// Enqueueing the same key twice yields one job.
    pub idempotency_key: Option<String>,
    /// Attempts allowed before the job is dead, unless the kind's [`crate::KindOptions::max_attempts`]
    /// says otherwise.
    pub max_attempts: i32,
    /// Not run before this time; `None` means now.
    pub run_after: Option<DateTime<Utc>>,
    /// The id of the request that asked for it; `None` takes the one [`with_request_id`] set, if any.
    pub request_id: Option<String>,
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `future` with `id` as the request id: jobs it enqueues store it, and their runs log it.
pub async fn with_request_id<F: Future>(id: String, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// The request id [`with_request_id`] set for the current task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Workers of this process wait on this besides their poll interval.
pub(crate) static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Wakes the workers of this process so they look for due jobs now rather than at their next poll.
/// [`enqueue`] calls it itself, but inside a transaction the job is invisible until the commit: call
/// it again after committing.
pub fn wake() {
    WAKE.notify_waiters();
}

impl NewJob {
    /// A job of `kind` with `payload`, five attempts and no idempotency key.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self { kind: kind.into(), payload, idempotency_key: None, max_attempts: 5, run_after: None, request_id: None }
    }

    /// Sets the number of attempts allowed before the job is dead (at least one).
    pub fn max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Delays the job until `at`.
    pub fn run_after(mut self, at: DateTime<Utc>) -> Self {
        self.run_after = Some(at);
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// Enqueues `job` on `conn` (a connection or an open transaction) and returns its id. With an
/// idempotency key that is already taken (by a job in any state), returns the existing job's id and
/// adds nothing.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, job: NewJob) -> Result<i64, JobError> {
    let now = Utc::now();
    let row = entity::ActiveModel {
        kind: Set(job.kind),
        payload: Set(serde_json::to_string(&job.payload)?),
        state: Set(JobState::Queued.as_str().to_owned()),
        attempts: Set(0),
        max_attempts: Set(job.max_attempts),
        run_after: Set(job.run_after.unwrap_or(now)),
        idempotency_key: Set(job.idempotency_key.clone()),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        last_error: Set(None),
        checkpoint: Set(None),
        cancel_requested: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        req_id: Set(job.request_id.or_else(current_request_id)),
        ..Default::default()
    };
    // ON CONFLICT DO NOTHING works on SQLite and PostgreSQL alike and never aborts a transaction.
    let inserted = entity::Entity::insert(row)
        .on_conflict(OnConflict::column(entity::Column::IdempotencyKey).do_nothing().to_owned())
        .try_insert()
        .exec(conn)
        .await?;
    if let sea_orm::TryInsertResult::Inserted(res) = inserted {
        wake();
        return Ok(res.last_insert_id);
    }
    let key = job.idempotency_key.unwrap_or_default();
    let existing = entity::Entity::find()
        .filter(entity::Column::IdempotencyKey.eq(key))
        .one(conn)
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("job with idempotency key".into()))?;
    Ok(existing.id)
}
