//! Graceful shutdown: running handlers are told, may checkpoint, and the attempt is given back.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::{JobState, KindOptions, NewJob, Outcome, Registry, StopReason, Worker};
use serde_json::{Value, json};

use crate::common::{TestDb, fast_worker, job, wait_for_state};

on_both_backends!(graceful_shutdown_lets_a_running_handler_checkpoint);
async fn graceful_shutdown_lets_a_running_handler_checkpoint(t: &TestDb) {
    let resumed_from: Arc<Mutex<Option<Value>>> = Arc::default();
    let mut registry = Registry::new();
    let log = resumed_from.clone();
    registry.register_fn("provision", KindOptions::default(), move |ctx| {
        let log = log.clone();
        async move {
            if let Some(checkpoint) = ctx.checkpoint_value() {
                *log.lock().unwrap() = Some(checkpoint);
                return Ok(Outcome::Done);
            }
            let reason = tokio::time::timeout(Duration::from_secs(20), ctx.stopped()).await?;
            assert_eq!(reason, StopReason::Shutdown);
            ctx.checkpoint(&json!({"step": "configured"})).await?;
            Ok(Outcome::RetryLater { after: None, reason: "shutting down".into() })
        }
    });
    let id = jobs::enqueue(&t.db, NewJob::new("provision", json!({}))).await.unwrap();
    let worker = Worker::new(t.db.clone(), registry.clone(), fast_worker("first")).spawn();
    wait_for_state(&t.db, id, JobState::Running).await;
    worker.shutdown().await;

    let stopped = job(&t.db, id).await;
    assert_eq!(stopped.state, JobState::Queued);
    assert_eq!(stopped.checkpoint, Some(json!({"step": "configured"})));
    assert_eq!(stopped.attempts, 0, "the interrupted attempt is given back");
    assert_eq!(stopped.lease_owner, None);

    let worker = Worker::new(t.db.clone(), registry, fast_worker("second")).spawn();
    wait_for_state(&t.db, id, JobState::Succeeded).await;
    worker.shutdown().await;
    assert_eq!(*resumed_from.lock().unwrap(), Some(json!({"step": "configured"})));
}

on_both_backends!(a_checkpoint_written_in_a_rolled_back_transaction_is_not_kept);
async fn a_checkpoint_written_in_a_rolled_back_transaction_is_not_kept(t: &TestDb) {
    use sea_orm::TransactionTrait;

    let mut registry = Registry::new();
    registry.register_fn("provision", KindOptions::default(), |ctx| async move {
        let txn = ctx.db().begin().await?;
        ctx.checkpoint_in(&txn, &json!({"step": "abandoned"})).await?;
        txn.rollback().await?;
        let txn = ctx.db().begin().await?;
        ctx.checkpoint_in(&txn, &json!({"step": "kept"})).await?;
        txn.commit().await?;
        Ok(Outcome::Done)
    });
    let id = jobs::enqueue(&t.db, NewJob::new("provision", json!({}))).await.unwrap();
    let worker = Worker::new(t.db.clone(), registry, fast_worker("w")).spawn();
    let done = wait_for_state(&t.db, id, JobState::Succeeded).await;
    worker.shutdown().await;
    assert_eq!(done.checkpoint, Some(json!({"step": "kept"})));
}
