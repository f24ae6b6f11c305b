//! The `jobs` table.
use sea_orm::entity::prelude::*;

/// One durable job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Which handler runs it.
    pub kind: String,
    /// JSON payload handed to the handler.
    pub payload: String,
    /// See [`crate::JobState`].
    pub state: String,
    /// Attempts started so far.
    pub attempts: i32,
    /// Attempts allowed before the job is dead.
    pub max_attempts: i32,
    /// Not claimed before this time.
    pub run_after: DateTimeUtc,
    /// Enqueueing the same key twice yields one job.
    #[sea_orm(unique)]
    pub idempotency_key: Option<String>,
    /// Worker holding the lease.
    pub lease_owner: Option<String>,
    /// The lease may be reclaimed after this time.
    pub lease_expires_at: Option<DateTimeUtc>,
    /// Last failure, for people.
    pub last_error: Option<String>,
    /// Handler-defined JSON progress, so a resumed job continues where it stopped.
    pub checkpoint: Option<String>,
    /// Set by [`crate::cancel`] on a running job; its worker trips the job's stop signal.
    pub cancel_requested: bool,
    /// When it was enqueued.
    pub created_at: DateTimeUtc,
    /// The id of the HTTP request that enqueued it, if one did ([`crate::with_request_id`]).
    pub req_id: Option<String>,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No relations: the queue is independent of the application's tables.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
