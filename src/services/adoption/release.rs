//! Releasing a ready machine (admin): it leaves proxdesk and its guest stays in PVE as it is.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;

use entities::machine;

use crate::domain::request_status::RequestEvent;
use crate::services::{Actor, ServiceError, addresses, audit, machines, requests};

/// Takes a ready machine out of proxdesk: its request ends `released`, the machine is marked deleted
/// (so the lists, the console and the Guacamole sync drop it), and nothing is sent to PVE — not a
/// stop, not a delete, and not a notes edit either: the marker line stays in the guest's notes, like a
/// released lost machine's. It names a request that is over, so it claims nothing: the guest is
/// listed as unmanaged again, and adopting it anew replaces the marker. A static address the guest
/// holds goes back to the pool: proxdesk no longer answers for it.
pub async fn release(db: &DatabaseConnection, actor: &Actor, machine_id: i64) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let m = machines::get(db, actor, machine_id).await?;
    if m.deleted_at.is_some() {
        return Err(ServiceError::NotFound);
    }
    if m.lost_at.is_some() {
        return crate::services::lost_machines::release(db, actor, machine_id).await;
    }
    let txn = crate::db::begin_write(db).await?;
    let details = json!({"machine": m.id, "node": m.node, "vmid": m.vmid});
    requests::transition_in(&txn, Some(actor), m.request_id, RequestEvent::Release, vec![], details.clone()).await?;
    machine::Entity::update_many()
        .col_expr(machine::Column::DeletedAt, Expr::value(Utc::now()))
        .filter(machine::Column::Id.eq(m.id))
        .exec(&txn)
        .await?;
    addresses::release_in(&txn, m.request_id).await?;
    audit::record(&txn, Some(actor), "machine.release", "machine", m.id, details).await?;
    txn.commit().await?;
    Ok(())
}
