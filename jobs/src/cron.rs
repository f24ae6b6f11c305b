//! Cron schedules that enqueue jobs, once per tick however many processes run them.
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use sea_orm::DatabaseConnection;
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};

use crate::{JobError, NewJob, enqueue};

/// Enqueues jobs on cron schedules (through `tokio-cron-scheduler`).
///
/// Each tick enqueues with the idempotency key `cron:{kind}:{tick}` (the tick in RFC 3339, UTC), so
/// every process may run the same schedules: a tick yields one job. Expressions have six fields with
/// seconds first (`sec min hour day-of-month month day-of-week`), in UTC, e.g. `0 */5 * * * *`.
pub struct Scheduler {
    inner: JobScheduler,
    db: DatabaseConnection,
}

impl Scheduler {
    /// A scheduler enqueueing into `db`; add schedules, then [`Scheduler::start`] it.
    pub async fn new(db: DatabaseConnection) -> Result<Self, JobError> {
        Ok(Scheduler { inner: JobScheduler::new().await.map_err(schedule_error)?, db })
    }

    /// On every tick of `cron_expr`, enqueues a job of `kind` with payload `payload(tick)`.
    pub async fn schedule<F>(&self, cron_expr: &str, kind: impl Into<String>, payload: F) -> Result<(), JobError>
    where
        F: Fn(DateTime<Utc>) -> serde_json::Value + Send + Sync + 'static,
    {
        let cron = Arc::new(parse(cron_expr)?);
        let kind: Arc<str> = kind.into().into();
        let payload = Arc::new(payload);
        let db = self.db.clone();
        let job = CronJob::new_async(cron_expr, move |_id, _scheduler| {
            let (cron, kind, payload, db) = (cron.clone(), kind.clone(), payload.clone(), db.clone());
            Box::pin(async move {
                let tick = tick_of(&cron, Utc::now());
                let key = idempotency_key(&kind, tick);
                let job = NewJob::new(kind.as_ref(), payload(tick)).idempotency_key(key);
                match enqueue(&db, job).await {
                    Ok(id) => tracing::debug!(kind = %kind, %tick, job = id, "cron tick enqueued"),
                    Err(e) => {
                        tracing::error!(kind = %kind, %tick, error = %e, "cron tick not enqueued")
                    }
                }
            })
        })
        .map_err(schedule_error)?;
        self.inner.add(job).await.map_err(schedule_error)?;
        Ok(())
    }

    /// Starts ticking.
    pub async fn start(&self) -> Result<(), JobError> {
        self.inner.start().await.map_err(schedule_error)
    }

    /// Stops ticking.
    pub async fn shutdown(mut self) -> Result<(), JobError> {
        self.inner.shutdown().await.map_err(schedule_error)
    }
}

/// The idempotency key of `kind`'s job for `tick`.
fn idempotency_key(kind: &str, tick: DateTime<Utc>) -> String {
    format!("cron:{kind}:{}", tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Parses like `tokio-cron-scheduler` does, so both agree on the ticks.
fn parse(cron_expr: &str) -> Result<Cron, JobError> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(cron_expr)
        .map_err(|e| JobError::Schedule(format!("{cron_expr:?}: {e}")))
}

/// The tick a run at `now` belongs to: the latest scheduled time not after `now`. Every process
/// computes the same one, however late its timer fires.
fn tick_of(cron: &Cron, now: DateTime<Utc>) -> DateTime<Utc> {
    let now = now.trunc_subsecs(0);
    cron.find_previous_occurrence(&now, true).unwrap_or(now)
}

fn schedule_error(e: tokio_cron_scheduler::JobSchedulerError) -> JobError {
    JobError::Schedule(format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_late_run_belongs_to_the_tick_before_it() {
        let cron = parse("0 */5 * * * *").unwrap();
        let late = Utc.with_ymd_and_hms(2026, 11, 24, 3, 7, 12).unwrap();
        let tick = Utc.with_ymd_and_hms(2026, 11, 24, 3, 5, 0).unwrap();
        assert_eq!(tick_of(&cron, late), tick);
        assert_eq!(tick_of(&cron, tick), tick);
        assert_eq!(idempotency_key("sync", tick), "cron:sync:2026-11-24T03:05:00Z");
    }

    #[test]
    fn a_malformed_expression_is_refused() {
        assert!(matches!(parse("every tuesday"), Err(JobError::Schedule(_))));
    }
}
