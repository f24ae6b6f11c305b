//! Running one claimed job: the handler, its heartbeat and stop signal, and settling the outcome.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::context::{StopSignal, raise};
use crate::handler::Kind;
use crate::lease::{self, Beat, Finish};
use crate::worker::Shared;
use crate::{Job, JobContext, JobState, Outcome, StopReason};

/// Aborts the task when dropped, so aborting a job's task also aborts its handler.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `job`, claimed under `owner` at `claimed_at`, to the end of this attempt.
pub(crate) async fn run_job(shared: Arc<Shared>, kind: Kind, job: Job, owner: String, claimed_at: Instant) {
    // Every line the attempt logs carries the job and the request that enqueued it; jobs it enqueues
    // inherit that request id.
    let span = tracing::info_span!("job", job = job.id, kind = %job.kind, req_id = job.request_id.as_deref());
    tracing::Instrument::instrument(attempt(shared, kind, job, owner, claimed_at, span.clone()), span).await
}

async fn attempt(shared: Arc<Shared>, kind: Kind, job: Job, owner: String, claimed_at: Instant, span: tracing::Span) {
    let id = job.id;
    let max_attempts = kind.max_attempts(job.max_attempts);
    let (stop_tx, stop) = StopSignal::new();
    if job.cancel_requested {
        raise(&stop_tx, StopReason::Cancelled);
    }
    let ctx = JobContext {
        id,
        kind: job.kind.clone(),
        payload: Arc::new(job.payload),
        attempt: job.attempts,
        max_attempts,
        checkpoint: Arc::new(Mutex::new(job.checkpoint)),
        lease_owner: owner.clone(),
        db: shared.db.clone(),
        stop,
    };
    let started = std::time::Instant::now();
    tracing::debug!(attempt = job.attempts, "job started");
    let handler = kind.handler.clone();
    let run = tracing::Instrument::instrument(async move { handler.run(ctx).await }, span);
    let run: std::pin::Pin<Box<dyn Future<Output = _> + Send>> = match job.request_id.clone() {
        Some(req) => Box::pin(crate::with_request_id(req, run)),
        None => Box::pin(run),
    };
    let mut task = AbortOnDrop(tokio::spawn(run));

    let mut beat = tokio::time::interval(shared.config.heartbeat_interval);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    beat.tick().await;
    let mut shutdown = shared.shutdown.clone();
    let mut shutdown_seen = *shutdown.borrow();
    if shutdown_seen {
        raise(&stop_tx, StopReason::Shutdown);
    }
    // By our own clock, the lease is surely ours until then.
    let mut held_until = claimed_at + shared.config.lease_duration;
    let result = loop {
        tokio::select! {
            result = &mut task.0 => break result,
            _ = beat.tick() => {
                let sent = Instant::now();
                match keep_lease(&shared, id, &owner, &stop_tx).await {
                    Some(true) => held_until = sent + shared.config.lease_duration,
                    None if Instant::now() < held_until => {}
                    // Lost, or unknown past its end: another worker may run the job now, so stop at
                    // once, as a crash would.
                    _ => {
                        raise(&stop_tx, StopReason::LeaseLost);
                        tracing::warn!(job = id, "lease lost; handler aborted");
                        return;
                    }
                }
            }
            changed = shutdown.changed(), if !shutdown_seen => {
                shutdown_seen = true;
                if changed.is_err() || *shutdown.borrow() {
                    raise(&stop_tx, StopReason::Shutdown);
                }
            }
        }
    };
    let outcome = match result {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(error)) => Err(error.to_string()),
        Err(join) if join.is_panic() => Err(format!("handler panicked: {}", panic_message(join))),
        Err(_) => Err("handler was aborted".to_owned()),
    };
    let reason = *stop_tx.borrow();
    let finish = settle(&kind, job.attempts, max_attempts, outcome, reason);
    match &finish {
        Finish::Succeeded => tracing::debug!(job = id, "job succeeded"),
        Finish::Requeue { run_after, reason, .. } => {
            tracing::info!(job = id, %run_after, %reason, "job attempt ended; queued again")
        }
        Finish::Final { state, reason } => tracing::warn!(job = id, %state, %reason, "job gave up"),
    }
    if let Some(on_finish) = &shared.config.on_finish {
        let outcome = match &finish {
            Finish::Succeeded => "succeeded",
            Finish::Requeue { .. } => "retry",
            Finish::Final { state, .. } => state.as_str(),
        };
        (on_finish.0)(crate::Finished { kind: &job.kind, outcome, elapsed: started.elapsed() });
    }
    match lease::finish(&shared.db, &kind, id, &owner, finish).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(job = id, "lease lost before the outcome was stored; discarded"),
        // The lease then expires and another attempt settles the job.
        Err(e) => tracing::error!(job = id, error = %e, "storing job outcome failed"),
    }
}

