//! Adopting a guest the cluster already has (admin): it becomes an ordinary machine of an owner, its
//! request `adopted` and `ready` from the start (never provisioned), and the guest carries proxdesk's
//! marker from then on. Releasing takes a ready machine out of proxdesk and leaves its guest as it is.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;

use entities::{machine, request, template, user};

use super::{Actor, FieldErrors, ServiceError, audit, quotas};
use crate::domain::FieldError;
use crate::domain::guest::{GuestType, MachineKind};
use crate::domain::guest_marker::GuestMarker;
use crate::domain::quota::{Resources, check_quota};
use crate::domain::request_origin::RequestOrigin;
use crate::domain::request_status::RequestStatus;
use crate::domain::values::Hostname;
use crate::integrations::pve::wire::{GuestConfig, LxcConfigUpdate, QemuConfigUpdate, first_ipv4};
use crate::integrations::pve::{self, PveError};

mod discovery;
mod refusal;
mod release;

pub use discovery::{UnmanagedGuest, unmanaged};
pub use refusal::AdoptRefusal;
use refusal::refusal;
pub use release::release;

/// What an admin asks for: a guest, its owner, optionally a catalog entry (for its limits) and the
/// name proxdesk shows. Raw text, parsed here.
#[derive(Debug, Clone, Default)]
pub struct AdoptionInput {
    pub node: String,
    pub vmid: u64,
    /// `lxc` or `qemu`.
    pub kind: String,
    pub owner: String,
    pub template_id: Option<i64>,
    pub hostname: Option<String>,
    /// Adopt even though the guest puts the owner over their quota (the page asks first).
    pub beyond_quota: bool,
}

/// The checked input.
struct Parsed {
    ty: GuestType,
    owner: user::Model,
    template: Option<template::Model>,
    hostname: Option<Hostname>,
}

