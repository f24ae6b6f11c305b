//! Cron ticks enqueue once however many schedulers run.
use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs::{JobFilter, Scheduler};
use serde_json::json;

use crate::common::{TestDb, wait_for};

on_both_backends!(two_schedulers_on_one_database_enqueue_each_tick_once);
async fn two_schedulers_on_one_database_enqueue_each_tick_once(t: &TestDb) {
    let started = Utc::now();
    let mut schedulers = Vec::new();
    for db in [t.db.clone(), t.other_process().await] {
        let scheduler = Scheduler::new(db).await.unwrap();
        scheduler.schedule("* * * * * *", "sync", |tick| json!({ "tick": tick })).await.unwrap();
        scheduler.start().await.unwrap();
        schedulers.push(scheduler);
    }
    let filter = JobFilter { kind: Some("sync".into()), ..Default::default() };
    wait_for("three ticks", Duration::from_secs(15), || async {
        (jobs::list(&t.db, &filter).await.unwrap().len() >= 3).then_some(())
    })
    .await;
    for scheduler in schedulers {
        scheduler.shutdown().await.unwrap();
    }
    let stopped = Utc::now();

    let ticks = jobs::list(&t.db, &filter).await.unwrap();
    let mut seen = HashSet::new();
    for job in &ticks {
        let tick: DateTime<Utc> = serde_json::from_value(job.payload["tick"].clone()).unwrap();
        let key = format!("cron:sync:{}", tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        assert_eq!(job.idempotency_key.as_deref(), Some(key.as_str()), "the key names the tick");
        assert_eq!(tick.timestamp_subsec_nanos(), 0, "ticks fall on whole seconds");
        assert!(seen.insert(tick), "tick {tick} enqueued twice");
    }
    let seconds = (stopped - started).num_seconds() + 2;
    assert!(ticks.len() as i64 <= seconds, "{} jobs for {seconds} s of one tick a second", ticks.len());
}
