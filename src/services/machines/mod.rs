//! Machines made from requests: listing, live status, power actions and deletion. Every call to PVE
//! about a machine goes by its [`GuestType`] (`machines.kind`): containers and VMs share the calls'
//! shape, not their paths.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;

use entities::machine;

use super::lost_machines::{self, GuestCheck};
use super::{Actor, Page, ServiceError, audit, into_page, page_limit, requests};
use crate::domain::guest::GuestType;
use crate::domain::request_status::RequestEvent;
use crate::integrations::pve;
use crate::secrets::{Secret, SecretKey};

mod details;
mod power;
mod search;
mod status;

pub use super::install_media::{can_detach, detach_install_media};
pub use details::{
    LIVE_TIMEOUT_DEFAULT, LiveUsage, MachineDetails, MetricPoint, Metrics, MetricsRange, details, live_timeout,
    split_tags,
};
pub use power::{PowerAction, power, power_machine, power_task};
pub use search::{MachineFilter, MachineRow, PowerState, nodes, search};
pub use status::{LiveStatus, live_status, power_states};

/// The actor's machines (admins: everyone's, or one user's), newest first, deleted ones left out.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    user_id: Option<i64>,
    cursor: Option<i64>,
    limit: Option<u64>,
) -> Result<Page<machine::Model>, ServiceError> {
    let limit = page_limit(limit);
    let mut q = machine::Entity::find().filter(machine::Column::DeletedAt.is_null()).order_by_desc(machine::Column::Id);
    let owner = if actor.is_admin() { user_id } else { Some(actor.id) };
    if let Some(u) = owner {
        q = q.filter(machine::Column::UserId.eq(u));
    }
    if let Some(c) = cursor {
        q = q.filter(machine::Column::Id.lt(c));
    }
    let rows = q.limit(limit + 1).all(db).await?;
    Ok(into_page(rows, limit, |m| m.id))
}

/// One machine, if the actor owns it or is an admin (otherwise: not found).
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<machine::Model, ServiceError> {
    machine::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|m| m.user_id == actor.id || actor.is_admin())
        .ok_or(ServiceError::NotFound)
}

/// The kind of guest behind `m`: a container or a VM.
pub fn guest_type(m: &machine::Model) -> Result<GuestType, ServiceError> {
    GuestType::parse(&m.kind)
        .ok_or_else(|| ServiceError::Internal(format!("machine {} has an unknown kind {:?}", m.id, m.kind)))
}

/// The machine of a request, if it has one.
pub async fn of_request(db: &DatabaseConnection, request_id: i64) -> Result<Option<machine::Model>, ServiceError> {
    Ok(machine::Entity::find().filter(machine::Column::RequestId.eq(request_id)).one(db).await?)
}

/// The owner's password in clear, for the owner only.
pub fn password_for(
    actor: &Actor,
    m: &machine::Model,
    key: &SecretKey,
) -> Result<Option<Secret<String>>, ServiceError> {
    if actor.id != m.user_id {
        return Ok(None);
    }
    m.password_sealed.as_deref().map(|s| key.open(s).map_err(|e| ServiceError::Internal(e.to_string()))).transpose()
}

/// Deletes a machine: the request moves to `deleting` and the destroy job is enqueued, together. A
/// machine whose VMID now names another guest is marked lost instead (an admin releases it); when PVE
/// cannot be asked now, the destroy job checks before it stops or deletes anything.
pub async fn delete(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
    id: i64,
) -> Result<(), ServiceError> {
    let m = get(db, actor, id).await?;
    delete_machine(db, pve, Some(actor), &m).await
}

/// [`delete`] of a machine already read and allowed; `actor` `None` is proxdesk itself (an expired
/// lease's grace period ended), audited as the system.
pub async fn delete_machine(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: Option<&Actor>,
    m: &machine::Model,
) -> Result<(), ServiceError> {
    let id = m.id;
    if let Some(e) = lost_machines::lost_error(m) {
        return Err(e);
    }
    if let Some(pve) = pve.filter(|_| m.vmid.is_some() && m.deleted_at.is_none()) {
        match lost_machines::check(pve, m).await {
            Ok(GuestCheck::Replaced) => {
                let reason = crate::domain::lost::LostReason::Replaced;
                return Err(lost_machines::mark_lost(db, m, reason, "delete").await?);
            }
            // A container already gone is simply deleted: the destroy job finds nothing to remove.
            Ok(GuestCheck::Ours | GuestCheck::Gone) => {}
            Err(e) => tracing::warn!(machine = id, error = %e, "container not verified now; the destroy job will"),
        }
    }
    // A reason left by an earlier failed deletion no longer applies.
    let extra = vec![(entities::request::Column::Reason, Option::<String>::None.into())];
    requests::transition(db, actor, m.request_id, RequestEvent::Delete, extra, json!({"machine": id})).await?;
    Ok(())
}

