//! Live pages: a change signal every state change publishes, what each live page watches, and the
//! watch that turns both into a stream of fingerprints (one per change of what the page shows).
//!
//! The signal is in-process and best effort: it only says "look again". Changes made by another
//! replica or outside proxdesk are found by the watch's slow tick, and a receiver that lagged behind
//! treats the lag as a change.

mod snapshot;
mod streams;
mod watch;

use std::sync::LazyLock;

use tokio::sync::broadcast;

pub use snapshot::{LivePage, Snapshot};
pub use streams::{Slot, Streams};
pub use watch::{STALE, Timing, watch};

/// Something changed about one subject (an audit entry was written for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub subject_type: String,
    pub subject_id: i64,
    /// Who made the change; `None` for the system (the job engine).
    pub actor_id: Option<i64>,
}

// One channel per process: every app in it shares the signal, and a watch whose page does not show a
// subject ignores its changes. Old changes are worth nothing, so a small buffer is enough.
static CHANGES: LazyLock<broadcast::Sender<Change>> = LazyLock::new(|| broadcast::channel(256).0);

/// Tells every watching page that `change` happened (nobody listening is fine).
pub fn publish(change: Change) {
    let _ = CHANGES.send(change);
}

/// A receiver of every change published from now on.
pub fn subscribe() -> broadcast::Receiver<Change> {
    CHANGES.subscribe()
}
