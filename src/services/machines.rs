//! Machines made from requests: listing, live status, power actions and deletion. Every call to PVE
//! about a machine goes by its [`GuestType`] (`machines.kind`): containers and VMs share the calls'
//! shape, not their paths.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;

use entities::machine;

use super::lost_machines::{self, GuestCheck};
use super::{Actor, GuestRefusal, Page, ServiceError, audit, into_page, page_limit, requests};
use crate::domain::guest::GuestType;
use crate::domain::request_status::RequestEvent;
use crate::integrations::pve;
use crate::integrations::pve::wire::PowerCommand;
use crate::secrets::{Secret, SecretKey};

pub use super::install_media::{can_detach, detach_install_media};

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

/// What PVE says about a machine right now.
#[derive(Debug, Clone)]
pub struct LiveStatus {
    /// `running`, `stopped`, or `unknown` when PVE cannot be asked.
    pub state: String,
    pub uptime_secs: Option<u64>,
    pub cpus: Option<f64>,
    pub max_memory_bytes: Option<u64>,
    pub lock: Option<String>,
}

pub async fn live_status(pve: Option<&pve::Client>, m: &machine::Model) -> LiveStatus {
    let unknown =
        LiveStatus { state: "unknown".into(), uptime_secs: None, cpus: None, max_memory_bytes: None, lock: None };
    // A lost machine's VMID names someone else's guest (or none): its state is not this machine's.
    let (Some(pve), Some(vmid), None, None) = (pve, m.vmid, m.deleted_at, m.lost_at) else { return unknown };
    let ty = match guest_type(m) {
        Ok(ty) => ty,
        Err(e) => {
            tracing::error!(machine = m.id, error = %e, "status of machine not asked");
            return unknown;
        }
    };
    match pve.guest_status(&m.node, ty, vmid as u64).await {
        Ok(s) => LiveStatus {
            state: s.status,
            uptime_secs: s.uptime,
            cpus: s.cpus,
            max_memory_bytes: s.maxmem,
            lock: s.lock,
        },
        Err(e) => {
            tracing::warn!(machine = m.id, error = %e, "status of machine unavailable");
            unknown
        }
    }
}

/// Power actions owners may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    Start,
    Shutdown,
    Reboot,
}

impl PowerAction {
    pub fn parse(s: &str) -> Option<PowerAction> {
        match s {
            "start" => Some(PowerAction::Start),
            "shutdown" => Some(PowerAction::Shutdown),
            "reboot" => Some(PowerAction::Reboot),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Start => "start",
            PowerAction::Shutdown => "shutdown",
            PowerAction::Reboot => "reboot",
        }
    }

    pub(crate) fn command(self) -> PowerCommand {
        match self {
            PowerAction::Start => PowerCommand::Start,
            PowerAction::Shutdown => PowerCommand::Shutdown,
            PowerAction::Reboot => PowerCommand::Reboot,
        }
    }

    /// Whether the action makes sense for a guest that is (or is not) running. QEMU checks a start only
    /// inside its task and takes a shutdown of a stopped VM as done (pve-qemu-day2.md §4), so the state
    /// is read first and both kinds are refused alike.
    pub(crate) fn refusal(self, running: bool) -> Option<GuestRefusal> {
        match (self, running) {
            (PowerAction::Start, true) => Some(GuestRefusal::AlreadyRunning),
            (PowerAction::Shutdown | PowerAction::Reboot, false) => Some(GuestRefusal::NotRunning),
            _ => None,
        }
    }
}

