//! Outcomes: errors retried with backoff until dead, permanent failures, retry-later, the give-up hook.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::{Backoff, Handler, HandlerError, Job, JobContext, JobState, KindOptions, NewJob, Outcome, Registry, Worker};
use sea_orm::DatabaseTransaction;
use serde_json::json;
use tokio::time::Instant;

use crate::common::{TestDb, fast_worker, job, wait_for_state};

/// The final states (and errors) the give-up hook saw.
type GivenUp = Arc<Mutex<Vec<(JobState, Option<String>)>>>;

/// Fails in a way chosen per test and records each attempt and each give-up.
#[derive(Clone, Default)]
struct Recorder {
    attempts: Arc<Mutex<Vec<(i32, Instant)>>>,
    given_up: GivenUp,
    permanent: bool,
}

#[jobs::async_trait]
impl Handler for Recorder {
    async fn run(&self, ctx: JobContext) -> Result<Outcome, HandlerError> {
        self.attempts.lock().unwrap().push((ctx.attempt(), Instant::now()));
        if self.permanent { Ok(Outcome::failed("bad template")) } else { Err("node unreachable".into()) }
    }

    async fn on_give_up(&self, _txn: &DatabaseTransaction, job: &Job) -> Result<(), HandlerError> {
        self.given_up.lock().unwrap().push((job.state, job.last_error.clone()));
        Ok(())
    }
}

fn options(max_attempts: i32) -> KindOptions {
    KindOptions {
        max_attempts: Some(max_attempts),
        backoff: Backoff { base: Duration::from_millis(200), max: Duration::from_secs(1) },
        concurrency: None,
    }
}

on_both_backends!(errors_are_retried_with_backoff_until_the_job_is_dead);
async fn errors_are_retried_with_backoff_until_the_job_is_dead(t: &TestDb) {
    let recorder = Recorder::default();
    let mut registry = Registry::new();
    registry.register_with("flaky", recorder.clone(), options(3));
    let id = jobs::enqueue(&t.db, NewJob::new("flaky", json!({}))).await.unwrap();
    let worker = Worker::new(t.db.clone(), registry, fast_worker("w")).spawn();
    let dead = wait_for_state(&t.db, id, JobState::Dead).await;
    worker.shutdown().await;

    assert_eq!(dead.attempts, 3);
    let error = dead.last_error.unwrap_or_default();
    assert!(error.contains("attempt 3 of 3") && error.contains("node unreachable"), "{error}");
    let attempts = recorder.attempts.lock().unwrap().clone();
    assert_eq!(attempts.iter().map(|a| a.0).collect::<Vec<_>>(), [1, 2, 3]);
    // Jitter keeps at least half of the exponential delay: 200 ms, then 400 ms.
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps[0] >= Duration::from_millis(100), "first retry waited only {:?}", gaps[0]);
    assert!(gaps[1] >= Duration::from_millis(200), "second retry waited only {:?}", gaps[1]);
    let given_up = recorder.given_up.lock().unwrap().clone();
    assert_eq!(given_up.len(), 1, "the hook runs once");
    assert_eq!(given_up[0].0, JobState::Dead);
}

on_both_backends!(a_permanent_failure_is_never_retried);
async fn a_permanent_failure_is_never_retried(t: &TestDb) {
    let recorder = Recorder { permanent: true, ..Default::default() };
    let mut registry = Registry::new();
    registry.register_with("doomed", recorder.clone(), options(5));
    let id = jobs::enqueue(&t.db, NewJob::new("doomed", json!({}))).await.unwrap();
    let worker = Worker::new(t.db.clone(), registry, fast_worker("w")).spawn();
    let failed = wait_for_state(&t.db, id, JobState::Failed).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.shutdown().await;

    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.last_error.as_deref(), Some("bad template"));
    assert_eq!(recorder.attempts.lock().unwrap().len(), 1);
    assert_eq!(job(&t.db, id).await.state, JobState::Failed);
    let given_up = recorder.given_up.lock().unwrap().clone();
    assert_eq!(given_up, [(JobState::Failed, Some("bad template".to_owned()))]);
}

on_both_backends!(retry_later_reschedules_without_using_up_an_attempt);
async fn retry_later_reschedules_without_using_up_an_attempt(t: &TestDb) {
    let seen: Arc<Mutex<Vec<(i32, Instant)>>> = Arc::default();
    let mut registry = Registry::new();
    let log = seen.clone();
    registry.register_fn("waiting", options(1), move |ctx| {
        let log = log.clone();
        async move {
            let mut log = log.lock().unwrap();
            log.push((ctx.attempt(), Instant::now()));
            Ok(if log.len() < 3 {
                Outcome::retry_after(Duration::from_millis(300), "node busy")
            } else {
                Outcome::Done
            })
        }
    });
    let id = jobs::enqueue(&t.db, NewJob::new("waiting", json!({}))).await.unwrap();
    let worker = Worker::new(t.db.clone(), registry, fast_worker("w")).spawn();
    let done = wait_for_state(&t.db, id, JobState::Succeeded).await;
    worker.shutdown().await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 1, 1], "no attempt used up");
    for pair in seen.windows(2) {
        assert!(pair[1].1 - pair[0].1 >= Duration::from_millis(300), "ran before its run_after");
    }
    assert_eq!(done.attempts, 1);
    assert_eq!(done.last_error.as_deref(), Some("node busy"));
}

on_both_backends!(a_dead_job_can_be_retried);
async fn a_dead_job_can_be_retried(t: &TestDb) {
    let recorder = Recorder::default();
    let mut registry = Registry::new();
    registry.register_with("flaky", recorder.clone(), options(1));
    let id = jobs::enqueue(&t.db, NewJob::new("flaky", json!({}))).await.unwrap();
    let worker = Worker::new(t.db.clone(), registry, fast_worker("w")).spawn();
    wait_for_state(&t.db, id, JobState::Dead).await;
    assert!(jobs::retry_dead(&t.db, id).await.unwrap());
    wait_for_state(&t.db, id, JobState::Dead).await;
    worker.shutdown().await;
    assert_eq!(recorder.attempts.lock().unwrap().len(), 2, "ran once more after the retry");
    assert!(!jobs::retry_dead(&t.db, jobs::enqueue(&t.db, NewJob::new("x", json!({}))).await.unwrap()).await.unwrap());
}
