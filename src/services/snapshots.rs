//! Snapshots of a machine's guest (containers and VMs): the tree, taking one, rolling back, deleting.
//!
//! PVE runs each write as a task holding the guest's lock. The request waits for it, bounded by
//! [`WAIT`]: snapshots of lvm-thin/ZFS/RBD volumes take seconds, so the person sees the outcome (done,
//! or PVE's reason) on the page they come back to. A task still running at the deadline is reported as
//! such and its UPID audited, so the timeline says what was started. Every outcome is audited.

use std::collections::BTreeMap;
use std::time::Duration;

use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::json;

use entities::{machine, request, template};

use super::{Actor, GuestRefusal, ServiceError, audit, lost_machines, machines};
use crate::domain::guest::GuestType;
use crate::domain::request_status::RequestStatus;
use crate::domain::snapshot::{SnapshotName, snapshot_description};
use crate::integrations::pve::{self, PveError, Upid, WaitOptions};

/// How long a request waits for a snapshot task before answering "still running".
pub const WAIT: Duration = Duration::from_secs(60);

/// The `snapshot_limit_default` config key's default.
pub const DEFAULT_LIMIT: u32 = 5;

/// One snapshot of the tree, children under their parent, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    pub name: String,
    pub description: String,
    /// Epoch seconds.
    pub taken_at: Option<i64>,
    /// QEMU: the RAM was saved with it.
    pub with_ram: bool,
    /// The guest's present state descends from this one (PVE's `current.parent`).
    pub is_current_parent: bool,
    pub children: Vec<SnapshotNode>,
}

/// A machine's snapshots: the roots of the tree, the flat count, and where the present state hangs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotTree {
    pub roots: Vec<SnapshotNode>,
    pub count: usize,
    /// The snapshot the guest was last snapshotted at or rolled back to.
    pub current_parent: Option<String>,
    /// The newest snapshot by time, for "roll back to the newest".
    pub newest: Option<String>,
    /// How many snapshots the machine may keep.
    pub limit: u32,
    pub kind: GuestType,
    pub running: bool,
}

/// How a snapshot task ended as far as this request saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Still running at [`WAIT`]; PVE finishes it on its own.
    StillRunning {
        upid: String,
    },
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::StillRunning { .. } => "running",
        }
    }
}

/// What a snapshot write needs from the application.
pub struct SnapshotCtx<'a> {
    pub db: &'a DatabaseConnection,
    pub pve: Option<&'a pve::Client>,
    /// `snapshot_limit_default`.
    pub default_limit: u32,
    /// How long to wait for PVE's task ([`WAIT`] in the application).
    pub wait: Duration,
}

/// Reads `snapshot_limit_default` from the raw settings (`DEFAULT_LIMIT` when unset).
pub fn default_limit(raw: &BTreeMap<String, String>) -> Result<u32, String> {
    match raw.get("snapshot_limit_default").map(|s| s.trim()) {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= crate::services::catalog::SNAPSHOT_LIMIT_MAX as u32)
            .ok_or_else(|| format!("snapshot_limit_default: {v:?} is not a whole number from 0 to 100")),
    }
}

/// The machine, checked: the actor's (or an admin's), ready, its guest verified ours.
async fn ready_machine<'a>(
    cx: &SnapshotCtx<'a>,
    actor: &Actor,
    id: i64,
    action: &str,
) -> Result<(machine::Model, &'a pve::Client, GuestType, u64), ServiceError> {
    let m = machines::get(cx.db, actor, id).await?;
    if m.deleted_at.is_some() {
        return Err(ServiceError::Conflict("the machine was deleted".into()));
    }
    let status = request::Entity::find_by_id(m.request_id).one(cx.db).await?.map(|r| r.status);
    if status.as_deref().and_then(RequestStatus::parse) != Some(RequestStatus::Ready) {
        return Err(ServiceError::Conflict("the machine is not ready".into()));
    }
    let (Some(pve), Some(vmid)) = (cx.pve, m.vmid) else {
        return Err(ServiceError::Unavailable("no Proxmox VE cluster is configured".into()));
    };
    let ty = machines::guest_type(&m)?;
    lost_machines::verify(cx.db, pve, &m, action).await?;
    Ok((m, pve, ty, vmid as u64))
}

/// The snapshot limit of `m`: its catalog entry's, else the default.
async fn limit_of(cx: &SnapshotCtx<'_>, m: &machine::Model) -> Result<u32, ServiceError> {
    let Some(r) = request::Entity::find_by_id(m.request_id).one(cx.db).await? else { return Ok(cx.default_limit) };
    // An adopted machine may have no catalog entry: the default applies.
    let Some(template_id) = r.template_id else { return Ok(cx.default_limit) };
    let entry = template::Entity::find_by_id(template_id).one(cx.db).await?;
    Ok(entry.and_then(|t| t.snapshot_limit).map_or(cx.default_limit, |n| n.max(0) as u32))
}

