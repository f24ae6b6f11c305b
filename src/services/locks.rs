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

impl Held {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Who holds it (random per acquisition).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The same hold again, for renewing it from another task.
    pub(crate) fn from_parts(name: String, owner: String) -> Held {
        Held { name, owner }
    }
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

/// Takes one of the `slots` slots of `name` (locks `{name}#0` … `{name}#{slots-1}`, tried from a random
/// one on) for `ttl`; `None` when every slot is held.
pub async fn try_acquire_slot(
    db: &DatabaseConnection,
    name: &str,
    slots: usize,
    ttl: Duration,
) -> Result<Option<Held>, DbErr> {
    let slots = slots.max(1);
    let first = rand::rng().random_range(0..slots);
    for i in 0..slots {
        if let Some(held) = try_acquire(db, &format!("{name}#{}", (first + i) % slots), ttl).await? {
            return Ok(Some(held));
        }
    }
    Ok(None)
}

/// Extends `held` to `ttl` from now; `false` when it was lost (it expired and someone took it).
pub async fn renew(db: &DatabaseConnection, held: &Held, ttl: Duration) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    let until = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60));
    let res = named_lock::Entity::update_many()
        .col_expr(named_lock::Column::ExpiresAt, Expr::value(until))
        .filter(named_lock::Column::Name.eq(held.name.as_str()))
        .filter(named_lock::Column::Owner.eq(held.owner.as_str()))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
