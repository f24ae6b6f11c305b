//! Bulk runs: one action on many machines, each settled on its own.

use poem_openapi::{Enum, Object};

use crate::domain::bulk::{BulkAction, ItemState, Reason};
use crate::services::bulk::{Item, Run};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum BulkActionName {
    Start,
    Shutdown,
    /// A hard stop ("Power off").
    Stop,
    Reboot,
    /// Delete the machine (its guest and disks).
    Delete,
}

impl From<BulkActionName> for BulkAction {
    fn from(a: BulkActionName) -> Self {
        match a {
            BulkActionName::Start => BulkAction::Start,
            BulkActionName::Shutdown => BulkAction::Shutdown,
            BulkActionName::Stop => BulkAction::Stop,
            BulkActionName::Reboot => BulkAction::Reboot,
            BulkActionName::Delete => BulkAction::Delete,
        }
    }
}

impl From<BulkAction> for BulkActionName {
    fn from(a: BulkAction) -> Self {
        match a {
            BulkAction::Start => BulkActionName::Start,
            BulkAction::Shutdown => BulkActionName::Shutdown,
            BulkAction::Stop => BulkActionName::Stop,
            BulkAction::Reboot => BulkActionName::Reboot,
            BulkAction::Delete => BulkActionName::Delete,
        }
    }
}

/// Where one machine of a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum BulkItemState {
    Queued,
    Running,
    Done,
    /// Not attempted: see `reason`.
    Refused,
    /// Attempted and failed: see `reason` and `message` (Proxmox VE's words).
    Failed,
}

impl From<ItemState> for BulkItemState {
    fn from(s: ItemState) -> Self {
        match s {
            ItemState::Queued => BulkItemState::Queued,
            ItemState::Running => BulkItemState::Running,
            ItemState::Done => BulkItemState::Done,
            ItemState::Refused => BulkItemState::Refused,
            ItemState::Failed => BulkItemState::Failed,
        }
    }
}

/// Why an item was refused or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum BulkReason {
    /// Not your machine, or no such machine.
    NotFound,
    Deleted,
    /// Its VMID names another guest now.
    Lost,
    NotRunning,
    AlreadyRunning,
    /// Another operation holds the guest; `message` names the lock.
    Locked,
    /// The machine's state does not allow it now.
    NotNow,
    /// Proxmox VE refused; `message` has its words.
    Refused,
    /// Proxmox VE's task failed; `message` has its exit status.
    TaskFailed,
    TimedOut,
    /// Proxmox VE could not be reached.
    Unreachable,
    /// The account that started the run no longer exists.
    NoActor,
}

impl From<Reason> for BulkReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::NotFound => BulkReason::NotFound,
            Reason::Deleted => BulkReason::Deleted,
            Reason::Lost => BulkReason::Lost,
            Reason::NotRunning => BulkReason::NotRunning,
            Reason::AlreadyRunning => BulkReason::AlreadyRunning,
            Reason::Locked => BulkReason::Locked,
            Reason::NotNow => BulkReason::NotNow,
            Reason::Refused => BulkReason::Refused,
            Reason::TaskFailed => BulkReason::TaskFailed,
            Reason::TimedOut => BulkReason::TimedOut,
            Reason::Unreachable => BulkReason::Unreachable,
            Reason::NoActor => BulkReason::NoActor,
        }
    }
}

/// Start a bulk run.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewBulkRun {
    pub action: BulkActionName,
    /// The machines, each once (duplicates are dropped); 1 to 500.
    #[oai(validator(min_items = 1, max_items = 500))]
    pub machine_ids: Vec<i64>,
}

/// One machine of a run.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkRunItem {
    pub machine_id: i64,
    /// The machine's name, when it is yours (or you are an admin).
    pub hostname: Option<String>,
    pub state: BulkItemState,
    pub reason: Option<BulkReason>,
    pub message: Option<String>,
}

/// A bulk run and where each of its machines stands.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkRun {
    pub id: i64,
    pub action: BulkActionName,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Every item has settled (done, refused or failed).
    pub finished: bool,
    pub items: Vec<BulkRunItem>,
}

impl From<Item> for BulkRunItem {
    fn from(i: Item) -> Self {
        BulkRunItem {
            machine_id: i.machine_id,
            hostname: i.machine.map(|m| m.hostname),
            state: i.state.into(),
            reason: i.reason.map(Into::into),
            message: i.message,
        }
    }
}

impl From<Run> for BulkRun {
    fn from(r: Run) -> Self {
        let finished = r.finished();
        BulkRun {
            id: r.id,
            action: r.action.into(),
            created_at: r.created_at,
            finished,
            items: r.items.into_iter().map(Into::into).collect(),
        }
    }
}
