//! Each user's opt-outs: the kinds of notification mail they turned off (everything else is sent).

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use entities::notification_opt_out;

use crate::domain::notification::{EventKind, OptOuts};
use crate::services::{Actor, ServiceError};

/// The kinds `actor` turned off.
pub async fn opt_outs(db: &DatabaseConnection, actor: &Actor) -> Result<OptOuts, ServiceError> {
    let rows =
        notification_opt_out::Entity::find().filter(notification_opt_out::Column::UserId.eq(actor.id)).all(db).await?;
    let mut kinds: Vec<EventKind> = rows.iter().filter_map(|r| EventKind::parse(&r.kind)).collect();
    kinds.sort();
    Ok(OptOuts(kinds))
}

/// Replaces `actor`'s opt-outs with `off` (one transaction: a concurrent save wins whole or not at all).
#[tracing::instrument(skip(db), fields(actor = actor.id))]
pub async fn set_opt_outs(db: &DatabaseConnection, actor: &Actor, off: &[EventKind]) -> Result<OptOuts, ServiceError> {
    let mut off = off.to_vec();
    off.sort();
    off.dedup();
    let txn = crate::db::begin_write(db).await?;
    notification_opt_out::Entity::delete_many()
        .filter(notification_opt_out::Column::UserId.eq(actor.id))
        .exec(&txn)
        .await?;
    if !off.is_empty() {
        let now = Utc::now();
        let rows = off.iter().map(|k| notification_opt_out::ActiveModel {
            user_id: Set(actor.id),
            kind: Set(k.as_str().to_owned()),
            created_at: Set(now),
        });
        notification_opt_out::Entity::insert_many(rows).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(OptOuts(off))
}