/// Extends the lease and raises the stop signal on cancellation. Returns whether the lease is still
/// ours, or `None` when the heartbeat failed and we cannot tell.
async fn keep_lease(
    shared: &Shared,
    id: i64,
    owner: &str,
    stop_tx: &watch::Sender<Option<StopReason>>,
) -> Option<bool> {
    let expires = Utc::now() + shared.config.lease_duration;
    match lease::heartbeat(&shared.db, id, owner, expires).await {
        Ok(Beat::Held { cancel_requested }) => {
            if cancel_requested {
                raise(stop_tx, StopReason::Cancelled);
            }
            Some(true)
        }
        Ok(Beat::Lost) => Some(false),
        // A missed beat is harmless while the lease lasts; the next one tries again.
        Err(e) => {
            tracing::warn!(job = id, error = %e, "heartbeat failed");
            None
        }
    }
}

/// Decides how an attempt is stored.
fn settle(
    kind: &Kind,
    attempt: i32,
    max_attempts: i32,
    outcome: Result<Outcome, String>,
    reason: Option<StopReason>,
) -> Finish {
    let now = Utc::now();
    let later = |d: Duration| now + d;
    // A lost lease never gets here (the attempt is dropped when the loss is found), so it counts as
    // no stop request.
    match (outcome, reason) {
        (Ok(Outcome::Done), _) => Finish::Succeeded,
        (Ok(Outcome::Failed(why)), Some(StopReason::Cancelled))
        | (Ok(Outcome::RetryLater { reason: why, .. }), Some(StopReason::Cancelled))
        | (Err(why), Some(StopReason::Cancelled)) => {
            Finish::Final { state: JobState::Cancelled, reason: format!("cancelled: {why}") }
        }
        (Ok(Outcome::Failed(why)), _) => Finish::Final { state: JobState::Failed, reason: why },
        (Ok(Outcome::RetryLater { after, reason }), Some(StopReason::Shutdown)) => {
            Finish::Requeue { run_after: later(after.unwrap_or_default()), reason, give_back: true }
        }
        (Ok(Outcome::RetryLater { after, reason }), None | Some(StopReason::LeaseLost)) => Finish::Requeue {
            run_after: later(after.unwrap_or_else(|| kind.options.backoff.delay(attempt))),
            reason,
            give_back: true,
        },
        // An attempt interrupted by shutdown is given back rather than counted as a failure.
        (Err(why), Some(StopReason::Shutdown)) => Finish::Requeue { run_after: now, reason: why, give_back: true },
        (Err(why), None | Some(StopReason::LeaseLost)) if attempt >= max_attempts => {
            Finish::Final { state: JobState::Dead, reason: format!("attempt {attempt} of {max_attempts}: {why}") }
        }
        (Err(why), None | Some(StopReason::LeaseLost)) => Finish::Requeue {
            run_after: later(kind.options.backoff.delay(attempt)),
            reason: format!("attempt {attempt} of {max_attempts}: {why}"),
            give_back: false,
        },
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_owned())
}
