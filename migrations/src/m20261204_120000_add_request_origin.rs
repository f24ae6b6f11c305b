//! Adopted machines: a request no longer needs a catalog entry (`template_id` becomes nullable), and
//! every request says where it came from (`origin`: `requested` through the form or API, or `adopted` by
//! an admin from a guest the cluster already had).
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Requests {
    Table,
    TemplateId,
    Origin,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        match m.get_database_backend() {
            DbBackend::Sqlite => sqlite_drop_not_null(m).await?,
            _ => {
                m.alter_table(
                    Table::alter()
                        .table(Requests::Table)
                        .modify_column(ColumnDef::new(Requests::TemplateId).big_integer().null())
                        .to_owned(),
                )
                .await?
            }
        }
        m.alter_table(
            Table::alter().table(Requests::Table).add_column(string(Requests::Origin).default("requested")).to_owned(),
        )
        .await
    }
}

/// SQLite cannot drop a NOT NULL: the table is rebuilt from its own definition with only that changed,
/// inside this migration's transaction. `PRAGMA foreign_keys` cannot change inside a transaction, so the
/// child tables' references (machines, address leases…) are deferred to the commit instead. The order
/// matters: SQLite counts the children orphaned by the `DROP` and only un-counts them when rows are
/// inserted into a table *named* `requests` (a table renamed into place later does not), so the copy
/// goes aside, the table is recreated under its own name and the rows come back into it. The
/// AUTOINCREMENT high-water mark is kept: request ids name guests (their marker) and are never reused.
async fn sqlite_drop_not_null(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = m.get_connection();
    let one = |sql: &str| Statement::from_string(DbBackend::Sqlite, sql.to_owned());
    let table_sql: String = db
        .query_one_raw(one("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'requests'"))
        .await?
        .ok_or_else(|| DbErr::Migration("no requests table".into()))?
        .try_get("", "sql")?;
    // sea-query writes a big integer as `integer` on SQLite (the same 64-bit storage class).
    let Some(ty) =
        ["integer", "bigint"].into_iter().find(|ty| table_sql.contains(&format!("\"template_id\" {ty} NOT NULL")))
    else {
        return Err(DbErr::Migration(format!("requests.template_id is not as expected: {table_sql}")));
    };
    let rebuilt =
        table_sql.replacen(&format!("\"template_id\" {ty} NOT NULL"), &format!("\"template_id\" {ty} NULL"), 1);
    let indexes: Vec<String> = db
        .query_all_raw(one(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests' AND sql IS NOT NULL",
        ))
        .await?
        .into_iter()
        .map(|row| row.try_get::<String>("", "sql"))
        .collect::<Result<_, _>>()?;
    let seq: Option<i64> =
        match db.query_one_raw(one("SELECT seq FROM sqlite_sequence WHERE name = 'requests'")).await? {
            Some(row) => Some(row.try_get("", "seq")?),
            None => None,
        };
    db.execute_unprepared("PRAGMA defer_foreign_keys = ON").await?;
    db.execute_unprepared("CREATE TEMP TABLE \"requests_before\" AS SELECT * FROM \"requests\"").await?;
    db.execute_unprepared("DROP TABLE \"requests\"").await?;
    db.execute_unprepared(&rebuilt).await?;
    db.execute_unprepared("INSERT INTO \"requests\" SELECT * FROM \"requests_before\"").await?;
    db.execute_unprepared("DROP TABLE \"requests_before\"").await?;
    for index in indexes {
        db.execute_unprepared(&index).await?;
    }
    if let Some(seq) = seq {
        db.execute_unprepared(&format!(
            "UPDATE sqlite_sequence SET seq = MAX(seq, {seq}) WHERE name = 'requests'; \
             INSERT INTO sqlite_sequence (name, seq) SELECT 'requests', {seq} \
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'requests')"
        ))
        .await?;
    }
    Ok(())
}
