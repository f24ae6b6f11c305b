//! What a handler sees of its job: payload, attempt, checkpoint, stop signal, database.
use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::{JobError, lease};

/// Why a running handler is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The worker is shutting down: checkpoint and return [`crate::Outcome::RetryLater`] soon; after the
    /// worker's grace period the handler is dropped and its lease left to expire.
    Shutdown,
    /// [`crate::cancel`] was called for this job: undo what you can and return; unless the handler
    /// returns `Done`, the job ends `cancelled`.
    Cancelled,
    /// The lease was lost (it expired and another worker may have taken the job). The worker aborts
    /// the handler right after raising this, as a crash would; sub-tasks holding a [`StopSignal`] see
    /// it and should stop too. Nothing this attempt writes through the queue is kept.
    LeaseLost,
}

/// A cheap, cloneable view of a job's stop signal (like a cancellation token).
#[derive(Debug, Clone)]
pub struct StopSignal {
    rx: watch::Receiver<Option<StopReason>>,
}

impl StopSignal {
    pub(crate) fn new() -> (watch::Sender<Option<StopReason>>, StopSignal) {
        let (tx, rx) = watch::channel(None);
        (tx, StopSignal { rx })
    }

    /// Why the job was asked to stop, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        *self.rx.borrow()
    }

    /// Whether the job was asked to stop.
    pub fn is_stopped(&self) -> bool {
        self.reason().is_some()
    }

    /// Waits until the job is asked to stop and returns why. Never returns while the job may go on.
    pub async fn stopped(&self) -> StopReason {
        let mut rx = self.rx.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.unwrap_or(StopReason::Shutdown),
            // The worker dropped the job: treat as a shutdown.
            Err(_) => StopReason::Shutdown,
        }
    }
}

/// Raises `reason` unless one is already set; a lost lease overrides any other.
pub(crate) fn raise(tx: &watch::Sender<Option<StopReason>>, reason: StopReason) {
    tx.send_if_modified(|current| {
        if current.is_none() || (reason == StopReason::LeaseLost && *current != Some(reason)) {
            *current = Some(reason);
            true
        } else {
            false
        }
    });
}

/// The handler's view of the job it runs. Cloning is cheap; clones share the latest checkpoint.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) payload: Arc<serde_json::Value>,
    pub(crate) attempt: i32,
    pub(crate) max_attempts: i32,
    pub(crate) checkpoint: Arc<Mutex<Option<serde_json::Value>>>,
    pub(crate) lease_owner: String,
    pub(crate) db: DatabaseConnection,
    pub(crate) stop: StopSignal,
}

impl JobContext {
    /// The job's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The job's kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The job's JSON payload.
    pub fn payload(&self) -> &serde_json::Value {
        &self.payload
    }

    /// The payload decoded as `T`.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        Ok(T::deserialize(&*self.payload)?)
    }

    /// This attempt's number, from 1. Attempts given back ([`crate::Outcome::RetryLater`], shutdown) are
    /// not counted; attempts cut short by a crash are.
    pub fn attempt(&self) -> i32 {
        self.attempt
    }

    /// Attempts allowed before the job is `dead`.
    pub fn max_attempts(&self) -> i32 {
        self.max_attempts
    }

    /// Whether an error returned now makes the job `dead` (time to clean up external resources).
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// The latest checkpoint: the stored one when the attempt started, or the last one written since.
    pub fn checkpoint_value(&self) -> Option<serde_json::Value> {
        self.checkpoint.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The latest checkpoint decoded as `T`.
    pub fn checkpoint_as<T: DeserializeOwned>(&self) -> Result<Option<T>, JobError> {
        Ok(self.checkpoint_value().map(serde_json::from_value).transpose()?)
    }

    /// Stores `value` as the job's checkpoint, so a later attempt (after a crash, shutdown or retry)
    /// starts from it. Fails with [`JobError::LeaseLost`] and writes nothing if the lease is no longer
    /// this worker's.
    pub async fn checkpoint<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), JobError> {
        self.checkpoint_in(&self.db, value).await
    }

    /// Like [`JobContext::checkpoint`], on `conn`: pass an open transaction to store the checkpoint
    /// atomically with the handler's own writes (roll back on [`JobError::LeaseLost`]).
    pub async fn checkpoint_in<C, T>(&self, conn: &C, value: &T) -> Result<(), JobError>
    where
        C: ConnectionTrait,
        T: Serialize + ?Sized,
    {
        let value = serde_json::to_value(value)?;
        lease::write_checkpoint(conn, self.id, &self.lease_owner, &value).await?;
        *self.checkpoint.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        Ok(())
    }

    /// The database the queue lives in.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The job's stop signal, to hand to sub-tasks.
    pub fn stop_signal(&self) -> StopSignal {
        self.stop.clone()
    }

    /// Why the job was asked to stop, if it was.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop.reason()
    }

    /// Waits until the job is asked to stop (shutdown, cancellation, lost lease); use in `select!`.
    pub async fn stopped(&self) -> StopReason {
        self.stop.stopped().await
    }

    /// The lease token this attempt holds (worker id and a per-claim suffix).
    pub fn lease_owner(&self) -> &str {
        &self.lease_owner
    }
}
