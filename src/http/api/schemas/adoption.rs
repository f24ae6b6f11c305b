//! Adopting guests the cluster already has.

use poem_openapi::Object;

use super::{GuestKindName, Text};
use crate::domain::guest::GuestType;
use crate::services::adoption::UnmanagedGuest as Found;

/// A guest of the cluster that proxdesk does not manage (templates left out).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UnmanagedGuest {
    pub node: String,
    pub vmid: u64,
    pub kind: GuestKindName,
    pub name: String,
    /// Proxmox VE's word: `running`, `stopped`…
    pub status: String,
    pub tags: Vec<String>,
    pub cores: Option<u32>,
    pub memory_mib: Option<u64>,
    pub disk_gib: Option<u64>,
    /// A lock Proxmox VE holds on it (`backup`, `snapshot`…); adopting waits until it is gone.
    pub lock: Option<String>,
}

impl From<Found> for UnmanagedGuest {
    fn from(g: Found) -> Self {
        UnmanagedGuest {
            node: g.node,
            vmid: g.vmid,
            kind: match g.kind {
                GuestType::Lxc => GuestKindName::Lxc,
                GuestType::Qemu => GuestKindName::Qemu,
            },
            name: g.name,
            status: g.status,
            tags: g.tags,
            cores: g.cores,
            memory_mib: g.memory_mib,
            disk_gib: g.disk_gib,
            lock: g.lock,
        }
    }
}

/// Adopt a guest for an owner.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AdoptBody {
    pub node: Text,
    #[oai(validator(minimum(value = "100"), maximum(value = "999999999")))]
    pub vmid: u64,
    /// Must be the guest's kind.
    pub kind: GuestKindName,
    /// The owner's username.
    pub owner: Text,
    /// A catalog entry of the guest's kind, whose limits apply to the machine (snapshots…); absent:
    /// the defaults.
    #[oai(nullable)]
    pub template_id: Option<i64>,
    /// The name proxdesk shows; absent: the guest's own name.
    #[oai(nullable)]
    pub hostname: Option<Text>,
    /// Adopt even when the guest puts the owner over their quota (otherwise 409 `over-quota`).
    #[oai(nullable, default)]
    pub beyond_quota: bool,
}
