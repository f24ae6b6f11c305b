//! A machine's snapshots: the tree, and what taking one asks for.

use poem_openapi::{Enum, Object};

use super::Text;
use crate::services::snapshots::{Outcome, SnapshotNode, SnapshotTree};

/// One snapshot, with the ones taken from it.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Snapshot {
    /// PVE's name: 2–40 of `a-z A-Z 0-9 _ -`, starting with a letter.
    pub name: String,
    pub description: String,
    /// When it was taken (epoch seconds).
    pub taken_at: Option<i64>,
    /// A VM's snapshot that saved the memory too.
    pub with_ram: bool,
    /// The machine's present state descends directly from this snapshot (PVE's `current`).
    pub current: bool,
    pub children: Vec<Snapshot>,
}

impl From<&SnapshotNode> for Snapshot {
    fn from(n: &SnapshotNode) -> Self {
        Snapshot {
            name: n.name.clone(),
            description: n.description.clone(),
            taken_at: n.taken_at,
            with_ram: n.with_ram,
            current: n.is_current_parent,
            children: n.children.iter().map(Into::into).collect(),
        }
    }
}

/// A machine's snapshots as a tree, and how many it may keep.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SnapshotList {
    /// The snapshots without a parent, each with its descendants.
    pub roots: Vec<Snapshot>,
    pub count: u32,
    /// How many snapshots the machine may keep (its catalog entry's limit, or the server's default).
    pub limit: u32,
    /// The snapshot the present state descends from, if any.
    pub current_parent: Option<String>,
    /// The newest snapshot, the target of `rollback-newest`.
    pub newest: Option<String>,
}

impl From<SnapshotTree> for SnapshotList {
    fn from(t: SnapshotTree) -> Self {
        SnapshotList {
            roots: t.roots.iter().map(Into::into).collect(),
            count: t.count as u32,
            limit: t.limit,
            current_parent: t.current_parent,
            newest: t.newest,
        }
    }
}

/// A snapshot to take.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewSnapshotBody {
    /// 2–40 of `a-z A-Z 0-9 _ -`, starting with a letter; not `current` (nor `vzdump` for containers,
    /// `pending` for VMs).
    #[oai(validator(max_length = 100))]
    pub name: Text,
    /// At most 1000 characters.
    #[oai(nullable, default, validator(max_length = 4000))]
    pub description: Text,
    /// VMs only, and only while running: save the memory too.
    #[oai(nullable, default)]
    pub with_ram: bool,
}

/// How far a snapshot operation got while the request waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum SnapshotOutcome {
    /// Proxmox VE finished it.
    Done,
    /// Proxmox VE is still working on it; the list will show the result.
    StillRunning,
}

/// The result of taking, rolling back or deleting a snapshot.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SnapshotResult {
    pub outcome: SnapshotOutcome,
    /// The Proxmox VE task, while it still runs.
    pub task: Option<String>,
}

impl From<Outcome> for SnapshotResult {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Done => SnapshotResult { outcome: SnapshotOutcome::Done, task: None },
            Outcome::StillRunning { upid } => {
                SnapshotResult { outcome: SnapshotOutcome::StillRunning, task: Some(upid) }
            }
        }
    }
}
