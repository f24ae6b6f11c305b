//! Backup and restore through the real binary: a copy made while the desk serves and writes, restored
//! into a new desk that shows everything it had (machine passwords included); a restore never
//! overwrites a desk in use and refuses a backup its secret key cannot open. The same on PostgreSQL
//! with `pg_dump`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use proxdesk::integrations::pve::sim::SimConfig;
use proxdesk::secrets::Secret;
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::console_fixtures::{app_on, ready_machine};
use crate::external::require;
use crate::helpers::spawn_app_with;
use crate::pg::PgDb;
use crate::provision::{TOKEN_ID, TOKEN_SECRET};

/// Runs `proxdesk ARGS` on the desk whose data directory is `data_dir` (and `database_url`, if given).
fn proxdesk(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proxdesk"));
    cmd.args(args).env("PROXDESK_DATA_DIR", data_dir).env("PROXDESK_LOG", "warn").env_remove("PROXDESK_CONFIG");
    match database_url {
        Some(url) => cmd.env("PROXDESK_DATABASE_URL", url),
        None => cmd.env_remove("PROXDESK_DATABASE_URL"),
    };
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn a_backup_made_while_serving_restores_into_a_desk_that_shows_everything() {
    let (app, sim) = app_on(SimConfig::default(), |raw, _| crate::helpers::sqlite_only(raw)).await;
    let (machine, token, _) = ready_machine(&app).await;
    // The password SSH finishing would have sealed.
    let sealed = app.state.settings.secret_key.seal("machine-pass-1");
    entities::machine::Entity::update_many()
        .col_expr(entities::machine::Column::PasswordSealed, Expr::value(sealed))
        .col_expr(entities::machine::Column::LoginUser, Expr::value("alice"))
        .filter(entities::machine::Column::Id.eq(machine))
        .exec(&app.db)
        .await
        .unwrap();

    // Sign-ins keep writing (sessions, audit) while the copy is made.
    let (stop, writes) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let writer = tokio::spawn({
        let (db, stop, writes) = (app.db.clone(), stop.clone(), writes.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let pw = Secret::new("alice-password-123".to_owned());
                proxdesk::services::auth::login(&db, "alice", &pw, "t", 1).await.expect("sign-ins go on");
                writes.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("desk.backup");
    let file_arg = file.to_str().unwrap().to_owned();
    let data_dir = app.data_dir.clone();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || proxdesk(&data_dir, None, &["backup", &file_arg])).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(ok, "backup failed: {err}");
    assert!(out.contains("2 account(s), 1 request(s), 1 machine(s)"), "{out}");
    eprintln!("{} sign-ins written while the backup ran", writes.load(Ordering::Relaxed));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the backup is readable by its owner only");
    let file_arg = file.to_str().unwrap();
    let (ok, _, err) = proxdesk(&app.data_dir, None, &["backup", file_arg]);
    assert!(!ok && err.contains("already exists"), "an existing file is never overwritten: {err}");

    // A desk with another secret key refuses it, and is left as empty as it was.
    let stranger = tempfile::tempdir().unwrap();
    let (ok, _, err) = proxdesk(stranger.path(), None, &["restore", file_arg]);
    assert!(!ok && err.contains("secret key"), "{err}");
    assert!(!stranger.path().join("proxdesk.sqlite").exists(), "nothing restored");

    // With the desk's key, into a new data directory.
    let new = tempfile::tempdir().unwrap();
    std::fs::copy(app.data_dir.join("secret.key"), new.path().join("secret.key")).unwrap();
    let (ok, out, err) = proxdesk(new.path(), None, &["restore", file_arg]);
    assert!(ok, "restore failed: {err}");
    assert!(out.contains("2 account(s), 1 request(s), 1 machine(s)"), "{out}");
    let (ok, _, err) = proxdesk(new.path(), None, &["restore", file_arg]);
    assert!(!ok && err.contains("already holds 2 account(s)"), "a desk in use is never overwritten: {err}");

    // The restored desk serves what the old one had: alice's token, her request, her machine's password.
    let new_dir = new.path().to_str().unwrap().to_owned();
    let restored = spawn_app_with(|raw| {
        raw.set("data_dir", new_dir);
        crate::helpers::sqlite_only(raw);
        raw.set("pve_url", sim.url().to_owned());
        raw.set("pve_token", format!("{TOKEN_ID}={TOKEN_SECRET}"));
    })
    .await;
    let r = restored.get(&token, &format!("/api/v1/machines/{machine}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let detail: Value = r.json().await.unwrap();
    assert_eq!(detail["password"], "machine-pass-1", "{detail}");
    let requests: Value = restored.get(&token, "/api/v1/requests").await.json().await.unwrap();
    assert_eq!(requests["items"].as_array().unwrap().len(), 1, "{requests}");
    let b = restored.browser();
    assert_eq!(b.login("alice", "alice-password-123").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn on_postgresql_a_pg_dump_restores_into_an_empty_database_only() {
    let (Some(from_db), Some(to_db)) = (PgDb::fresh("backup").await, PgDb::fresh("backup").await) else { return };
    let Some(pg_dump) = require("pg_dump", &["/usr/bin/pg_dump"]) else { return };
    let (from, to) = (from_db.url.clone(), to_db.url.clone());
    let scratch = tempfile::tempdir().unwrap();
    let dump = scratch.path().join("desk.dump");
    {
        let app = spawn_app_with(|raw| raw.set("database_url", from.clone())).await;
        let (alice, _) = app.user("alice", proxdesk::domain::roles::Role::User).await;
        let token = app.token(&alice).await;
        let tpl = app.template("Debian").await;
        let id = app.submit_ok(&token, tpl, "kept-1").await;

        let (ok, _, err) = proxdesk(&app.data_dir, Some(&from), &["backup", "unused.file"]);
        assert!(!ok && err.contains("pg_dump"), "backup points at pg_dump on PostgreSQL: {err}");
        let out = Command::new(&pg_dump).args(["--format=custom", "--file"]).arg(&dump).arg(&from).output().unwrap();
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));

        let dump_arg = dump.to_str().unwrap();
        let (ok, out, err) = proxdesk(&app.data_dir, Some(&to), &["restore", dump_arg]);
        assert!(ok, "restore failed: {err}");
        assert!(out.contains("1 account(s), 1 request(s)"), "{out}");
        let (ok, _, err) = proxdesk(&app.data_dir, Some(&from), &["restore", dump_arg]);
        assert!(!ok && err.contains("already holds 1 account(s)"), "{err}");

        let restored = spawn_app_with(|raw| raw.set("database_url", to.clone())).await;
        let r: Value = restored.get(&token, &format!("/api/v1/requests/{id}")).await.json().await.unwrap();
        assert_eq!(r["hostname"], "kept-1", "{r}");
        restored.db.clone().close().await.ok();
        app.db.clone().close().await.ok();
    }
}
