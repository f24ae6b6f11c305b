//! The provisioning checkpoint: what is already done, so a resumed job skips it.

use serde::{Deserialize, Serialize};

/// Stored as the job's checkpoint after every step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The VMID chosen for the container (saved before the clone is sent).
    pub vmid: Option<u64>,
    /// The clone task, once PVE accepted the clone.
    pub clone_upid: Option<String>,
    pub cloned: bool,
    pub configured: bool,
    pub resized: bool,
    pub started: bool,
    pub ipv4: Option<String>,
    /// The owner's password, sealed with the instance key (never stored in clear).
    pub password_sealed: Option<String>,
    pub finished: bool,
}
