//! A fresh database per test, fast worker settings and bounded waits.
use std::future::Future;
use std::time::Duration;

use jobs::{Job, JobState, WorkerConfig};
use migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Runs the async test function `$name(db: TestDb)` once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = crate::common::TestDb::sqlite().await;
                super::$name(&db).await;
                db.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = crate::common::TestDb::postgres().await else {
                    return;
                };
                super::$name(&db).await;
                db.cleanup().await;
            }
        }
    };
}

/// One test's database.
pub struct TestDb {
    url: String,
    /// The first pool ("process one").
    pub db: DatabaseConnection,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    /// A migrated SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("jobs.db").display());
        let db = connect(&url).await;
        Migrator::up(&db, None).await.expect("migrations run on SQLite");
        TestDb { url, db, _dir: Some(dir), pg_name: None }
    }

    /// A fresh, migrated PostgreSQL database, or `None` (with the reason printed) when the server is
    /// not reachable and `PROXDESK_REQUIRE_EXTERNAL` is not `1`.
    pub async fn postgres() -> Option<TestDb> {
        let admin = match connect_pg_admin().await {
            Ok(admin) => admin,
            Err(e) if std::env::var("PROXDESK_REQUIRE_EXTERNAL").as_deref() == Ok("1") => {
                panic!("PostgreSQL at {PG_ADMIN_URL} is required but unreachable: {e}")
            }
            Err(e) => {
                eprintln!("skipping the PostgreSQL variant: {PG_ADMIN_URL} unreachable: {e}");
                return None;
            }
        };
        let name = format!("jobs_test_{:016x}", rand::random::<u64>());
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
        admin.close().await.ok();
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let db = connect(&url).await;
        Migrator::up(&db, None).await.expect("migrations run on PostgreSQL");
        Some(TestDb { url, db, _dir: None, pg_name: Some(name) })
    }

    /// Another connection pool on the same database, standing in for another process.
    pub async fn other_process(&self) -> DatabaseConnection {
        connect(&self.url).await
    }

    /// Drops the PostgreSQL database (the SQLite file goes with its directory).
    pub async fn cleanup(self) {
        self.db.close().await.ok();
        if let Some(name) = self.pg_name {
            let admin = connect_pg_admin().await.expect("PostgreSQL still reachable");
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .expect("drop test database");
        }
    }
}

async fn connect_pg_admin() -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut opts = ConnectOptions::new(PG_ADMIN_URL);
    opts.max_connections(1).connect_timeout(Duration::from_secs(3)).sqlx_logging(false);
    Database::connect(opts).await
}

/// Opens a pool of four like the application does (WAL, busy timeout, foreign keys on SQLite).
async fn connect(url: &str) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(4)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    Database::connect(opts).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// Worker settings for tests: short leases and polls.
pub fn fast_worker(id: &str) -> WorkerConfig {
    WorkerConfig {
        worker_id: id.to_owned(),
        concurrency: 4,
        poll_interval: Duration::from_millis(25),
        lease_duration: Duration::from_millis(400),
        heartbeat_interval: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
        on_finish: None,
    }
}

/// Polls `check` until it yields `Some`, failing with `what` after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until job `id` is in `state` and returns it.
pub async fn wait_for_state(db: &DatabaseConnection, id: i64, state: JobState) -> Job {
    wait_for(&format!("job {id} to be {state}"), Duration::from_secs(20), || async {
        jobs::get(db, id).await.expect("read job").filter(|job| job.state == state)
    })
    .await
}

/// Job `id`, which must exist.
pub async fn job(db: &DatabaseConnection, id: i64) -> Job {
    jobs::get(db, id).await.expect("read job").unwrap_or_else(|| panic!("job {id} exists"))
}
