//! A generic durable job queue over sea-orm, with leases, retries, cancellation and cron ticks.
//!
//! Jobs live in the `jobs` table (created by the application's migrations). This crate knows nothing of
//! the application: it stores a kind and a JSON payload, and applications register a [`Handler`] per kind
//! in a [`Registry`].
//!
//! # Life of a job
//! - [`enqueue`] inserts a `queued` row, inside the caller's transaction if it has one. The same
//!   idempotency key twice yields one job. Call [`wake`] after committing so workers in this process
//!   look at once instead of at their next poll.
//! - A [`Worker`] claims it with one conditional `UPDATE` (state `queued` and due, or `running` with an
//!   expired lease), checked through `rows_affected`, so several workers in several processes on one
//!   database never hold the same job at once. The claim counts an attempt and sets a lease that the
//!   worker extends by heartbeat while the handler runs.
//! - The handler returns an [`Outcome`]: `Done` → `succeeded`; `Failed` → `failed` (permanent);
//!   `RetryLater` → `queued` again without using up an attempt; an `Err` → `queued` with exponential
//!   backoff and jitter, or `dead` once the kind's maximum of attempts is used up. A job whose worker
//!   crashed on its last attempt also ends `dead` once its lease expires.
//! - Every write of a running job (checkpoint, heartbeat, completion) is conditional on the lease still
//!   being the worker's, so a worker that lost its lease can change nothing.
//! - `failed`, `dead` and `cancelled` are final; the state, attempts and `last_error` stay visible through
//!   [`get`] and [`list`], and [`Handler::on_give_up`] runs in the same transaction as that final update.
//!
//! - [`cancel`] cancels a queued job at once and asks a running one to stop (its worker notices at the
//!   next heartbeat); [`retry_dead`] queues a `dead` or `failed` job again.
//! - [`Scheduler`] enqueues jobs on cron schedules, one job per tick across processes.
//!
//! # Guarantees
//! At most one worker holds a job's lease at a time, and only the holder's writes count. Delivery is
//! at least once: a crash (or a lost lease, or a failed final write) runs the attempt again from the
//! last checkpoint, so each step of a handler must be safe to repeat. Leases compare against the
//! workers' clocks, so processes sharing a database need synchronised clocks.
//!
//! # Example
//! ```no_run
//! # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), jobs::JobError> {
//! use jobs::{KindOptions, NewJob, Outcome, Registry, Worker, WorkerConfig};
//!
//! let mut registry = Registry::new();
//! registry.register_fn("mail", KindOptions::default(), |ctx| async move {
//!     let to: String = ctx.payload_as()?;
//!     // … send it …
//!     Ok(Outcome::Done)
//! });
//! let worker = Worker::new(db.clone(), registry, WorkerConfig::default()).spawn();
//! jobs::enqueue(&db, NewJob::new("mail", serde_json::json!("a@example.org")).idempotency_key("mail:1"))
//!     .await?;
//! // …
//! worker.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Concurrency
//! [`WorkerConfig::concurrency`] bounds the jobs one worker runs at once; [`KindOptions::concurrency`]
//! bounds one kind per worker; [`KeyedSemaphores`] bounds work per key (a node, a template) inside
//! handlers. All three are per process.

#![warn(missing_docs)]

mod context;
mod cron;
mod enqueue;
pub mod entity;
mod handler;
mod lease;
mod limits;
mod query;
mod run;
mod worker;

pub use async_trait::async_trait;
pub use context::{JobContext, StopReason, StopSignal};
pub use cron::Scheduler;
pub use enqueue::{NewJob, current_request_id, enqueue, wake, with_request_id};
pub use handler::{Backoff, Handler, HandlerError, KindOptions, Outcome, Registry};
pub use limits::{KeyedPermit, KeyedSemaphores};
pub use query::{CancelOutcome, Job, JobFilter, cancel, depth, get, list, retry_dead};
pub use worker::{Finished, OnFinish, Worker, WorkerConfig, WorkerHandle};

/// Errors of the job queue.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The database refused or failed a statement.
    #[error("job store: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// A payload or checkpoint could not be encoded or decoded.
    #[error("job payload: {0}")]
    Payload(#[from] serde_json::Error),
    /// The worker no longer holds the job's lease (it expired and another worker took the job, or the
    /// job was finished elsewhere); the write was not made.
    #[error("job {0}: lease lost")]
    LeaseLost(i64),
    /// No job has this id.
    #[error("job {0} not found")]
    NotFound(i64),
    /// The table holds a state this crate does not know.
    #[error("unknown job state {0:?}")]
    UnknownState(String),
    /// A handler's [`Handler::on_give_up`] hook failed; the final update was rolled back.
    #[error("give-up hook of job {0}: {1}")]
    GiveUpHook(i64, String),
    /// The cron scheduler refused a schedule or failed to start or stop.
    #[error("cron schedule: {0}")]
    Schedule(String),
}

/// States a job moves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for its `run_after` time and a free worker.
    Queued,
    /// Leased by a worker.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with a permanent failure ([`Outcome::Failed`]).
    Failed,
    /// Gave up after its last allowed attempt.
    Dead,
    /// Cancelled before it finished.
    Cancelled,
}

impl JobState {
    /// Every state, in the order of the enum.
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The state's name as stored in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job will never run again on its own (`succeeded`, `failed`, `dead`, `cancelled`).
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

impl std::str::FromStr for JobState {
    type Err = JobError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s).ok_or_else(|| JobError::UnknownState(s.to_owned()))
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
