//! Leases: a crashed worker's job is taken over from its checkpoint; a worker that lost its lease
//! changes nothing.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::{JobError, JobState, KindOptions, NewJob, Outcome, Registry, Worker, WorkerConfig};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::common::{TestDb, fast_worker, job, wait_for, wait_for_state};

/// The attempt number and checkpoint a resumed handler saw.
type Resumed = Arc<Mutex<Option<(i32, Option<Value>)>>>;

on_both_backends!(a_crashed_workers_job_is_reclaimed_and_resumes_from_its_checkpoint);
async fn a_crashed_workers_job_is_reclaimed_and_resumes_from_its_checkpoint(t: &TestDb) {
    let resumed: Resumed = Arc::default();
    let registry = |resumed: Resumed| {
        let mut registry = Registry::new();
        registry.register_fn("provision", KindOptions::default(), move |ctx| {
            let resumed = resumed.clone();
            async move {
                if ctx.attempt() == 1 {
                    ctx.checkpoint(&json!({"step": "cloned"})).await?;
                    // Hang until the worker "crashes".
                    std::future::pending::<()>().await;
                }
                *resumed.lock().unwrap() = Some((ctx.attempt(), ctx.checkpoint_value()));
                Ok(Outcome::Done)
            }
        });
        registry
    };
    let id = jobs::enqueue(&t.db, NewJob::new("provision", json!({}))).await.unwrap();
    let crashing = Worker::new(t.db.clone(), registry(resumed.clone()), fast_worker("crashing")).spawn();
    wait_for("the first attempt's checkpoint", Duration::from_secs(10), || async {
        job(&t.db, id).await.checkpoint.is_some().then_some(())
    })
    .await;
    crashing.abort().await;
    assert_eq!(job(&t.db, id).await.state, JobState::Running, "the crash leaves the lease behind");

    let other = t.other_process().await;
    let rescuer = Worker::new(other, registry(resumed.clone()), fast_worker("rescuer")).spawn();
    let done = wait_for_state(&t.db, id, JobState::Succeeded).await;
    rescuer.shutdown().await;
    assert_eq!(*resumed.lock().unwrap(), Some((2, Some(json!({"step": "cloned"})))));
    assert_eq!(done.attempts, 2);
}

on_both_backends!(a_worker_whose_lease_was_taken_can_neither_checkpoint_nor_complete);
async fn a_worker_whose_lease_was_taken_can_neither_checkpoint_nor_complete(t: &TestDb) {
    let taken_over = Arc::new(Notify::new());
    let late_checkpoint: Arc<Mutex<Option<Result<(), String>>>> = Arc::default();
    let mut registry = Registry::new();
    let (notify, result) = (taken_over.clone(), late_checkpoint.clone());
    registry.register_fn("provision", KindOptions::default(), move |ctx| {
        let (notify, result) = (notify.clone(), result.clone());
        async move {
            if ctx.attempt() == 1 {
                // The slow worker: its lease runs out while it waits.
                let _ = tokio::time::timeout(Duration::from_secs(20), notify.notified()).await;
                let written = ctx.checkpoint(&json!({"by": "slow"})).await;
                *result.lock().unwrap() = Some(written.map_err(|e| e.to_string()));
                return Ok(Outcome::failed("slow worker finished late"));
            }
            ctx.checkpoint(&json!({"by": "fast"})).await?;
            notify.notify_one();
            Ok(Outcome::Done)
        }
    });
    let id = jobs::enqueue(&t.db, NewJob::new("provision", json!({}))).await.unwrap();
    // No heartbeat within its lease: the lease expires while the handler still runs.
    let slow_config = WorkerConfig {
        lease_duration: Duration::from_millis(300),
        heartbeat_interval: Duration::from_secs(600),
        ..fast_worker("slow")
    };
    let slow = Worker::new(t.db.clone(), registry.clone(), slow_config).spawn();
    wait_for_state(&t.db, id, JobState::Running).await;
    let fast = Worker::new(t.other_process().await, registry, fast_worker("fast")).spawn();
    let late = wait_for("the slow worker's late checkpoint", Duration::from_secs(20), || async {
        late_checkpoint.lock().unwrap().clone()
    })
    .await;
    slow.shutdown().await;
    fast.shutdown().await;

    assert_eq!(late, Err(JobError::LeaseLost(id).to_string()));
    let job = job(&t.db, id).await;
    assert_eq!(job.state, JobState::Succeeded, "the late outcome is discarded");
    assert_eq!(job.checkpoint, Some(json!({"by": "fast"})));
    assert_eq!(job.last_error, None);
}

on_both_backends!(a_job_whose_worker_crashed_on_its_last_attempt_ends_dead);
async fn a_job_whose_worker_crashed_on_its_last_attempt_ends_dead(t: &TestDb) {
    let mut registry = Registry::new();
    let options = KindOptions { max_attempts: Some(1), ..Default::default() };
    registry.register_fn("hang", options, |_ctx| async {
        std::future::pending::<()>().await;
        Ok(Outcome::Done)
    });
    let id = jobs::enqueue(&t.db, NewJob::new("hang", json!({}))).await.unwrap();
    let crashing = Worker::new(t.db.clone(), registry.clone(), fast_worker("crashing")).spawn();
    wait_for_state(&t.db, id, JobState::Running).await;
    crashing.abort().await;
    let rescuer = Worker::new(t.other_process().await, registry, fast_worker("rescuer")).spawn();
    let dead = wait_for_state(&t.db, id, JobState::Dead).await;
    rescuer.shutdown().await;
    assert_eq!(dead.attempts, 1);
    assert!(dead.last_error.unwrap_or_default().contains("lease expired"));
}

on_both_backends!(a_worker_that_finds_its_lease_taken_aborts_its_handler);
async fn a_worker_that_finds_its_lease_taken_aborts_its_handler(t: &TestDb) {
    use jobs::entity;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    /// Sets its flag when the handler's future is dropped.
    struct Dropped(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    let aborted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut registry = Registry::new();
    let (flag, running) = (aborted.clone(), started.clone());
    registry.register_fn("hang", KindOptions::default(), move |_ctx| {
        let guard = Dropped(flag.clone());
        running.store(true, std::sync::atomic::Ordering::SeqCst);
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(Outcome::Done)
        }
    });
    let id = jobs::enqueue(&t.db, NewJob::new("hang", json!({}))).await.unwrap();
    let worker = Worker::new(t.db.clone(), registry, fast_worker("victim")).spawn();
    // Wait for the handler itself: a lease taken between the claim and its read-back makes the worker
    // drop the claim without running anything, which is right but not what this test is about.
    wait_for("the handler to start", Duration::from_secs(10), || async {
        started.load(std::sync::atomic::Ordering::SeqCst).then_some(())
    })
    .await;
    // Another worker takes the job over (as after an expired lease).
    let far = chrono::Utc::now() + Duration::from_secs(3600);
    entity::Entity::update_many()
        .col_expr(entity::Column::LeaseOwner, Expr::value("thief"))
        .col_expr(entity::Column::LeaseExpiresAt, Expr::value(far))
        .filter(entity::Column::Id.eq(id))
        .exec(&t.db)
        .await
        .unwrap();
    wait_for("the handler to be aborted", Duration::from_secs(10), || async {
        aborted.load(std::sync::atomic::Ordering::SeqCst).then_some(())
    })
    .await;
    worker.shutdown().await;
    let job = job(&t.db, id).await;
    assert_eq!((job.state, job.lease_owner.as_deref()), (JobState::Running, Some("thief")));
}