/// A machine's snapshots as a tree (owner or admin).
pub async fn list(cx: &SnapshotCtx<'_>, actor: &Actor, id: i64) -> Result<SnapshotTree, ServiceError> {
    let (m, pve, ty, vmid) = ready_machine(cx, actor, id, "snapshot_list").await?;
    let entries = pve.snapshot_list(&m.node, ty, vmid).await.map_err(lost_machines::pve_error)?;
    let running = pve.guest_status(&m.node, ty, vmid).await.map_err(lost_machines::pve_error)?.is_running();
    let limit = limit_of(cx, &m).await?;
    Ok(tree(entries, ty, running, limit))
}

/// Builds the tree from PVE's flat list (`current` marks the present state's parent).
pub fn tree(entries: Vec<pve::wire::SnapshotEntry>, kind: GuestType, running: bool, limit: u32) -> SnapshotTree {
    let current_parent = entries.iter().find(|e| e.is_current()).and_then(|e| e.parent.clone());
    let snaps: Vec<_> = entries.into_iter().filter(|e| !e.is_current()).collect();
    let newest = snaps.iter().max_by_key(|e| (e.snaptime, e.name.clone())).map(|e| e.name.clone());
    let names: Vec<&str> = snaps.iter().map(|e| e.name.as_str()).collect();
    fn build(
        parent: Option<&str>,
        snaps: &[pve::wire::SnapshotEntry],
        names: &[&str],
        current: Option<&str>,
    ) -> Vec<SnapshotNode> {
        let mut level: Vec<&pve::wire::SnapshotEntry> = snaps
            .iter()
            .filter(|e| {
                // A parent that is not in the list (deleted under us) makes the entry a root.
                let p = e.parent.as_deref().filter(|p| names.contains(p));
                p == parent
            })
            .collect();
        level.sort_by_key(|e| (e.snaptime, e.name.clone()));
        level
            .into_iter()
            .map(|e| SnapshotNode {
                name: e.name.clone(),
                description: e.description.trim_end().to_owned(),
                taken_at: e.snaptime,
                with_ram: e.vmstate,
                is_current_parent: current == Some(e.name.as_str()),
                children: build(Some(&e.name), snaps, names, current),
            })
            .collect()
    }
    let roots = build(None, &snaps, &names, current_parent.as_deref());
    SnapshotTree { roots, count: snaps.len(), current_parent, newest, limit, kind, running }
}

/// Waits for the task; its failure is audited with PVE's reason before it is returned.
async fn finish(
    cx: &SnapshotCtx<'_>,
    pve: &pve::Client,
    actor: &Actor,
    action: &str,
    id: i64,
    upid: Upid,
    mut details: serde_json::Value,
) -> Result<Outcome, ServiceError> {
    let outcome = match pve.wait_task(&upid, WaitOptions::with_deadline(cx.wait)).await {
        Ok(_) => Outcome::Done,
        Err(PveError::TaskRunning { upid, .. }) => Outcome::StillRunning { upid },
        Err(PveError::TaskFailed { exit_status, .. }) => {
            details["outcome"] = json!("failed");
            details["error"] = json!(exit_status);
            audit::record(cx.db, Some(actor), action, "machine", id, details).await?;
            return Err(ServiceError::GuestRefused(task_refusal(&exit_status)));
        }
        Err(e) => return Err(lost_machines::pve_error(e)),
    };
    details["outcome"] = json!(outcome.as_str());
    if let Outcome::StillRunning { upid } = &outcome {
        details["upid"] = json!(upid);
    }
    audit::record(cx.db, Some(actor), action, "machine", id, details).await?;
    Ok(outcome)
}

/// A task's error text as a refusal: `CT is locked (snapshot)` names the lock; the rest is PVE's.
fn task_refusal(exit_status: &str) -> GuestRefusal {
    match exit_status.split_once("is locked (") {
        Some((_, rest)) => GuestRefusal::Locked(rest.split(')').next().unwrap_or_default().to_owned()),
        None => GuestRefusal::Other(exit_status.trim().to_owned()),
    }
}

/// Refuses early when the guest is locked, naming the lock (PVE would only say so inside the task).
async fn refuse_if_locked(
    pve: &pve::Client,
    m: &machine::Model,
    ty: GuestType,
    vmid: u64,
) -> Result<bool, ServiceError> {
    let status = pve.guest_status(&m.node, ty, vmid).await.map_err(lost_machines::pve_error)?;
    if let Some(lock) = status.lock.clone() {
        return Err(ServiceError::GuestRefused(GuestRefusal::Locked(lock)));
    }
    Ok(status.is_running())
}

/// What a person asks for when taking a snapshot.
#[derive(Debug, Clone, Default)]
pub struct NewSnapshot {
    pub name: String,
    pub description: String,
    /// QEMU: save the RAM too (only when the VM runs).
    pub with_ram: bool,
}

