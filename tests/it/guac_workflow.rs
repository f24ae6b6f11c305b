//! The `guac_sync` job: runs through the durable queue and records each run, failures included.

use std::sync::Arc;
use std::time::Duration;

use jobs::{Registry, Worker, WorkerConfig};
use proxdesk::integrations::guacamole::sync::{DesiredSettings, VmInfo, VmKind};
use proxdesk::integrations::guacamole::{Client, GuacSettings};
use proxdesk::services::guac_sync_runs;
use proxdesk::workflows::guac_sync::{self, FixedSource, GuacSync};

use crate::guac_client::sim;

async fn db(dir: &tempfile::TempDir) -> sea_orm::DatabaseConnection {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.sqlite").display());
    let db = proxdesk::db::connect(&url, 2).await.unwrap();
    proxdesk::db::migrate(&db).await.unwrap();
    db
}

fn source() -> Arc<FixedSource> {
    Arc::new(FixedSource {
        machines: vec![],
        vms: vec![VmInfo {
            vmid: 101,
            node: "pve1".into(),
            name: "web01".into(),
            kind: VmKind::Lxc,
            notes: Some("user:a pass:p protos:ssh;\nuser:b protos:ssh;".into()),
            tags: None,
            ipv4: Some("10.0.0.5".into()),
            silent_agent: None,
            mac: None,
            unreadable: None,
        }],
    })
}

#[tokio::test]
async fn the_job_syncs_through_the_queue_and_records_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(&dir).await;
    let sim = sim().await;
    let sync = Arc::new(GuacSync {
        client: Arc::new(Client::new(&GuacSettings::new(&sim.url(), "guacadmin", "guacadmin")).unwrap()),
        source: source(),
        settings: DesiredSettings::default(),
    });
    let mut registry = Registry::new();
    guac_sync::register(&mut registry, sync);
    let worker = Worker::new(db.clone(), registry, WorkerConfig::default()).spawn();
    guac_sync::enqueue_now(&db).await.unwrap();
    let mut last = None;
    for _ in 0..100 {
        last = guac_sync_runs::last(&db).await.unwrap();
        if last.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown().await;
    let run = last.expect("a run was recorded");
    assert_eq!((run.created, run.error_count, run.failure), (1, 1, None));
    assert!(run.diagnostics.contains("\"line\":2"), "{}", run.diagnostics);
    assert_eq!(sim.state().connections.len(), 1);
}

#[tokio::test]
async fn a_run_that_cannot_log_in_is_recorded_as_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(&dir).await;
    let sim = sim().await;
    let sync = GuacSync {
        client: Arc::new(Client::new(&GuacSettings::new(&sim.url(), "guacadmin", "wrong")).unwrap()),
        source: source(),
        settings: DesiredSettings::default(),
    };
    assert!(sync.run(&db, false).await.is_err());
    let run = guac_sync_runs::last(&db).await.unwrap().unwrap();
    assert!(run.failure.unwrap().contains("Invalid login"));
    assert_eq!(sim.calls().writes, 0);
}

#[tokio::test]
async fn the_admin_page_shows_the_last_runs_counts_and_problems() {
    use proxdesk::domain::roles::Role;
    let app = crate::helpers::spawn_app().await;
    let sim = sim().await;
    let sync = GuacSync {
        client: Arc::new(Client::new(&GuacSettings::new(&sim.url(), "guacadmin", "guacadmin")).unwrap()),
        source: source(),
        settings: DesiredSettings::default(),
    };
    sync.run(&app.db, false).await.unwrap();
    let (_, pw) = app.user("chief", Role::Admin).await;
    let b = app.logged_in("chief", &pw).await;
    let html = b.get("/admin/guacamole").await.text().await.unwrap();
    assert!(html.contains("Guacamole sync"), "{html}");
    assert!(html.contains("entry skipped: it lacks a password"), "{html}");
    assert!(html.contains("notes line 2, column 1"), "line and column of the bad entry");
}