async fn parse(db: &DatabaseConnection, input: &AdoptionInput) -> Result<Parsed, ServiceError> {
    let mut errors = FieldErrors::default();
    let ty = GuestType::parse(input.kind.trim());
    if ty.is_none() {
        errors.push(FieldError::new("kind", "error.adopt_kind"));
    }
    let owner = user::Entity::find()
        .filter(user::Column::Username.eq(input.owner.trim()))
        .one(db)
        .await?
        .filter(|u| !u.disabled);
    if owner.is_none() {
        errors.push(FieldError::new("owner", "error.adopt_owner_unknown"));
    }
    let mut template = None;
    if let Some(id) = input.template_id {
        match template::Entity::find_by_id(id).one(db).await? {
            None => errors.push(FieldError::new("template_id", "error.adopt_template_unknown")),
            Some(t) => {
                let entry_type = MachineKind::parse(&t.kind).map(MachineKind::guest_type);
                if ty.is_some() && entry_type != ty {
                    errors
                        .push(FieldError::new("template_id", "error.adopt_template_kind").with("kind", t.kind.clone()));
                }
                template = Some(t);
            }
        }
    }
    let hostname = match input.hostname.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        Some(h) => match Hostname::parse(h) {
            Ok(h) => Some(h),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    errors.into_result()?;
    let (Some(ty), Some(owner)) = (ty, owner) else { return Err(ServiceError::Internal("unchecked input".into())) };
    Ok(Parsed { ty, owner, template, hostname })
}

/// Whether `config` may be adopted: not a template, not locked, no marker of a live machine.
fn check_guest(config: &GuestConfig, live: &std::collections::HashSet<i64>) -> Result<(), AdoptRefusal> {
    if config.template == Some(1) {
        return Err(AdoptRefusal::Template);
    }
    if let Some(id) = GuestMarker::requests_carried(config.description.as_deref(), config.tags.as_deref())
        .into_iter()
        .find(|id| live.contains(id))
    {
        return Err(AdoptRefusal::Marked(id));
    }
    if let Some(lock) = &config.lock {
        return Err(AdoptRefusal::Locked(lock.clone()));
    }
    Ok(())
}

/// The guest's resources as the quota counts them, from its `status/current` (vCPUs, memory, disk
/// size: one call whatever the cluster's size), and whether it runs.
async fn resources_of(
    pve: &pve::Client,
    node: &str,
    vmid: u64,
    ty: GuestType,
) -> Result<(Resources, bool), ServiceError> {
    let st = pve.guest_status(node, ty, vmid).await.map_err(refusal)?;
    let resources = Resources {
        cores: st.cpus.map_or(0, |c| c.ceil() as i32),
        memory_mib: st.maxmem.map_or(0, |b| (b >> 20) as i32),
        disk_gib: st.maxdisk.map_or(0, |b| b.div_ceil(1 << 30) as i32),
    };
    Ok((resources, st.status == "running"))
}

/// The guest's IPv4 address if it shows one now: a running container's interfaces, a running VM's
/// agent (only with the agent enabled, else PVE refuses; a silent agent costs PVE's 3 s ping). None
/// otherwise: the Guacamole sync learns a VM's address later, as for a VM installed from an ISO.
async fn address_of(
    pve: &pve::Client,
    node: &str,
    vmid: u64,
    ty: GuestType,
    config: &GuestConfig,
    running: bool,
) -> Option<String> {
    if !running {
        return None;
    }
    // `agent: [enabled=]0|1[,fstrim_cloned_disks=…]`, stored as sent (pve-qemu-day2.md §1.2).
    let agent = config.other.get("agent").and_then(|a| a.as_str().map(str::to_owned).or(Some(a.to_string())));
    let agent_on = agent.is_some_and(|a| a.starts_with('1') || a.split(',').any(|kv| kv == "enabled=1"));
    let ifaces = match ty {
        GuestType::Lxc => pve.lxc_interfaces(node, vmid).await.ok().flatten(),
        GuestType::Qemu if agent_on => pve.qemu_agent_interfaces(node, vmid).await.ok(),
        GuestType::Qemu => None,
    };
    ifaces.as_deref().and_then(first_ipv4).map(|ip| ip.to_string())
}

/// Writes the marker into the guest's notes (on top, its notes kept below) and tags, with the digest
/// of the config it was decided on: a concurrent change makes PVE refuse instead of losing it.
async fn write_marker(
    pve: &pve::Client,
    node: &str,
    vmid: u64,
    ty: GuestType,
    description: String,
    tags: String,
    digest: Option<String>,
) -> Result<(), PveError> {
    match ty {
        GuestType::Lxc => {
            let update =
                LxcConfigUpdate { description: Some(description), tags: Some(tags), digest, ..Default::default() };
            pve.lxc_update_config(node, vmid, &update).await
        }
        GuestType::Qemu => {
            let update =
                QemuConfigUpdate { description: Some(description), tags: Some(tags), digest, ..Default::default() };
            pve.qemu_update_config(node, vmid, &update).await
        }
    }
}

/// Adopts a guest (admin). The request (`adopted`, `ready`), the machine and the audit entry are
/// written in one transaction that stays open while PVE takes the marker (one synchronous config
/// update, no task): when PVE refuses, the transaction is rolled back and nothing is left behind.
#[tracing::instrument(skip(db, pve, input), fields(actor = actor.id, vmid = input.vmid))]
pub async fn adopt(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
    input: AdoptionInput,
) -> Result<machine::Model, ServiceError> {
    actor.require_admin()?;
    let pve = pve.ok_or_else(|| ServiceError::Unavailable("no Proxmox VE cluster is configured".into()))?;
    let Parsed { ty, owner, template, hostname } = parse(db, &input).await?;
    let (node, vmid) = (input.node.trim().to_owned(), input.vmid);
    if discovery::live_vmids(db).await?.contains(&vmid) {
        return Err(AdoptRefusal::Managed.into());
    }
    let config = pve.guest_config(&node, ty, vmid).await.map_err(refusal)?;
    let live = discovery::live_requests(db).await?;
    check_guest(&config, &live)?;
    let (wanted, running) = resources_of(pve, &node, vmid, ty).await?;
    let ipv4 = address_of(pve, &node, vmid, ty, &config, running).await;
    let name = match ty {
        GuestType::Lxc => config.hostname.clone(),
        GuestType::Qemu => config.name.clone(),
    };
    let hostname = hostname
        .map(|h| h.as_str().to_owned())
        .or(name)
        .unwrap_or_else(|| format!("{}{vmid}", if ty == GuestType::Lxc { "ct" } else { "vm" }));

    let txn = crate::db::begin_write(db).await?;
    super::requests::lock_user(&txn, owner.id).await?;
    let over = check_quota(quotas::effective(&txn, owner.id).await?, quotas::usage(&txn, owner.id).await?, wanted);
    if !over.0.is_empty() && !input.beyond_quota {
        return Err(AdoptRefusal::OverQuota(over).into());
    }
    let now = Utc::now();
    let req = request::ActiveModel {
        user_id: Set(owner.id),
        template_id: Set(template.as_ref().map(|t| t.id)),
        hostname: Set(hostname.clone()),
        cores: Set(wanted.cores),
        memory_mib: Set(wanted.memory_mib),
        disk_gib: Set(wanted.disk_gib),
        purpose: Set(String::new()),
        status: Set(RequestStatus::Ready.as_str().to_owned()),
        origin: Set(RequestOrigin::Adopted.as_str().to_owned()),
        decided_by: Set(Some(actor.id)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let m = machine::ActiveModel {
        request_id: Set(req.id),
        user_id: Set(owner.id),
        kind: Set(ty.as_str().to_owned()),
        node: Set(node.clone()),
        vmid: Set(Some(vmid as i64)),
        hostname: Set(hostname),
        ipv4: Set(ipv4),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    // On the request, which the adoption creates (like `request.created`): the first entry of its timeline.
    let details = json!({"machine": m.id, "node": node, "vmid": vmid, "kind": ty.as_str(), "owner": owner.username,
        "template": template.as_ref().map(|t| t.name.clone()), "beyond_quota": !over.0.is_empty()});
    audit::record(&txn, Some(actor), "machine.adopt", "request", req.id, details).await?;

    let marker = GuestMarker::for_request(req.id);
    let notes = marker.adoption_notes(&owner.username, config.description.as_deref());
    let tags = marker.adoption_tags(config.tags.as_deref(), |id| !live.contains(&id));
    // The guest's notes and tags as they were, for when the marker may be on it but the rows are not.
    let undo = || async {
        // LXC reads notes back with a `\n` per line (pve-api.md §9): written back without the last.
        let notes = config.description.as_deref().unwrap_or_default().trim_end_matches('\n').to_owned();
        let tags = config.tags.clone().unwrap_or_default();
        if let Err(e) = write_marker(pve, &node, vmid, ty, notes, tags, None).await {
            tracing::error!(vmid, node, error = %e, "the marker of an adoption that failed may still be on the guest");
        }
    };
    if let Err(e) = write_marker(pve, &node, vmid, ty, notes, tags, Some(config.digest.clone())).await {
        // Dropping the transaction rolls the rows back. A refusal changed nothing in PVE; a lost answer
        // may have (and SQLite would give the request id again), so the notes are put back.
        let e = refusal(e);
        if matches!(e, ServiceError::Unavailable(_)) {
            undo().await;
        }
        return Err(e);
    }
    if let Err(e) = txn.commit().await {
        undo().await;
        return Err(e.into());
    }
    tracing::info!(machine = m.id, vmid, node, owner = owner.username, "guest adopted");
    Ok(m)
}
