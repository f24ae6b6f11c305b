//! Bulk actions: one action on many machines at once, each machine on its own so that one refusal or
//! failure never stops the others.

/// The most machines one bulk run may take: a whole lab, bounded so one form cannot queue unbounded work.
pub const MAX_ITEMS: usize = 500;

/// What a bulk run does to each of its machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BulkAction {
    Start,
    Shutdown,
    /// A hard stop, shown as "Power off".
    Stop,
    Reboot,
    Delete,
}

impl BulkAction {
    pub const ALL: [BulkAction; 5] =
        [BulkAction::Start, BulkAction::Shutdown, BulkAction::Stop, BulkAction::Reboot, BulkAction::Delete];

    pub fn parse(s: &str) -> Option<BulkAction> {
        BulkAction::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Start => "start",
            BulkAction::Shutdown => "shutdown",
            BulkAction::Stop => "stop",
            BulkAction::Reboot => "reboot",
            BulkAction::Delete => "delete",
        }
    }

    /// Whether the page asks before doing it: a power off loses unsaved work, a delete loses everything.
    pub fn needs_confirmation(self) -> bool {
        matches!(self, BulkAction::Stop | BulkAction::Delete)
    }
}

/// Where one machine of a bulk run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemState {
    /// Its job has not started yet.
    Queued,
    /// Its job asked PVE (or, for a delete, the deletion is under way).
    Running,
    Done,
    /// Not attempted: not the actor's machine, already in the wanted state, locked, lost…
    Refused,
    /// Attempted, and PVE (or the deletion) failed; the message says why.
    Failed,
}

impl ItemState {
    pub const ALL: [ItemState; 5] =
        [ItemState::Queued, ItemState::Running, ItemState::Done, ItemState::Refused, ItemState::Failed];

    pub fn parse(s: &str) -> Option<ItemState> {
        ItemState::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Queued => "queued",
            ItemState::Running => "running",
            ItemState::Done => "done",
            ItemState::Refused => "refused",
            ItemState::Failed => "failed",
        }
    }

    /// Whether nothing more will happen to the item.
    pub fn is_final(self) -> bool {
        matches!(self, ItemState::Done | ItemState::Refused | ItemState::Failed)
    }
}

/// Why an item was refused or failed; pages translate it, the API gives it as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not the actor's machine, or no such machine: the same answer either way.
    NotFound,
    Deleted,
    /// Its VMID names another guest now, or none.
    Lost,
    NotRunning,
    AlreadyRunning,
    /// Another operation holds the guest (the message names the lock).
    Locked,
    /// The machine is in a state that does not allow it (being deleted, still provisioning…).
    NotNow,
    /// PVE refused the call; the message has its words.
    Refused,
    /// PVE's task ran and failed; the message has its exit status.
    TaskFailed,
    /// PVE's task did not end within the deadline.
    TimedOut,
    /// PVE could not be reached, attempt after attempt.
    Unreachable,
    /// The account that started the run is gone.
    NoActor,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::NotFound,
        Reason::Deleted,
        Reason::Lost,
        Reason::NotRunning,
        Reason::AlreadyRunning,
        Reason::Locked,
        Reason::NotNow,
        Reason::Refused,
        Reason::TaskFailed,
        Reason::TimedOut,
        Reason::Unreachable,
        Reason::NoActor,
    ];

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotFound => "not_found",
            Reason::Deleted => "deleted",
            Reason::Lost => "lost",
            Reason::NotRunning => "not_running",
            Reason::AlreadyRunning => "already_running",
            Reason::Locked => "locked",
            Reason::NotNow => "not_now",
            Reason::Refused => "refused",
            Reason::TaskFailed => "task_failed",
            Reason::TimedOut => "timed_out",
            Reason::Unreachable => "unreachable",
            Reason::NoActor => "no_actor",
        }
    }
}

/// The machine ids of a submission: each once, in the order given; empty or too many is an error.
pub fn machine_ids(given: &[i64]) -> Result<Vec<i64>, BulkInputError> {
    let mut seen = std::collections::HashSet::new();
    let ids: Vec<i64> = given.iter().copied().filter(|id| seen.insert(*id)).collect();
    match ids.len() {
        0 => Err(BulkInputError::NoMachines),
        n if n > MAX_ITEMS => Err(BulkInputError::TooMany { max: MAX_ITEMS }),
        _ => Ok(ids),
    }
}

/// Why a bulk submission was refused as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BulkInputError {
    #[error("select at least one machine")]
    NoMachines,
    #[error("at most {max} machines at once")]
    TooMany { max: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_states_round_trip() {
        for a in BulkAction::ALL {
            assert_eq!(BulkAction::parse(a.as_str()), Some(a));
        }
        for s in ItemState::ALL {
            assert_eq!(ItemState::parse(s.as_str()), Some(s));
        }
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(BulkAction::parse("reset"), None);
        assert_eq!(ItemState::parse("DONE"), None);
    }

    #[test]
    fn machine_ids_are_deduplicated_and_bounded() {
        assert_eq!(machine_ids(&[3, 1, 3, 2, 1]), Ok(vec![3, 1, 2]));
        assert_eq!(machine_ids(&[]), Err(BulkInputError::NoMachines));
        let many: Vec<i64> = (0..=MAX_ITEMS as i64).collect();
        assert_eq!(machine_ids(&many), Err(BulkInputError::TooMany { max: MAX_ITEMS }));
        assert_eq!(machine_ids(&many[..MAX_ITEMS]).map(|v| v.len()), Ok(MAX_ITEMS));
    }
}
