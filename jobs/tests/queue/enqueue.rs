//! Putting jobs on the queue and reading them back.
use jobs::{JobFilter, JobState, NewJob};
use sea_orm::TransactionTrait;
use serde_json::json;

use crate::common::{TestDb, job};

on_both_backends!(enqueueing_twice_with_one_idempotency_key_yields_one_job);
async fn enqueueing_twice_with_one_idempotency_key_yields_one_job(t: &TestDb) {
    let first = jobs::enqueue(&t.db, NewJob::new("mail", json!({"to": "a"})).idempotency_key("mail:1")).await.unwrap();
    let second = jobs::enqueue(&t.db, NewJob::new("mail", json!({"to": "b"})).idempotency_key("mail:1")).await.unwrap();
    assert_eq!(first, second);
    let all = jobs::list(&t.db, &JobFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].payload, json!({"to": "a"}), "the first enqueue wins");
    assert_eq!(all[0].state, JobState::Queued);

    let other = jobs::enqueue(&t.db, NewJob::new("mail", json!({}))).await.unwrap();
    assert_ne!(other, first, "jobs without a key are never merged");
}

on_both_backends!(enqueue_inside_a_rolled_back_transaction_leaves_nothing);
async fn enqueue_inside_a_rolled_back_transaction_leaves_nothing(t: &TestDb) {
    let txn = t.db.begin().await.unwrap();
    jobs::enqueue(&txn, NewJob::new("mail", json!({})).idempotency_key("k")).await.unwrap();
    txn.rollback().await.unwrap();
    assert!(jobs::list(&t.db, &JobFilter::default()).await.unwrap().is_empty());

    let txn = t.db.begin().await.unwrap();
    let id = jobs::enqueue(&txn, NewJob::new("mail", json!({})).idempotency_key("k")).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(job(&t.db, id).await.idempotency_key.as_deref(), Some("k"));
}

on_both_backends!(list_filters_by_kind_and_state);
async fn list_filters_by_kind_and_state(t: &TestDb) {
    let a = jobs::enqueue(&t.db, NewJob::new("a", json!(1))).await.unwrap();
    let b = jobs::enqueue(&t.db, NewJob::new("b", json!(2))).await.unwrap();
    jobs::cancel(&t.db, b).await.unwrap();

    let by_kind = JobFilter { kind: Some("a".into()), ..Default::default() };
    let ids: Vec<i64> = jobs::list(&t.db, &by_kind).await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(ids, [a]);
    let by_state = JobFilter { states: vec![JobState::Cancelled], ..Default::default() };
    let ids: Vec<i64> = jobs::list(&t.db, &by_state).await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(ids, [b]);
    assert!(jobs::get(&t.db, 9999).await.unwrap().is_none());
}
