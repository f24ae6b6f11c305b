//! Machines whose guest (container or VM) no longer carries their marker. PVE reuses the lowest free VMID, so after
//! an admin deletes or restores a guest out of band a machine's stored VMID can name someone else's
//! guest: every action on a machine's container first reads that guest's config (one call) and acts
//! only on a guest carrying the machine's request marker. A machine whose guest does not is `lost`
//! (nothing is done to the other guest); an admin releases it or re-adopts its container from wherever
//! it now is.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;

use entities::{machine, request};

use super::{Actor, GuestRefusal, ServiceError, audit, machines, requests};
use crate::domain::guest::GuestType;
use crate::domain::guest_marker::{GuestMarker, PROXDESK_TAG};
use crate::domain::lost::LostReason;
use crate::domain::request_status::RequestEvent;
use crate::integrations::pve::wire::first_ipv4;
use crate::integrations::pve::{self, PveError};

/// What the guest at a machine's node and VMID is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestCheck {
    /// It carries the machine's request marker.
    Ours,
    /// Another guest has the VMID.
    Replaced,
    /// No guest has it.
    Gone,
}

/// Reads the config of the guest at `m`'s node and VMID (a container's or a VM's, by the machine's
/// kind) and compares its marker with `m`'s request.
pub async fn check(pve: &pve::Client, m: &machine::Model) -> Result<GuestCheck, PveError> {
    let Some(vmid) = m.vmid else { return Ok(GuestCheck::Gone) };
    let ty = machines::guest_type(m).map_err(|e| PveError::Decode(e.to_string()))?;
    // A guest of the other kind at the VMID is someone else's: PVE answers "does not exist" for this path.
    match pve.guest_config(&m.node, ty, vmid as u64).await {
        Ok(c) if GuestMarker::for_request(m.request_id).is_carried_by(c.description.as_deref(), c.tags.as_deref()) => {
            Ok(GuestCheck::Ours)
        }
        Ok(_) => Ok(GuestCheck::Replaced),
        Err(PveError::NotFound(_)) => Ok(GuestCheck::Gone),
        Err(e) => Err(e),
    }
}

/// The error of an action on a lost machine, with the reason it was marked lost for.
pub fn lost_error(m: &machine::Model) -> Option<ServiceError> {
    let reason = LostReason::parse(m.lost_reason.as_deref()?)?;
    Some(ServiceError::MachineLost { reason, node: m.node.clone(), vmid: m.vmid.unwrap_or_default() })
}

/// Before `action` on `m`'s container: `Ok` when the guest is the machine's; otherwise the machine is
/// marked lost and the answer is [`ServiceError::MachineLost`].
pub async fn verify(
    db: &DatabaseConnection,
    pve: &pve::Client,
    m: &machine::Model,
    action: &str,
) -> Result<(), ServiceError> {
    if let Some(e) = lost_error(m) {
        return Err(e);
    }
    let reason = match check(pve, m).await.map_err(pve_error)? {
        GuestCheck::Ours => return Ok(()),
        GuestCheck::Replaced => LostReason::Replaced,
        GuestCheck::Gone => LostReason::Gone,
    };
    Err(mark_lost(db, m, reason, action).await?)
}

/// How a failed call to PVE reaches the person acting: PVE's refusal in words that do not depend on the
/// guest's kind (`CT 101 not running` and `VM 101 not running` are one refusal), the rest as ours.
pub fn pve_error(e: PveError) -> ServiceError {
    match e {
        PveError::NotRunning(_) => ServiceError::GuestRefused(GuestRefusal::NotRunning),
        PveError::AlreadyRunning(_) => ServiceError::GuestRefused(GuestRefusal::AlreadyRunning),
        PveError::Locked { lock, .. } => ServiceError::GuestRefused(GuestRefusal::Locked(lock)),
        PveError::Api { status, message } if !(595..=599).contains(&status) => {
            ServiceError::GuestRefused(GuestRefusal::Other(message.trim().to_owned()))
        }
        e => ServiceError::Internal(format!("Proxmox VE: {e}")),
    }
}

