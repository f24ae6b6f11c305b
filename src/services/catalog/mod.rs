//! The catalog: the entries people may request machines from. Each entry has a kind (an LXC template,
//! a QEMU template with cloud-init, or a QEMU VM installed from an ISO), resource limits, and the
//! storages, bridges and ISOs a requester may choose from, picked by the admin from what PVE offers.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde_json::json;

use entities::template;

use super::{Actor, ServiceError, audit};
use crate::domain::guest::{MachineKind, join_list, split_list};
use crate::integrations::pve;

pub mod discovery;
mod input;
mod stages;
mod verify;

pub use discovery::{ChoiceFacts, Discovery, NodeOffer, choice_facts, discover, discover_cluster};
pub use input::{DEFAULT_NET0, FINISH_MODES, OSTYPES, SNAPSHOT_LIMIT_MAX, TemplateInput, ValidTemplate, validate};
pub use stages::MAX_STAGES;
pub use verify::verify;

/// The kind of an entry as stored (an unknown text reads as a container entry, the column's default).
pub fn kind_of(t: &template::Model) -> MachineKind {
    MachineKind::parse(&t.kind).unwrap_or(MachineKind::Lxc)
}

/// The storages, bridges and ISOs a request to `t` may choose from, in the admin's order.
pub fn allowed(t: &template::Model) -> Allowed {
    Allowed { storages: split_list(&t.storages), bridges: split_list(&t.bridges), isos: split_list(&t.isos) }
}

/// An entry's allow-lists; an empty list offers no choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    pub storages: Vec<String>,
    pub bridges: Vec<String>,
    pub isos: Vec<String>,
}

/// Templates people may request (enabled ones), or all of them for admins when `all` is set.
pub async fn list(db: &DatabaseConnection, actor: &Actor, all: bool) -> Result<Vec<template::Model>, ServiceError> {
    let mut q = template::Entity::find().order_by_asc(template::Column::Name);
    if !(all && actor.is_admin()) {
        q = q.filter(template::Column::Enabled.eq(true));
    }
    Ok(q.all(db).await?)
}

/// One template; disabled ones only for admins.
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<template::Model, ServiceError> {
    template::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|t| t.enabled || actor.is_admin())
        .ok_or(ServiceError::NotFound)
}

/// The static checks, then (for an admin's save) PVE's: every choice must exist on the cluster.
async fn checked(
    pve: Option<&pve::Client>,
    actor: Option<&Actor>,
    input: &TemplateInput,
) -> Result<ValidTemplate, ServiceError> {
    if let Some(a) = actor {
        a.require_admin()?;
    }
    let valid = validate(input)?;
    // Seeding (no actor: the demo, the command line, tests) writes entries that come from code.
    if actor.is_some() {
        let pve = pve.ok_or_else(|| ServiceError::Unavailable("no Proxmox VE cluster is configured".into()))?;
        verify(pve, &valid).await?.into_result()?;
    }
    Ok(valid)
}

fn write(row: &mut template::ActiveModel, v: ValidTemplate, input: &TemplateInput) {
    row.name = Set(v.name);
    row.description = Set(v.description);
    row.kind = Set(v.kind.as_str().to_owned());
    row.node = Set(v.node);
    row.vmid = Set(v.vmid);
    row.nodes = Set(join_list(&v.nodes));
    // The single target storage of earlier versions: the first allowed one, what a request without a
    // choice gets.
    row.storage = Set(v.storages.first().cloned());
    row.storages = Set(join_list(&v.storages));
    row.bridges = Set(join_list(&v.bridges));
    row.isos = Set(join_list(&v.isos));
    row.ostype = Set(v.ostype);
    row.ip_pool = Set(v.ip_pool.map(|p| p.to_string()));
    row.gateway = Set(v.gateway.map(|g| g.to_string()));
    row.default_cores = Set(input.default_cores);
    row.max_cores = Set(input.max_cores);
    row.default_memory_mib = Set(input.default_memory_mib);
    row.max_memory_mib = Set(input.max_memory_mib);
    row.default_disk_gib = Set(input.default_disk_gib);
    row.max_disk_gib = Set(input.max_disk_gib);
    row.full_clone = Set(input.full_clone && v.kind.is_cloned());
    row.enabled = Set(input.enabled);
    row.net0 = Set(v.net0);
    row.finish_mode = Set(v.finish_mode);
    row.snapshot_limit = Set(v.snapshot_limit);
    row.lease_days = Set(v.lease_days);
    row.lease_max_days = Set(v.lease_max_days);
}

/// Adds a catalog entry. An admin's entry is checked against PVE (`pve`); `None` actor = seeding by
/// the demo or the command line, whose values are not checked against a cluster.
pub async fn create(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: Option<&Actor>,
    input: TemplateInput,
) -> Result<template::Model, ServiceError> {
    let valid = checked(pve, actor, &input).await?;
    let txn = db.begin().await?;
    let mut row = template::ActiveModel { created_at: Set(Utc::now()), ..Default::default() };
    write(&mut row, valid, &input);
    let row = row.insert(&txn).await?;
    let stages = stages::replace(&txn, row.id, input.approval_stages.as_deref()).await?;
    let mut details = json!({"name": row.name, "kind": row.kind});
    if let Some(names) = stages {
        details["approval_stages"] = json!(names);
    }
    audit::record(&txn, actor, "template.created", "template", row.id, details).await?;
    txn.commit().await?;
    Ok(row)
}

/// Replaces a catalog entry's settings (admin), checked against PVE like a new one.
pub async fn update(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
    id: i64,
    input: TemplateInput,
) -> Result<template::Model, ServiceError> {
    actor.require_admin()?;
    template::Entity::find_by_id(id).one(db).await?.ok_or(ServiceError::NotFound)?;
    let valid = checked(pve, Some(actor), &input).await?;
    let txn = db.begin().await?;
    let existing = template::Entity::find_by_id(id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    let mut row: template::ActiveModel = existing.into();
    write(&mut row, valid, &input);
    let row = row.update(&txn).await?;
    let stages = stages::replace(&txn, id, input.approval_stages.as_deref()).await?;
    let mut details = json!({"name": row.name, "kind": row.kind, "enabled": row.enabled});
    if let Some(names) = stages {
        details["approval_stages"] = json!(names);
    }
    audit::record(&txn, Some(actor), "template.updated", "template", id, details).await?;
    txn.commit().await?;
    Ok(row)
}
