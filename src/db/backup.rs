//! Backing a desk up and restoring it. SQLite: `VACUUM INTO`, which writes a consistent copy from one
//! read transaction while the desk keeps serving (WAL readers never block the writer), then checks the
//! copy. PostgreSQL: `pg_dump` makes the file (see the README); `restore` hands it to `pg_restore`.
//! A restore never overwrites a desk in use, and refuses a backup whose sealed secrets the configured
//! secret key cannot open, or one made by a newer proxdesk.

use std::path::{Path, PathBuf};
use std::process::Command;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    Statement,
};

use crate::secrets::SecretKey;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Db(#[from] DbErr),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0} already exists; choose a new file")]
    Exists(String),
    #[error("{0} is not a proxdesk backup: {1}")]
    NotABackup(String, String),
    #[error("the backup was made by a newer proxdesk (migration {0} is unknown to this one)")]
    Newer(String),
    #[error("the database already holds {0}; restore only fills an empty database")]
    NotEmpty(Contents),
    #[error(
        "the configured secret key cannot open the machine passwords in the backup: use the secret key of the desk \
         it was made on (its data_dir's secret.key, or PROXDESK_SECRET_KEY)"
    )]
    WrongKey,
    #[error("on PostgreSQL back up with pg_dump (see the README), e.g. pg_dump --format=custom --file=FILE URL")]
    UsePgDump,
    #[error("{0}")]
    Unsupported(String),
    #[error("pg_restore failed: {0}")]
    PgRestore(String),
}

/// What a desk's database holds, in the terms people count it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contents {
    pub accounts: u64,
    pub requests: u64,
    pub machines: u64,
}

impl std::fmt::Display for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} account(s), {} request(s), {} machine(s)", self.accounts, self.requests, self.machines)
    }
}

impl Contents {
    pub async fn of(db: &DatabaseConnection) -> Result<Self, DbErr> {
        Ok(Contents {
            accounts: entities::user::Entity::find().count(db).await?,
            requests: entities::request::Entity::find().count(db).await?,
            machines: entities::machine::Entity::find().count(db).await?,
        })
    }

    fn is_empty(&self) -> bool {
        *self == Contents { accounts: 0, requests: 0, machines: 0 }
    }
}

/// The file of a `sqlite:` URL, or `None` for PostgreSQL; an in-memory database cannot be backed up.
fn sqlite_file(url: &str) -> Result<Option<PathBuf>, BackupError> {
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return Ok(None);
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(BackupError::Unsupported("an in-memory database has nothing to back up or restore into".into()));
    }
    Ok(Some(PathBuf::from(path)))
}

fn read_only_url(file: &Path) -> String {
    format!("sqlite://{}?mode=ro", file.display())
}

/// Writes a consistent copy of the (SQLite) database at `url` into `target`, checks it, and tells what it holds.
pub async fn backup(url: &str, target: &Path) -> Result<Contents, BackupError> {
    if sqlite_file(url)?.is_none() {
        return Err(BackupError::UsePgDump);
    }
    // The copy holds password hashes and sealed secrets: made empty and private before SQLite fills it
    // (VACUUM INTO writes into an empty file).
    let mut private = std::fs::OpenOptions::new();
    private.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut private, 0o600);
    private.open(target).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::Exists(target.display().to_string()),
        _ => BackupError::Io(e),
    })?;
    let db = super::connect(url, 1).await?;
    let into = target.to_string_lossy().into_owned();
    db.execute_raw(Statement::from_sql_and_values(DatabaseBackend::Sqlite, "VACUUM INTO ?", [into.into()])).await?;
    db.close().await?;
    let copy = open_backup(target).await?;
    let contents = Contents::of(&copy).await?;
    copy.close().await?;
    Ok(contents)
}

/// Fills the empty database at `url` from `file` (a `backup` file on SQLite, a `pg_dump` archive on
/// PostgreSQL), then applies the migrations this proxdesk has beyond the backup's.
pub async fn restore(url: &str, file: &Path, key: &SecretKey) -> Result<Contents, BackupError> {
    if !file.is_file() {
        return Err(BackupError::NotABackup(file.display().to_string(), "no such file".into()));
    }
    match sqlite_file(url)? {
        Some(target) => restore_sqlite(url, &target, file, key).await,
        None => restore_postgres(url, file, key).await,
    }
}