/// Marks `m` lost for `reason` found during `action`: its request goes `ready`/`deleting` → `lost` with
/// the reason, and the machine keeps why and since when, in one transaction. Answers the error to give
/// the person acting. A machine already lost (or moved on) is left as it is.
pub async fn mark_lost(
    db: &DatabaseConnection,
    m: &machine::Model,
    reason: LostReason,
    action: &str,
) -> Result<ServiceError, ServiceError> {
    let vmid = m.vmid.unwrap_or_default();
    let text = reason.describe(&m.node, vmid);
    let txn = crate::db::begin_write(db).await?;
    let extra = vec![(request::Column::Reason, Some(text.clone()).into())];
    let details = json!({"reason": reason.as_str(), "node": m.node, "vmid": vmid, "during": action});
    match requests::transition_in(&txn, None, m.request_id, RequestEvent::MarkLost, extra, details).await {
        Ok(_) => {
            machine::Entity::update_many()
                .col_expr(machine::Column::LostReason, Expr::value(reason.as_str()))
                .col_expr(machine::Column::LostAt, Expr::value(Utc::now()))
                .filter(machine::Column::Id.eq(m.id))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            tracing::warn!(machine = m.id, vmid, node = %m.node, %reason, action, "machine lost");
        }
        Err(ServiceError::IllegalTransition(_) | ServiceError::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(ServiceError::MachineLost { reason, node: m.node.clone(), vmid })
}

/// Writes a lost machine off (admin): the request ends `deleted` with its reason kept, the machine is
/// marked deleted, and nothing is sent to PVE.
pub async fn release(db: &DatabaseConnection, actor: &Actor, machine_id: i64) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let m = machines::get(db, actor, machine_id).await?;
    let txn = crate::db::begin_write(db).await?;
    let details = json!({"machine": m.id, "node": m.node, "vmid": m.vmid, "lost_reason": m.lost_reason});
    requests::transition_in(&txn, Some(actor), m.request_id, RequestEvent::Release, vec![], details).await?;
    machine::Entity::update_many()
        .col_expr(machine::Column::DeletedAt, Expr::value(Utc::now()))
        .filter(machine::Column::Id.eq(m.id))
        .exec(&txn)
        .await?;
    // Its guest is gone or someone else's: a static address it held goes back to the pool.
    super::addresses::release_in(&txn, m.request_id).await?;
    txn.commit().await?;
    Ok(())
}

/// What a re-adoption found.
#[derive(Debug, Clone)]
pub enum Readoption {
    /// The machine now points at the container's node and VMID, and is `ready` again.
    Adopted(Box<machine::Model>),
    /// No guest in the cluster carries the request's marker: the machine stays lost.
    NoneFound { tag: String },
    /// Several guests carry it (`(node, vmid)`): nothing is changed until the extra ones are gone.
    Several(Vec<(String, u64)>),
}

/// Re-adopts a lost machine's container (admin): the guest carrying the request's tag (or, for guests
/// made before tags, its marker in the notes) is looked for in the whole cluster, its config verified,
/// and the machine pointed at its node and VMID. The attempt is audited whatever it finds.
pub async fn readopt(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
    machine_id: i64,
) -> Result<Readoption, ServiceError> {
    actor.require_admin()?;
    let m = machines::get(db, actor, machine_id).await?;
    if m.lost_at.is_none() || m.deleted_at.is_some() {
        return Err(ServiceError::Conflict("only a lost machine can be re-adopted".into()));
    }
    let pve = pve.ok_or_else(|| ServiceError::Conflict("no Proxmox VE cluster is configured".into()))?;
    let marker = GuestMarker::for_request(m.request_id);
    let ty = machines::guest_type(&m)?;
    let found = find_guests(pve, ty, marker).await.map_err(pve_error)?;
    let (node, vmid) = match found.as_slice() {
        [one] => one.clone(),
        others => {
            let guests: Vec<String> = others.iter().map(|(n, v)| format!("{n}/{v}")).collect();
            let details = json!({"machine": m.id, "tag": marker.tag(), "found": guests});
            audit::record(db, Some(actor), "machine.readopt_failed", "request", m.request_id, details).await?;
            return Ok(if others.is_empty() {
                Readoption::NoneFound { tag: marker.tag() }
            } else {
                Readoption::Several(found)
            });
        }
    };
    // A restored guest usually got a new lease; keep the old address when it shows none (yet).
    let ifaces = match ty {
        GuestType::Lxc => pve.lxc_interfaces(&node, vmid).await.ok().flatten(),
        GuestType::Qemu => pve.qemu_agent_interfaces(&node, vmid).await.ok(),
    };
    let ipv4 = ifaces.as_deref().and_then(first_ipv4).map(|ip| ip.to_string()).or(m.ipv4.clone());
    let txn = crate::db::begin_write(db).await?;
    let extra = vec![(request::Column::Reason, Option::<String>::None.into())];
    let details =
        json!({"machine": m.id, "from": {"node": m.node, "vmid": m.vmid}, "to": {"node": node, "vmid": vmid}});
    requests::transition_in(&txn, Some(actor), m.request_id, RequestEvent::Readopt, extra, details).await?;
    repoint(&txn, m.id, &node, vmid, ipv4).await?;
    txn.commit().await?;
    Ok(Readoption::Adopted(Box::new(machines::get(db, actor, machine_id).await?)))
}

async fn repoint<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    node: &str,
    vmid: u64,
    ipv4: Option<String>,
) -> Result<(), ServiceError> {
    machine::Entity::update_many()
        .col_expr(machine::Column::Node, Expr::value(node))
        .col_expr(machine::Column::Vmid, Expr::value(vmid as i64))
        .col_expr(machine::Column::Ipv4, Expr::value(ipv4))
        .col_expr(machine::Column::LostReason, Expr::value(Option::<String>::None))
        .col_expr(machine::Column::LostAt, Expr::value(Option::<chrono::DateTime<Utc>>::None))
        .filter(machine::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The guests of type `ty` carrying `marker`, as (node, VMID): candidates by tag from
/// `/cluster/resources` (one call; it lists tags), each verified by its config. Without a candidate by
/// the request's tag, the guests tagged `proxdesk` are read, for guests whose marker is only in their notes.
async fn find_guests(pve: &pve::Client, ty: GuestType, marker: GuestMarker) -> Result<Vec<(String, u64)>, PveError> {
    let guests: Vec<_> = pve
        .cluster_resources(Some("vm"))
        .await?
        .into_iter()
        .filter(|g| GuestType::parse(&g.kind) == Some(ty) && g.template != Some(1))
        .collect();
    let has_tag = |tags: Option<&str>, wanted: &str| {
        tags.is_some_and(|t| t.split([',', ';', ' ', '\t']).any(|one| one.trim().eq_ignore_ascii_case(wanted)))
    };
    let tag = marker.tag();
    let mut candidates: Vec<_> = guests.iter().filter(|g| has_tag(g.tags.as_deref(), &tag)).collect();
    if candidates.is_empty() {
        candidates = guests.iter().filter(|g| has_tag(g.tags.as_deref(), PROXDESK_TAG)).collect();
    }
    let mut found = vec![];
    for g in candidates {
        let (Some(node), Some(vmid)) = (g.node.clone(), g.vmid) else { continue };
        match pve.guest_config(&node, ty, vmid).await {
            Ok(c) if marker.is_carried_by(c.description.as_deref(), c.tags.as_deref()) => found.push((node, vmid)),
            Ok(_) | Err(PveError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}
