//! Machines made from requests: listing, live status, power actions and deletion.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;

use entities::machine;

use super::lost_machines::{self, GuestCheck};
use super::{Actor, Page, ServiceError, audit, into_page, page_limit, requests};
use crate::domain::request_status::RequestEvent;
use crate::integrations::pve;
use crate::secrets::{Secret, SecretKey};

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
    match pve.lxc_status(&m.node, vmid as u64).await {
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
}

/// Starts, shuts down or reboots a machine (owner or admin), once its container is verified to be the
/// machine's (a machine whose container is not becomes lost). PVE runs it as a task; this returns once
/// PVE accepted it.
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
    lost_machines::verify(db, pve, &m, action.as_str()).await?;
    let vmid = vmid as u64;
    let result = match action {
        PowerAction::Start => pve.lxc_start(&m.node, vmid).await,
        PowerAction::Shutdown => pve.lxc_shutdown(&m.node, vmid).await,
        PowerAction::Reboot => pve.lxc_reboot(&m.node, vmid).await,
    };
    result.map_err(lost_machines::pve_error)?;
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
/// a VM id, login or password yet (still provisioning) are left out.
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
        let (Some(vmid), Some(login), Some(sealed)) = (m.vmid, m.login_user, m.password_sealed) else {
            continue;
        };
        let password = key.open(&sealed).ok();
        if password.is_none() {
            tracing::warn!(machine = m.id, "machine password does not open; its Guacamole connection is left as it is");
        }
        out.push(ProvisionedMachine {
            machine_id: m.id,
            request_id: m.request_id,
            vmid: u32::try_from(vmid).unwrap_or_default(),
            node: m.node,
            hostname: m.hostname,
            ipv4: m.ipv4,
            owner_username: owners.get(&m.user_id).cloned().unwrap_or_default(),
            login_user: login,
            password,
        });
    }
    Ok(out)
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
