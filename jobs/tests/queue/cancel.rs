//! Cancelling queued and running jobs.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use jobs::{CancelOutcome, JobState, KindOptions, NewJob, Outcome, Registry, StopReason, Worker};
use serde_json::json;

use crate::common::{TestDb, fast_worker, wait_for_state};

on_both_backends!(cancelling_a_queued_job_cancels_it_at_once);
async fn cancelling_a_queued_job_cancels_it_at_once(t: &TestDb) {
    let later = Utc::now() + Duration::from_secs(3600);
    let id = jobs::enqueue(&t.db, NewJob::new("mail", json!({})).run_after(later)).await.unwrap();
    assert_eq!(jobs::cancel(&t.db, id).await.unwrap(), CancelOutcome::Cancelled);
    assert_eq!(crate::common::job(&t.db, id).await.state, JobState::Cancelled);
    assert_eq!(jobs::cancel(&t.db, id).await.unwrap(), CancelOutcome::AlreadyFinished(JobState::Cancelled));
    assert!(matches!(jobs::cancel(&t.db, 4242).await, Err(jobs::JobError::NotFound(4242))));
}

on_both_backends!(cancelling_a_running_job_trips_its_stop_signal);
async fn cancelling_a_running_job_trips_its_stop_signal(t: &TestDb) {
    let seen: Arc<Mutex<Option<StopReason>>> = Arc::default();
    let mut registry = Registry::new();
    let log = seen.clone();
    registry.register_fn("provision", KindOptions::default(), move |ctx| {
        let log = log.clone();
        async move {
            let reason = tokio::time::timeout(Duration::from_secs(20), ctx.stopped()).await?;
            *log.lock().unwrap() = Some(reason);
            Ok(Outcome::failed("rolled back"))
        }
    });
    let id = jobs::enqueue(&t.db, NewJob::new("provision", json!({}))).await.unwrap();
    let worker = Worker::new(t.db.clone(), registry, fast_worker("w")).spawn();
    wait_for_state(&t.db, id, JobState::Running).await;
    assert_eq!(jobs::cancel(&t.db, id).await.unwrap(), CancelOutcome::Requested);
    let cancelled = wait_for_state(&t.db, id, JobState::Cancelled).await;
    worker.shutdown().await;
    assert_eq!(*seen.lock().unwrap(), Some(StopReason::Cancelled));
    assert_eq!(cancelled.last_error.as_deref(), Some("cancelled: rolled back"));
}
