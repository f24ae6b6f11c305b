//! A fresh PostgreSQL database per test on the machine's server (`127.0.0.1:5432`, user `postgres`),
//! dropped when the test ends. Skips where PostgreSQL is unreachable, unless `PROXDESK_REQUIRE_EXTERNAL=1`.

use sea_orm::ConnectionTrait;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct PgDb {
    pub url: String,
    name: String,
}

impl PgDb {
    /// A new, empty database named after `prefix`; `None` (the test skips) when there is no server.
    pub async fn fresh(prefix: &str) -> Option<PgDb> {
        let admin = match sea_orm::Database::connect(ADMIN_URL).await {
            Ok(a) => a,
            Err(e) if std::env::var("PROXDESK_REQUIRE_EXTERNAL").as_deref() == Ok("1") => {
                panic!("PostgreSQL is required (PROXDESK_REQUIRE_EXTERNAL=1): {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED: PostgreSQL unreachable at {ADMIN_URL}: {e}");
                return None;
            }
        };
        let name = format!("{prefix}_{:016x}", rand::random::<u64>());
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        admin.close().await.ok();
        Some(PgDb { url: format!("postgres://postgres@127.0.0.1:5432/{name}"), name })
    }
}

impl Drop for PgDb {
    /// Dropped from a thread of its own: `Drop` cannot wait on the test's runtime.
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(admin) = sea_orm::Database::connect(ADMIN_URL).await {
                    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        })
        .join();
    }
}

/// The suite's switch reaches the apps it starts: with `PROXDESK_TEST_DB=postgres` the server under test
/// talks to PostgreSQL, otherwise to SQLite, and the spawned processes are given the same database.
#[tokio::test]
async fn test_apps_run_on_the_backend_the_suite_was_asked_for() {
    use crate::helpers::{TestBackend, spawn_app, test_backend};
    use sea_orm::DbBackend;
    let app = spawn_app().await;
    let expected = match test_backend() {
        TestBackend::Sqlite => DbBackend::Sqlite,
        TestBackend::Postgres => DbBackend::Postgres,
    };
    assert_eq!(app.db.get_database_backend(), expected);
    let seeded = crate::processes::seed().await;
    assert_eq!(seeded.db.get_database_backend(), expected);
    assert_eq!(seeded.database_url.starts_with("postgres"), expected == DbBackend::Postgres, "{}", seeded.database_url);
}
