//! The provisioning checkpoint: what is already done, so a resumed job skips it.

use serde::{Deserialize, Serialize};

/// Stored as the job's checkpoint after every step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The node the guest is made on when the catalog entry lets proxdesk choose (ISO VMs); `None`:
    /// the entry's node.
    #[serde(default)]
    pub node: Option<String>,
    /// The VMID chosen for the guest (saved before the clone or create is sent).
    pub vmid: Option<u64>,
    /// The clone task (`vzclone`/`qmclone`), or an ISO VM's `qmcreate` task, once PVE accepted it.
    pub clone_upid: Option<String>,
    /// The guest exists and is complete: cloned, or created.
    pub cloned: bool,
    pub configured: bool,
    pub resized: bool,
    pub started: bool,
    pub ipv4: Option<String>,
    /// The owner's password, sealed with the instance key (never stored in clear).
    pub password_sealed: Option<String>,
    pub finished: bool,
}

impl Progress {
    /// The node the guest lives on: the one chosen for it, else the catalog entry's.
    pub fn node_or<'a>(&'a self, entry_node: &'a str) -> &'a str {
        self.node.as_deref().unwrap_or(entry_node)
    }
}