/// Starts, shuts down or reboots a machine (owner or admin), once its guest is verified to be the
/// machine's (a machine whose guest is not becomes lost). PVE runs it as a task; this returns once
/// PVE accepted it. A start of a running guest, or a shutdown or reboot of a stopped one, is refused
/// with the same [`GuestRefusal`] for containers and VMs.
pub async fn power(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
    id: i64,
    action: PowerAction,
) -> Result<(), ServiceError> {
    let m = get(db, actor, id).await?;
    if m.deleted_at.is_some() {
        return Err(ServiceError::Conflict("the machine was deleted".into()));
    }
    let (Some(pve), Some(vmid)) = (pve, m.vmid) else {
        return Err(ServiceError::Conflict("no Proxmox VE cluster is configured".into()));
    };
    let ty = guest_type(&m)?;
    lost_machines::verify(db, pve, &m, action.as_str()).await?;
    let vmid = vmid as u64;
    let status = pve.guest_status(&m.node, ty, vmid).await.map_err(lost_machines::pve_error)?;
    // QEMU checks the lock only inside the task; a hibernated VM (`suspended`) resumes on start.
    if let Some(lock) = status.lock.clone().filter(|l| !(l == "suspended" && action == PowerAction::Start)) {
        return Err(ServiceError::GuestRefused(GuestRefusal::Locked(lock)));
    }
    if let Some(why) = action.refusal(status.is_running()) {
        return Err(ServiceError::GuestRefused(why));
    }
    pve.guest_power(&m.node, ty, vmid, action.command()).await.map_err(lost_machines::pve_error)?;
    let action_name = format!("machine.{}", action.as_str());
    audit::record(db, Some(actor), &action_name, "machine", id, json!({"vmid": vmid, "node": m.node})).await?;
    Ok(())
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
    if let Some(e) = lost_machines::lost_error(&m) {
        return Err(e);
    }
    if let Some(pve) = pve.filter(|_| m.vmid.is_some() && m.deleted_at.is_none()) {
        match lost_machines::check(pve, &m).await {
            Ok(GuestCheck::Replaced) => {
                let reason = crate::domain::lost::LostReason::Replaced;
                return Err(lost_machines::mark_lost(db, &m, reason, "delete").await?);
            }
            // A container already gone is simply deleted: the destroy job finds nothing to remove.
            Ok(GuestCheck::Ours | GuestCheck::Gone) => {}
            Err(e) => tracing::warn!(machine = id, error = %e, "container not verified now; the destroy job will"),
        }
    }
    // A reason left by an earlier failed deletion no longer applies.
    let extra = vec![(entities::request::Column::Reason, Option::<String>::None.into())];
    requests::transition(db, Some(actor), m.request_id, RequestEvent::Delete, extra, json!({"machine": id})).await?;
    Ok(())
}

/// Live machines as the Guacamole sync wants them: owner, login and opened password. Machines without
/// a VM id yet (still provisioning) are left out. A VM installed from an ISO has neither a login nor a
/// password of proxdesk's: it gets the owner's name, no password (Guacamole asks for it), and a
/// connection only once its address is known.
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
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
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
            (None, None) if qemu => (owner.clone(), Some(Secret::new(String::new())), true),
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

/// The power state (`running`, `stopped`…) of each of `machines` (by machine id) from one cluster-wide
/// read; a machine PVE does not list, or every machine when PVE cannot be asked, is `unknown`.
pub async fn power_states(
    pve: Option<&pve::Client>,
    machines: &[machine::Model],
) -> std::collections::HashMap<i64, String> {
    let mut out: std::collections::HashMap<i64, String> =
        machines.iter().map(|m| (m.id, "unknown".to_owned())).collect();
    let Some(pve) = pve.filter(|_| machines.iter().any(|m| m.vmid.is_some())) else { return out };
    match pve.cluster_resources(Some("vm")).await {
        Ok(resources) => {
            for m in machines.iter().filter(|m| m.lost_at.is_none()) {
                let found = resources.iter().find(|r| {
                    r.vmid.is_some() && r.vmid == m.vmid.map(|v| v as u64) && r.node.as_deref() == Some(&m.node)
                });
                if let Some(state) = found.and_then(|r| r.status.clone()) {
                    out.insert(m.id, state);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "power states unavailable"),
    }
    out
}
