//! The migration that lets a request have no catalog entry and records its origin, on a database
//! that already holds requests with machines and address leases pointing at them: SQLite rebuilds the
//! table (rows, indexes and the children's foreign keys intact), PostgreSQL drops the NOT NULL.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

const SEED: &[&str] = &[
    "INSERT INTO users (id, username, password_hash, role, disabled, created_at) VALUES (1, 'alice', 'x', 'user', false, '2026-12-01T00:00:00Z')",
    "INSERT INTO templates (id, name, description, node, vmid, default_cores, max_cores, default_memory_mib, max_memory_mib, default_disk_gib, max_disk_gib, created_at) VALUES (1, 'debian', '', 'pve1', 9000, 1, 2, 512, 1024, 8, 16, '2026-12-01T00:00:00Z')",
    "INSERT INTO requests (id, user_id, template_id, hostname, cores, memory_mib, disk_gib, purpose, status, created_at, updated_at) VALUES (7, 1, 1, 'lab', 1, 512, 8, 'p', 'ready', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z')",
    "INSERT INTO requests (id, user_id, template_id, hostname, cores, memory_mib, disk_gib, purpose, status, created_at, updated_at) VALUES (9, 1, 1, 'gone', 1, 512, 8, 'p', 'cancelled', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z')",
    "DELETE FROM requests WHERE id = 9",
    "INSERT INTO machines (id, request_id, user_id, node, vmid, hostname, created_at) VALUES (3, 7, 1, 'pve1', 101, 'lab', '2026-12-01T00:00:00Z')",
    "INSERT INTO address_leases (address, request_id, created_at) VALUES ('192.0.2.50', 7, '2026-12-01T00:00:00Z')",
];

async fn one_text(db: &DatabaseConnection, sql: &str) -> String {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

/// Migrates `db` to just before the change, seeds it, then applies the change and checks the result.
async fn migrates_with_rows(db: &DatabaseConnection) {
    let all = Migrator::migrations().len() as u32;
    let at = Migrator::migrations().iter().position(|m| m.name() == "m20261204_120000_add_request_origin").unwrap();
    Migrator::up(db, Some(at as u32)).await.unwrap();
    for sql in SEED {
        db.execute_unprepared(sql).await.unwrap();
    }
    Migrator::up(db, Some(all - at as u32)).await.unwrap();
    let kept =
        one_text(db, "SELECT hostname || ':' || CAST(template_id AS TEXT) || ':' || origin FROM requests WHERE id = 7")
            .await;
    assert_eq!(kept, "lab:1:requested", "the row, its entry and today's origin");
    db.execute_unprepared(
        "INSERT INTO requests (user_id, template_id, hostname, cores, memory_mib, disk_gib, purpose, status, origin, created_at, updated_at) VALUES (1, NULL, 'adopted', 1, 512, 8, '', 'ready', 'adopted', '2026-12-04T00:00:00Z', '2026-12-04T00:00:00Z')",
    )
    .await
    .expect("a request without an entry");
    let id = one_text(db, "SELECT CAST(MAX(id) AS TEXT) FROM requests").await;
    // (The seed's explicit ids do not move PostgreSQL's sequence; SQLite's AUTOINCREMENT is the rebuild's.)
    if db.get_database_backend() == DbBackend::Sqlite {
        assert_eq!(id, "10", "ids go on after the highest ever given, deleted or not");
    }
    // The children still point at requests, and their references are still enforced.
    assert_eq!(one_text(db, "SELECT hostname FROM machines WHERE request_id = 7").await, "lab");
    let orphan = "INSERT INTO machines (request_id, user_id, node, hostname, created_at) VALUES (999, 1, 'pve1', 'x', '2026-12-04T00:00:00Z')";
    assert!(db.execute_unprepared(orphan).await.is_err(), "foreign keys still checked");
    let bad_entry = "UPDATE requests SET template_id = 999 WHERE template_id IS NULL";
    assert!(db.execute_unprepared(bad_entry).await.is_err(), "the entry's foreign key is kept");
}

#[tokio::test]
async fn sqlite_rebuilds_requests_keeping_rows_indexes_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let db = proxdesk::db::connect(&url, 4).await.unwrap();
    migrates_with_rows(&db).await;
    let indexes = one_text(
        &db,
        "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests' AND sql IS NOT NULL ORDER BY name)",
    )
    .await;
    assert_eq!(indexes, "idx_requests_status_id,idx_requests_user_id");
    assert_eq!(db.get_database_backend(), DbBackend::Sqlite);
}

#[tokio::test]
async fn postgresql_drops_the_not_null() {
    use sea_orm::Database;
    let admin = match Database::connect("postgres://postgres@127.0.0.1:5432/postgres").await {
        Ok(a) => a,
        Err(e) if std::env::var("PROXDESK_REQUIRE_EXTERNAL").as_deref() == Ok("1") => panic!("PostgreSQL: {e}"),
        Err(e) => return eprintln!("skipping: PostgreSQL unreachable: {e}"),
    };
    let name = format!("adopt_schema_{:016x}", rand::random::<u64>());
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    let db = proxdesk::db::connect(&format!("postgres://postgres@127.0.0.1:5432/{name}"), 2).await.unwrap();
    migrates_with_rows(&db).await;
    db.close().await.ok();
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
}
