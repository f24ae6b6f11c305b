//! The installer ISO of a VM made from an ISO: it stays in the VM's CD drive until its owner (or an
//! admin) detaches it, once the OS is installed.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;

use entities::machine;

use super::{Actor, ServiceError, audit, lost_machines, machines};
use crate::domain::guest::GuestType;
use crate::integrations::pve;
use crate::integrations::pve::wire::QemuConfigUpdate;

/// What an emptied CD drive is written as: the drive stays, without a medium (pve-qemu-day2.md §3.2).
pub const EMPTY_CDROM: &str = "none,media=cdrom";

/// Whether `m` has an installer ISO its owner may detach now.
pub fn can_detach(m: &machine::Model) -> bool {
    m.install_media.is_some()
        && m.deleted_at.is_none()
        && m.lost_at.is_none()
        && machines::guest_type(m).is_ok_and(|t| t == GuestType::Qemu)
}

/// Empties the CD drive of machine `id`'s VM (owner or admin) and forgets its ISO, with the audit entry
/// `machine.iso_detached`. PVE applies it at once, also to a running VM (the medium is changed over
/// QMP), so no restart is needed. The VM is verified to be the machine's first.
#[tracing::instrument(skip(db, pve, actor), fields(actor = actor.id))]
pub async fn detach_install_media(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
    id: i64,
) -> Result<(), ServiceError> {
    let m = machines::get(db, actor, id).await?;
    if let Some(e) = lost_machines::lost_error(&m) {
        return Err(e);
    }
    if m.deleted_at.is_some() {
        return Err(ServiceError::Conflict("the machine was deleted".into()));
    }
    let (true, Some(iso), Some(vmid)) = (can_detach(&m), m.install_media.clone(), m.vmid) else {
        return Err(ServiceError::Conflict("the machine has no installer ISO attached".into()));
    };
    let Some(pve) = pve else {
        return Err(ServiceError::Conflict("no Proxmox VE cluster is configured".into()));
    };
    lost_machines::verify(db, pve, &m, "detach_iso").await?;
    let update = QemuConfigUpdate { ide2: Some(EMPTY_CDROM.into()), ..Default::default() };
    pve.qemu_update_config(&m.node, vmid as u64, &update).await.map_err(lost_machines::pve_error)?;
    let txn = crate::db::begin_write(db).await?;
    // Two detaches at once both empty the drive (the same change); only one of them records it.
    let done = machine::Entity::update_many()
        .col_expr(machine::Column::InstallMedia, Expr::value(Option::<String>::None))
        .filter(machine::Column::Id.eq(id))
        .filter(machine::Column::InstallMedia.eq(iso.clone()))
        .exec(&txn)
        .await?;
    if done.rows_affected == 0 {
        return Err(ServiceError::Conflict("the installer ISO was already detached".into()));
    }
    let details = json!({"iso": iso, "node": m.node, "vmid": vmid});
    audit::record(&txn, Some(actor), "machine.iso_detached", "machine", id, details).await?;
    txn.commit().await?;
    Ok(())
}
