//! Static IPv4 addresses handed to requests from their catalog entry's pool (cloud-init VMs). A lease
//! is one row of `address_leases`, whose primary key is the address: when two provisioning jobs pick
//! the same free address at once, the database lets exactly one insert it and the other takes the next.
//! A lease lives until its machine is deleted or its provisioning rolled back.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use serde_json::json;

use entities::address_lease;

use super::{ServiceError, audit};
use crate::domain::guest::Ipv4Pool;

/// Inserts that may lose a race before the allocation gives up (each loss means another request just
/// took an address, so the next try sees one more taken).
const TRIES: usize = 16;

/// The address request `request_id` holds, if any.
pub async fn of_request<C: ConnectionTrait>(conn: &C, request_id: i64) -> Result<Option<Ipv4Addr>, DbErr> {
    let lease = address_lease::Entity::find().filter(address_lease::Column::RequestId.eq(request_id)).one(conn).await?;
    Ok(lease.and_then(|l| l.address.parse().ok()))
}

/// The lowest free address of `pool` for request `request_id`, leased to it; the one it already holds
/// if any (a resumed or retried provisioning keeps its address, even when the entry's pool changed
/// meanwhile: its VM may already be configured with it, and nobody else may get it while it is).
/// `None` when every address of the pool is leased.
#[tracing::instrument(skip(db))]
pub async fn allocate(
    db: &DatabaseConnection,
    request_id: i64,
    pool: Ipv4Pool,
) -> Result<Option<Ipv4Addr>, ServiceError> {
    for _ in 0..TRIES {
        let txn = crate::db::begin_write(db).await?;
        if let Some(held) = of_request(&txn, request_id).await? {
            txn.commit().await?;
            return Ok(Some(held));
        }
        let taken: HashSet<Ipv4Addr> =
            address_lease::Entity::find().all(&txn).await?.into_iter().filter_map(|l| l.address.parse().ok()).collect();
        let Some(free) = pool.iter().find(|a| !taken.contains(a)) else {
            txn.commit().await?;
            return Ok(None);
        };
        let row = address_lease::ActiveModel {
            address: Set(free.to_string()),
            request_id: Set(request_id),
            created_at: Set(Utc::now()),
        };
        let inserted = address_lease::Entity::insert(row)
            .on_conflict(OnConflict::column(address_lease::Column::Address).do_nothing().to_owned())
            .exec_without_returning(&txn)
            .await?;
        if inserted == 1 {
            let details = json!({"ipv4": free.to_string(), "pool": pool.to_string()});
            audit::record(&txn, None, "address.leased", "request", request_id, details).await?;
            txn.commit().await?;
            return Ok(Some(free));
        }
        // Another process took it between our read and our insert.
        txn.rollback().await?;
    }
    Err(ServiceError::Conflict(format!("no address of {pool} could be leased after {TRIES} tries")))
}

/// Gives back the address request `request_id` holds, in the caller's transaction, with its audit
/// entry. Answers the address released, if there was one.
pub async fn release_in<C: ConnectionTrait>(conn: &C, request_id: i64) -> Result<Option<Ipv4Addr>, ServiceError> {
    let Some(held) = of_request(conn, request_id).await? else { return Ok(None) };
    address_lease::Entity::delete_many().filter(address_lease::Column::RequestId.eq(request_id)).exec(conn).await?;
    let details = json!({"ipv4": held.to_string()});
    audit::record(conn, None, "address.released", "request", request_id, details).await?;
    Ok(Some(held))
}

/// [`release_in`] in its own transaction.
#[tracing::instrument(skip(db))]
pub async fn release(db: &DatabaseConnection, request_id: i64) -> Result<Option<Ipv4Addr>, ServiceError> {
    let txn = crate::db::begin_write(db).await?;
    let released = release_in(&txn, request_id).await?;
    txn.commit().await?;
    Ok(released)
}