/// Takes a snapshot (owner or admin), within the machine's limit.
pub async fn take(cx: &SnapshotCtx<'_>, actor: &Actor, id: i64, input: NewSnapshot) -> Result<Outcome, ServiceError> {
    let (m, pve, ty, vmid) = ready_machine(cx, actor, id, "snapshot_create").await?;
    let name = SnapshotName::parse(&input.name, ty)?;
    let description = snapshot_description(&input.description)?;
    let running = refuse_if_locked(pve, &m, ty, vmid).await?;
    let entries = pve.snapshot_list(&m.node, ty, vmid).await.map_err(lost_machines::pve_error)?;
    let existing: Vec<_> = entries.iter().filter(|e| !e.is_current()).collect();
    if existing.iter().any(|e| e.name == name.as_str()) {
        return Err(crate::domain::FieldError::new("snapshot_name", "error.snapshot_name_taken").into());
    }
    let limit = limit_of(cx, &m).await?;
    if existing.len() as u32 >= limit {
        return Err(ServiceError::SnapshotLimit { limit });
    }
    let with_ram = ty == GuestType::Qemu && input.with_ram && running;
    let upid = pve
        .snapshot_create(&m.node, ty, vmid, name.as_str(), &description, with_ram)
        .await
        .map_err(lost_machines::pve_error)?;
    let details = json!({"name": name.as_str(), "with_ram": with_ram, "vmid": vmid, "node": m.node});
    finish(cx, pve, actor, "machine.snapshot_create", id, upid, details).await
}

/// Which snapshot to roll back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    Named(String),
    /// The newest snapshot by time.
    Newest,
}

/// Rolls the guest back (owner or admin); a running guest is stopped hard by PVE first.
pub async fn roll_back(
    cx: &SnapshotCtx<'_>,
    actor: &Actor,
    id: i64,
    target: RollbackTarget,
) -> Result<Outcome, ServiceError> {
    let (m, pve, ty, vmid) = ready_machine(cx, actor, id, "snapshot_rollback").await?;
    refuse_if_locked(pve, &m, ty, vmid).await?;
    let entries = pve.snapshot_list(&m.node, ty, vmid).await.map_err(lost_machines::pve_error)?;
    let t = tree(entries, ty, false, 0);
    let name = match target {
        RollbackTarget::Newest => t.newest.clone().ok_or(ServiceError::NotFound)?,
        RollbackTarget::Named(n) => {
            let exists = flatten(&t.roots).iter().any(|s| s.name == n);
            if !exists {
                return Err(ServiceError::NotFound);
            }
            n
        }
    };
    let upid = pve.snapshot_rollback(&m.node, ty, vmid, &name).await.map_err(lost_machines::pve_error)?;
    let details = json!({"name": name, "vmid": vmid, "node": m.node});
    finish(cx, pve, actor, "machine.snapshot_rollback", id, upid, details).await
}

/// Deletes a snapshot (owner or admin); its children take its parent.
pub async fn delete(cx: &SnapshotCtx<'_>, actor: &Actor, id: i64, name: &str) -> Result<Outcome, ServiceError> {
    let (m, pve, ty, vmid) = ready_machine(cx, actor, id, "snapshot_delete").await?;
    refuse_if_locked(pve, &m, ty, vmid).await?;
    let entries = pve.snapshot_list(&m.node, ty, vmid).await.map_err(lost_machines::pve_error)?;
    if !entries.iter().any(|e| !e.is_current() && e.name == name) {
        return Err(ServiceError::NotFound);
    }
    let upid = pve.snapshot_delete(&m.node, ty, vmid, name).await.map_err(lost_machines::pve_error)?;
    let details = json!({"name": name, "vmid": vmid, "node": m.node});
    finish(cx, pve, actor, "machine.snapshot_delete", id, upid, details).await
}

/// Every node of the tree, depth first.
pub fn flatten(nodes: &[SnapshotNode]) -> Vec<&SnapshotNode> {
    nodes.iter().flat_map(|n| std::iter::once(n).chain(flatten(&n.children))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::pve::wire::SnapshotEntry;

    fn e(name: &str, parent: Option<&str>, t: i64) -> SnapshotEntry {
        SnapshotEntry {
            name: name.into(),
            parent: parent.map(Into::into),
            snaptime: (name != "current").then_some(t),
            description: String::new(),
            vmstate: false,
            snapstate: None,
        }
    }

    #[test]
    fn the_flat_list_becomes_a_tree_with_current_marked() {
        let list = vec![e("b", Some("a"), 2), e("a", None, 1), e("c", Some("a"), 3), e("current", Some("b"), 0)];
        let t = tree(list, GuestType::Lxc, false, 5);
        assert_eq!(t.count, 3);
        assert_eq!(t.roots.len(), 1);
        assert_eq!(t.roots[0].children.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        assert!(t.roots[0].children[0].is_current_parent);
        assert_eq!(t.newest.as_deref(), Some("c"));
        assert_eq!(task_refusal("VM is locked (snapshot)"), GuestRefusal::Locked("snapshot".into()));
    }

    #[test]
    fn the_default_limit_is_read_and_bounded() {
        assert_eq!(default_limit(&BTreeMap::new()), Ok(DEFAULT_LIMIT));
        let raw = |v: &str| BTreeMap::from([("snapshot_limit_default".to_owned(), v.to_owned())]);
        assert_eq!(default_limit(&raw("12")), Ok(12));
        assert!(default_limit(&raw("-1")).is_err() && default_limit(&raw("101")).is_err());
    }
}
