//! Claiming: several workers and processes on one database, waking, per-kind limits.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::{JobFilter, JobState, KindOptions, NewJob, Outcome, Registry, Worker, WorkerConfig};
use serde_json::json;

use crate::common::{TestDb, fast_worker, wait_for, wait_for_state};

on_both_backends!(workers_in_two_processes_never_run_a_job_twice);
async fn workers_in_two_processes_never_run_a_job_twice(t: &TestDb) {
    const JOBS: usize = 200;
    for i in 0..JOBS {
        jobs::enqueue(&t.db, NewJob::new("count", json!({ "n": i }))).await.unwrap();
    }
    let runs: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let registry = |runs: Arc<Mutex<HashMap<i64, usize>>>| {
        let mut registry = Registry::new();
        registry.register_fn("count", KindOptions::default(), move |ctx| {
            let runs = runs.clone();
            async move {
                *runs.lock().unwrap().entry(ctx.id()).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
                Ok(Outcome::Done)
            }
        });
        registry
    };
    // Two workers sharing a pool (one process) and a third on its own pool (another process).
    let one = Worker::new(t.db.clone(), registry(runs.clone()), fast_worker("one")).spawn();
    let two = Worker::new(t.db.clone(), registry(runs.clone()), fast_worker("two")).spawn();
    let other = t.other_process().await;
    let three = Worker::new(other, registry(runs.clone()), fast_worker("three")).spawn();

    let done = JobFilter { states: vec![JobState::Succeeded], limit: Some(1000), ..Default::default() };
    wait_for("all jobs to succeed", Duration::from_secs(60), || async {
        (jobs::list(&t.db, &done).await.unwrap().len() == JOBS).then_some(())
    })
    .await;
    one.shutdown().await;
    two.shutdown().await;
    three.shutdown().await;

    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), JOBS, "every job ran");
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "jobs run more than once: {twice:?}");
    for job in jobs::list(&t.db, &done).await.unwrap() {
        assert_eq!(job.attempts, 1, "job {} took one attempt", job.id);
        assert!(job.lease_owner.is_none());
    }
}

on_both_backends!(enqueue_wakes_an_idle_worker_before_its_next_poll);
async fn enqueue_wakes_an_idle_worker_before_its_next_poll(t: &TestDb) {
    let mut registry = Registry::new();
    registry.register_fn("ping", KindOptions::default(), |_ctx| async { Ok(Outcome::Done) });
    let config = WorkerConfig { poll_interval: Duration::from_secs(600), ..fast_worker("idle") };
    let worker = Worker::new(t.db.clone(), registry, config).spawn();
    // Let the worker finish its first (empty) look and go to sleep.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = jobs::enqueue(&t.db, NewJob::new("ping", json!({}))).await.unwrap();
    wait_for_state(&t.db, id, JobState::Succeeded).await;
    worker.shutdown().await;
}

on_both_backends!(a_kind_never_runs_more_jobs_at_once_than_its_concurrency);
async fn a_kind_never_runs_more_jobs_at_once_than_its_concurrency(t: &TestDb) {
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(jobs::enqueue(&t.db, NewJob::new("clone", json!({}))).await.unwrap());
    }
    let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut registry = Registry::new();
    let options = KindOptions { concurrency: Some(2), ..Default::default() };
    let (n, m) = (now.clone(), max.clone());
    registry.register_fn("clone", options, move |_ctx| {
        let (now, max) = (n.clone(), m.clone());
        async move {
            let running = now.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(running, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Ok(Outcome::Done)
        }
    });
    let config = WorkerConfig { concurrency: 6, ..fast_worker("limited") };
    let worker = Worker::new(t.db.clone(), registry, config).spawn();
    for id in ids {
        wait_for_state(&t.db, id, JobState::Succeeded).await;
    }
    worker.shutdown().await;
    let max = max.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "at most two at once, saw {max}");
}
