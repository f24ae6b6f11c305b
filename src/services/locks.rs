//! Named locks shared by every proxdesk process on one database: short critical sections across
//! processes (e.g. picking a VMID and sending a clone). A lock expires after its time to live, so a
//! crashed holder blocks others for at most that long.

use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use entities::named_lock;

/// A held lock; give it back with [`release`].
#[derive(Debug)]
pub struct Held {
    name: String,
    owner: String,
}

/// Takes `name` for `ttl` unless someone holds it; `None` when it is taken.
pub async fn try_acquire(db: &DatabaseConnection, name: &str, ttl: Duration) -> Result<Option<Held>, DbErr> {
    let now = Utc::now();
    let owner = format!("{:016x}", rand::rng().random::<u64>());
    let txn = crate::db::begin_write(db).await?;
    named_lock::Entity::delete_many()
        .filter(named_lock::Column::Name.eq(name))
        .filter(named_lock::Column::ExpiresAt.lt(now))
        .exec(&txn)
        .await?;
    let row = named_lock::ActiveModel {
        name: Set(name.to_owned()),
        owner: Set(owner.clone()),
        expires_at: Set(now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60))),
    };
    let inserted = named_lock::Entity::insert(row)
        .on_conflict(OnConflict::column(named_lock::Column::Name).do_nothing().to_owned())
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok((inserted == 1).then(|| Held { name: name.to_owned(), owner }))
}

/// Gives `held` back (a no-op if it expired and someone else took it).
pub async fn release(db: &DatabaseConnection, held: Held) -> Result<(), DbErr> {
    named_lock::Entity::delete_many()
        .filter(named_lock::Column::Name.eq(held.name))
        .filter(named_lock::Column::Owner.eq(held.owner))
        .exec(db)
        .await?;
    Ok(())
}