async fn restore_sqlite(url: &str, target: &Path, file: &Path, key: &SecretKey) -> Result<Contents, BackupError> {
    let backup = open_backup(file).await?;
    check_migrations(&backup).await?;
    check_key(&backup, key).await?;
    backup.close().await?;
    if target.exists() {
        let current = super::connect(url, 1).await?;
        let held = held(&current).await?;
        current.close().await?;
        if !held.is_empty() {
            return Err(BackupError::NotEmpty(held));
        }
    }
    // Copied beside the target and renamed over it: a crash leaves the old file or the whole new one.
    let partial = target.with_extension("restoring");
    std::fs::copy(file, &partial)?;
    for stale in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", target.display()));
    }
    std::fs::rename(&partial, target)?;
    let db = super::connect(url, 1).await?;
    super::migrate(&db).await?;
    let contents = Contents::of(&db).await?;
    db.close().await?;
    Ok(contents)
}

async fn restore_postgres(url: &str, file: &Path, key: &SecretKey) -> Result<Contents, BackupError> {
    let db = super::connect(url, 1).await?;
    let tables = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema()",
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    if tables > 0 {
        let held = held(&db).await?;
        if !held.is_empty() {
            return Err(BackupError::NotEmpty(held));
        }
        return Err(BackupError::Unsupported(format!(
            "the database already has {tables} table(s); restore into a new, empty database (CREATE DATABASE)"
        )));
    }
    let out = Command::new("pg_restore")
        .args(["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--dbname", url])
        .arg(file)
        .output()
        .map_err(|e| BackupError::PgRestore(format!("cannot run pg_restore: {e}")))?;
    if !out.status.success() {
        return Err(BackupError::PgRestore(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    check_migrations(&db).await?;
    super::migrate(&db).await?;
    let contents = Contents::of(&db).await?;
    // pg_restore cannot be asked before it writes; the restored desk is whole, only its key is wrong.
    check_key(&db, key).await?;
    db.close().await?;
    Ok(contents)
}

/// What a database holds, or nothing when it has no proxdesk tables yet.
async fn held(db: &DatabaseConnection) -> Result<Contents, BackupError> {
    if !has_table(db, "seaql_migrations").await? || !has_table(db, "users").await? {
        return Ok(Contents { accounts: 0, requests: 0, machines: 0 });
    }
    Ok(Contents::of(db).await?)
}

async fn has_table(db: &DatabaseConnection, name: &str) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Sqlite => "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = $1",
        _ => {
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let row = db.query_one_raw(Statement::from_sql_and_values(backend, sql, [name.into()])).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0) > 0)
}

/// A backup file opened read-only, after SQLite's own integrity check.
async fn open_backup(file: &Path) -> Result<DatabaseConnection, BackupError> {
    let not_a_backup = |why: String| BackupError::NotABackup(file.display().to_string(), why);
    // Not `super::connect`: its WAL pragma would write to a file opened read-only.
    let db = sea_orm::Database::connect(read_only_url(file)).await.map_err(|e| not_a_backup(e.to_string()))?;
    let check = db
        .query_one_raw(Statement::from_string(DatabaseBackend::Sqlite, "PRAGMA integrity_check"))
        .await
        .map_err(|e| not_a_backup(e.to_string()))?
        .map(|r| r.try_get_by_index::<String>(0))
        .transpose()?;
    if check.as_deref() != Some("ok") {
        return Err(not_a_backup(format!("integrity check: {}", check.unwrap_or_default())));
    }
    if !has_table(&db, "seaql_migrations").await? || !has_table(&db, "users").await? {
        return Err(not_a_backup("it has no proxdesk tables".into()));
    }
    Ok(db)
}

/// Every migration the backup has applied must be one this proxdesk knows.
async fn check_migrations(db: &DatabaseConnection) -> Result<(), BackupError> {
    let known: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT version FROM seaql_migrations"))
        .await?;
    for row in rows {
        let version: String = row.try_get("", "version")?;
        if !known.contains(&version) {
            return Err(BackupError::Newer(version));
        }
    }
    Ok(())
}

/// The configured key must open a sealed machine password of the backup, when it has one.
async fn check_key(db: &DatabaseConnection, key: &SecretKey) -> Result<(), BackupError> {
    use entities::machine::{Column, Entity};
    let sealed = Entity::find().filter(Column::PasswordSealed.is_not_null()).one(db).await?;
    match sealed.and_then(|m| m.password_sealed) {
        Some(s) if key.open(&s).is_err() => Err(BackupError::WrongKey),
        _ => Ok(()),
    }
}
