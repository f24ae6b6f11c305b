//! What applications implement ([`Handler`]) and how they register it per kind ([`Registry`]).
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sea_orm::DatabaseTransaction;

use crate::{Job, JobContext};

/// The error a handler returns for a failure worth retrying: any error converts with `?`.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How an attempt ended, as the handler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The job is finished: state `succeeded`.
    Done,
    /// Run the job again later, e.g. a resource is busy or the worker is shutting down. The attempt is
    /// given back (it does not count toward the maximum), so a handler that keeps answering this must
    /// bound its own waiting, e.g. with a deadline in its checkpoint.
    RetryLater {
        /// Delay before the next attempt; `None` uses the kind's backoff for the current attempt.
        after: Option<Duration>,
        /// Why, stored in `last_error` for people.
        reason: String,
    },
    /// The job can never succeed: state `failed`, with the reason in `last_error`. Not retried.
    Failed(String),
}

impl Outcome {
    /// `RetryLater` after `after` with `reason`.
    pub fn retry_after(after: Duration, reason: impl Into<String>) -> Self {
        Outcome::RetryLater { after: Some(after), reason: reason.into() }
    }

    /// `Failed` with `reason`.
    pub fn failed(reason: impl Into<String>) -> Self {
        Outcome::Failed(reason.into())
    }
}

/// Runs jobs of one kind.
///
/// `run` is called once per attempt with a [`JobContext`]. Returning `Err` is a retryable failure:
/// the job is queued again with backoff until the kind's maximum of attempts, then it is `dead`.
/// Long handlers should [`JobContext::checkpoint`] their progress and watch [`JobContext::stopped`]:
/// on shutdown they should checkpoint and return [`Outcome::RetryLater`]; on cancellation they should
/// undo what they can and return anything but `Done` (the job then ends `cancelled`).
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt of the job.
    async fn run(&self, ctx: JobContext) -> Result<Outcome, HandlerError>;

    /// Called when a worker moves a job of this kind to `failed`, `dead` or `cancelled`, inside the
    /// transaction of that update (the job as given already shows its final state and `last_error`):
    /// the place to mark the application's own records failed in the same commit. Returning `Err`
    /// rolls the final update back; the job then stays `running` until its lease expires and is
    /// settled again. Not called for jobs [`crate::cancel`] cancels while still queued (the caller
    /// knows). External clean-up belongs in [`Handler::run`] (see [`JobContext::is_last_attempt`]).
    async fn on_give_up(&self, txn: &DatabaseTransaction, job: &Job) -> Result<(), HandlerError> {
        let _ = (txn, job);
        Ok(())
    }
}

struct FnHandler<F>(F);

#[async_trait::async_trait]
impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, HandlerError>> + Send + 'static,
{
    async fn run(&self, ctx: JobContext) -> Result<Outcome, HandlerError> {
        (self.0)(ctx).await
    }
}

/// Exponential backoff with jitter: attempt `n` waits between half and all of
/// `min(max, base * 2^(n-1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed attempt (before jitter).
    pub base: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// One second, doubling up to five minutes.
    fn default() -> Self {
        Backoff { base: Duration::from_secs(1), max: Duration::from_secs(300) }
    }
}

impl Backoff {
    /// The delay after attempt `attempt` (1-based) failed, jitter included.
    pub fn delay(&self, attempt: i32) -> Duration {
        let exp = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(30);
        let full = self.base.saturating_mul(1u32 << exp).min(self.max);
        let half = full / 2;
        half + full.saturating_sub(half).mul_f64(rand::rng().random::<f64>())
    }
}

/// Per-kind settings.
#[derive(Debug, Clone, Default)]
pub struct KindOptions {
    /// Attempts allowed before a job of this kind is `dead`; overrides the job's own `max_attempts`
    /// (set at enqueue) when given.
    pub max_attempts: Option<i32>,
    /// Delays between failed attempts.
    pub backoff: Backoff,
    /// How many jobs of this kind one worker runs at once; `None` is only bounded by the worker's
    /// concurrency.
    pub concurrency: Option<usize>,
}

#[derive(Clone)]
pub(crate) struct Kind {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) options: KindOptions,
}

/// The handlers a worker knows, by kind. A worker only claims jobs of registered kinds.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: HashMap<String, Kind>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `kind` with default [`KindOptions`], replacing any earlier one.
    pub fn register(&mut self, kind: impl Into<String>, handler: impl Handler) -> &mut Self {
        self.register_with(kind, handler, KindOptions::default())
    }

    /// Registers `handler` for `kind` with `options`, replacing any earlier one.
    pub fn register_with(&mut self, kind: impl Into<String>, handler: impl Handler, options: KindOptions) -> &mut Self {
        self.kinds.insert(kind.into(), Kind { handler: Arc::new(handler), options });
        self
    }

    /// Registers an async closure `f(ctx)` for `kind` with `options`.
    pub fn register_fn<F, Fut>(&mut self, kind: impl Into<String>, options: KindOptions, f: F) -> &mut Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outcome, HandlerError>> + Send + 'static,
    {
        self.register_with(kind, FnHandler(f), options)
    }

    /// The registered kinds.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Kind> {
        self.kinds.get(kind)
    }
}

impl Kind {
    /// The attempts allowed for a job whose row says `row_max`.
    pub(crate) fn max_attempts(&self, row_max: i32) -> i32 {
        self.options.max_attempts.unwrap_or(row_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_its_maximum() {
        let backoff = Backoff { base: Duration::from_millis(100), max: Duration::from_millis(350) };
        for _ in 0..50 {
            let first = backoff.delay(1);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first));
            let third = backoff.delay(3);
            assert!((Duration::from_millis(175)..=Duration::from_millis(350)).contains(&third));
            assert!(backoff.delay(1000) <= Duration::from_millis(350));
        }
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in crate::JobState::ALL {
            assert_eq!(state.as_str().parse::<crate::JobState>().unwrap(), state);
        }
        assert!("exploded".parse::<crate::JobState>().is_err());
    }
}