/// Live machines as the Guacamole sync wants them: owner, login and opened password. Machines without
/// a VM id yet (still provisioning) are left out. A VM installed from an ISO has neither a login nor a
/// password of proxdesk's: it gets the owner's name, no password (Guacamole asks for it), and a
/// connection only once its address is known. An adopted guest is the same: proxdesk never made a login
/// on it.
pub async fn for_guacamole(
    db: &DatabaseConnection,
    key: &crate::secrets::SecretKey,
) -> Result<Vec<crate::integrations::guacamole::sync::ProvisionedMachine>, ServiceError> {
    use crate::integrations::guacamole::sync::ProvisionedMachine;
    // A lost machine's address may now be someone else's guest: no connection points at it.
    let rows = machine::Entity::find()
        .filter(machine::Column::DeletedAt.is_null())
        .filter(machine::Column::LostAt.is_null())
        .order_by_asc(machine::Column::Id)
        .all(db)
        .await?;
    let owners: std::collections::HashMap<i64, String> =
        entities::user::Entity::find().all(db).await?.into_iter().map(|u| (u.id, u.username)).collect();
    let adopted: std::collections::HashSet<i64> = entities::request::Entity::find()
        .filter(entities::request::Column::Origin.eq(crate::domain::request_origin::RequestOrigin::Adopted.as_str()))
        .filter(entities::request::Column::Id.is_in(rows.iter().map(|m| m.request_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
        let adopted = adopted.contains(&m.request_id);
        let Some(vmid) = m.vmid else { continue };
        let owner = owners.get(&m.user_id).cloned().unwrap_or_default();
        let qemu = guest_type(&m).is_ok_and(|t| t == GuestType::Qemu);
        let (login, password, address_required) = match (m.login_user, m.password_sealed) {
            (Some(login), Some(sealed)) => {
                let password = key.open(&sealed).ok();
                if password.is_none() {
                    tracing::warn!(
                        machine = m.id,
                        "machine password does not open; its Guacamole connection is left as it is"
                    );
                }
                (login, password, false)
            }
            // Installed by its owner from an ISO: proxdesk knows no login, only who installed it.
            (None, None) if qemu || adopted => (owner.clone(), Some(Secret::new(String::new())), true),
            _ => continue,
        };
        out.push(ProvisionedMachine {
            machine_id: m.id,
            request_id: m.request_id,
            vmid: u32::try_from(vmid).unwrap_or_default(),
            node: m.node,
            hostname: m.hostname,
            ipv4: m.ipv4,
            owner_username: owner,
            login_user: login,
            password,
            address_required,
        });
    }
    Ok(out)
}

/// Remembers the address the Guacamole sync found for a machine that had none (a VM installed from an
/// ISO, once its OS runs the guest agent), so its page shows it and its connection stays while the VM
/// is off. A machine that has an address keeps it.
pub async fn learn_address(
    db: &DatabaseConnection,
    machine_id: i64,
    ipv4: std::net::Ipv4Addr,
) -> Result<bool, ServiceError> {
    use sea_orm::sea_query::Expr;
    let done = machine::Entity::update_many()
        .col_expr(machine::Column::Ipv4, Expr::value(ipv4.to_string()))
        .filter(machine::Column::Id.eq(machine_id))
        .filter(machine::Column::Ipv4.is_null())
        .filter(machine::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    if done.rows_affected == 1 {
        let details = json!({"ipv4": ipv4.to_string(), "via": "guest_agent"});
        audit::record(db, None, "machine.address_found", "machine", machine_id, details).await?;
    }
    Ok(done.rows_affected == 1)
}
