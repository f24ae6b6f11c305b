//! QEMU guest agents the Guacamole sync found silent. PVE waits 3 s for an agent that does not answer,
//! so the sync remembers each one (in the database: any replica may run the next sync, also after a
//! restart) and asks it again only when a re-check is due.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use entities::silent_guest_agent::{self, Column, Entity};

use super::ServiceError;

/// A guest, as PVE names it: VMID and node.
pub type GuestKey = (u32, String);

/// What is known of one silent agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilentAgent {
    /// When it was first found silent.
    pub since: DateTime<Utc>,
    /// When it was last asked.
    pub checked_at: DateTime<Utc>,
}

/// What one sync learned about an agent it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentChange {
    /// PVE answered `QEMU guest agent is not running` at `at`.
    Silent { guest: GuestKey, at: DateTime<Utc> },
    /// The agent answered: forget it.
    Answered { guest: GuestKey },
}

/// Every agent remembered as silent.
#[tracing::instrument(skip_all)]
pub async fn silent<C: ConnectionTrait>(conn: &C) -> Result<BTreeMap<GuestKey, SilentAgent>, ServiceError> {
    let rows = Entity::find().all(conn).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let vmid = u32::try_from(r.vmid).ok()?;
            Some(((vmid, r.node), SilentAgent { since: r.since, checked_at: r.checked_at }))
        })
        .collect())
}

/// Records what a sync learned, in one transaction: silent agents are remembered (keeping when they
/// were first found silent), answering ones forgotten, and so are guests PVE no longer lists (`listed`).
#[tracing::instrument(skip_all, fields(changes = changes.len()))]
pub async fn record(
    db: &sea_orm::DatabaseConnection,
    changes: &[AgentChange],
    listed: &BTreeSet<GuestKey>,
) -> Result<(), ServiceError> {
    let txn = crate::db::begin_write(db).await?;
    for change in changes {
        match change {
            AgentChange::Silent { guest: (vmid, node), at } => {
                let row = silent_guest_agent::ActiveModel {
                    vmid: Set(i64::from(*vmid)),
                    node: Set(node.clone()),
                    since: Set(*at),
                    checked_at: Set(*at),
                };
                Entity::insert(row)
                    .on_conflict(
                        OnConflict::columns([Column::Vmid, Column::Node]).update_column(Column::CheckedAt).to_owned(),
                    )
                    .exec(&txn)
                    .await?;
            }
            AgentChange::Answered { guest } => forget(&txn, guest).await?,
        }
    }
    for guest in silent(&txn).await?.into_keys().filter(|g| !listed.contains(g)) {
        forget(&txn, &guest).await?;
    }
    txn.commit().await?;
    Ok(())
}

async fn forget<C: ConnectionTrait>(conn: &C, (vmid, node): &GuestKey) -> Result<(), ServiceError> {
    Entity::delete_many()
        .filter(Column::Vmid.eq(i64::from(*vmid)))
        .filter(Column::Node.eq(node.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}
