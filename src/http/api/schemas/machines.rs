//! Machines, their live state, power actions, and lost machines.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use crate::domain::guest::GuestType;
use crate::domain::lost::LostReason;

/// What kind of guest a machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum GuestKindName {
    /// An LXC container.
    Lxc,
    /// A QEMU virtual machine.
    Qemu,
}

/// A provisioned machine.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Machine {
    pub id: i64,
    pub request_id: i64,
    pub user_id: i64,
    /// A container or a virtual machine.
    pub kind: GuestKindName,
    pub hostname: String,
    pub node: String,
    pub vmid: Option<i64>,
    pub ipv4: Option<String>,
    pub login_user: Option<String>,
    /// The installer ISO in the CD drive of a VM made from an ISO (e.g. `local:iso/debian-12.iso`), until
    /// its owner detaches it (`POST /machines/{id}/detach-iso`).
    pub install_media: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Set while the machine is lost: the guest at its VMID no longer carries its marker, or is gone.
    pub lost: Option<LostMachine>,
    /// When the machine expires and how far its lease went; absent: no expiry.
    pub lease: Option<Lease>,
}

/// How far a lease went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum LeaseStageName {
    /// Nothing done yet.
    Active,
    /// The first warning was given.
    WarnedFirst,
    /// The second warning was given.
    WarnedSecond,
    /// Expired: stopped; it can still be extended until the grace period ends.
    Stopped,
    /// The grace period ended: the machine is being deleted.
    Reclaimed,
}

/// A machine's lease.
#[derive(Debug, Object)]
pub struct Lease {
    /// When the machine is stopped; it is deleted after the grace period.
    pub expires_at: DateTime<Utc>,
    pub stage: LeaseStageName,
    /// The owner was warned that the expiry is near (and it has not come yet).
    pub warned: bool,
    /// The expiry came: the machine was stopped.
    pub expired: bool,
}

impl Lease {
    fn of(m: &entities::machine::Model) -> Option<Lease> {
        use crate::domain::lease::LeaseStage as S;
        let stage = S::parse(&m.lease_stage).unwrap_or(S::Active);
        Some(Lease {
            expires_at: m.expires_at?,
            stage: match stage {
                S::Active => LeaseStageName::Active,
                S::WarnedFirst => LeaseStageName::WarnedFirst,
                S::WarnedSecond => LeaseStageName::WarnedSecond,
                S::Stopped => LeaseStageName::Stopped,
                S::Reclaimed => LeaseStageName::Reclaimed,
            },
            warned: stage.warned(),
            expired: stage >= S::Stopped,
        })
    }
}

/// A new lease: `days` from now, or `no_expiry` (admins).
#[derive(Debug, Object)]
pub struct LeaseBody {
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "3650")))]
    pub days: Option<u32>,
    #[oai(nullable)]
    pub no_expiry: Option<bool>,
}

/// Why a machine is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum LostReasonName {
    /// Another guest has the VMID now.
    Replaced,
    /// No guest has the VMID any more.
    Gone,
}

/// A lost machine: nothing is done to the guest at its VMID; an admin re-adopts or releases it.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LostMachine {
    pub reason: LostReasonName,
    /// The explanation, naming the node and VMID.
    pub message: String,
    pub since: DateTime<Utc>,
}

impl LostMachine {
    fn of(m: &entities::machine::Model) -> Option<LostMachine> {
        let reason = LostReason::parse(m.lost_reason.as_deref()?)?;
        Some(LostMachine {
            reason: match reason {
                LostReason::Replaced => LostReasonName::Replaced,
                LostReason::Gone => LostReasonName::Gone,
            },
            message: reason.describe(&m.node, m.vmid.unwrap_or_default()),
            since: m.lost_at?,
        })
    }
}

impl From<entities::machine::Model> for Machine {
    fn from(m: entities::machine::Model) -> Self {
        let lost = LostMachine::of(&m);
        let lease = Lease::of(&m);
        // The column only ever holds `lxc` or `qemu`; an unknown text is read as the older default.
        let kind = match GuestType::parse(&m.kind) {
            Some(GuestType::Qemu) => GuestKindName::Qemu,
            _ => GuestKindName::Lxc,
        };
        Machine {
            id: m.id,
            request_id: m.request_id,
            user_id: m.user_id,
            kind,
            hostname: m.hostname,
            node: m.node,
            vmid: m.vmid,
            ipv4: m.ipv4,
            login_user: m.login_user,
            install_media: m.install_media,
            created_at: m.created_at,
            lost,
            lease,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MachinePage {
    pub items: Vec<MachineListed>,
    pub next_cursor: Option<i64>,
}

/// A machine in a list, with its live state, catalog entry and owner.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MachineListed {
    #[oai(flatten)]
    pub machine: Machine,
    /// As Proxmox VE reports it, or `unknown` when it cannot be asked.
    pub state: PowerStateName,
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
    pub owner: String,
}

impl From<crate::services::machines::MachineRow> for MachineListed {
    fn from(r: crate::services::machines::MachineRow) -> Self {
        MachineListed {
            machine: r.machine.into(),
            state: PowerStateName::from_pve(&r.state),
            template_id: r.template_id,
            template_name: r.template_name,
            owner: r.owner,
        }
    }
}

/// The live state a machines list is filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum PowerStateName {
    Running,
    Stopped,
    /// Proxmox VE does not list the guest, or cannot be asked.
    Unknown,
}

impl PowerStateName {
    /// From Proxmox VE's `status` (`running` or `stopped`); anything else, or nothing, is `unknown`.
    pub fn from_pve(status: &str) -> Self {
        match status {
            "running" => PowerStateName::Running,
            "stopped" => PowerStateName::Stopped,
            _ => PowerStateName::Unknown,
        }
    }
}

impl From<PowerStateName> for crate::services::machines::PowerState {
    fn from(s: PowerStateName) -> Self {
        use crate::services::machines::PowerState;
        match s {
            PowerStateName::Running => PowerState::Running,
            PowerStateName::Stopped => PowerState::Stopped,
            PowerStateName::Unknown => PowerState::Unknown,
        }
    }
}

/// A machine with what PVE says about it now, and (for its owner) its login.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MachineDetail {
    #[oai(flatten)]
    pub machine: Machine,
    /// `unknown` when PVE cannot be asked (or the machine is lost).
    pub state: PowerStateName,
    pub uptime_secs: Option<u64>,
    pub cpus: Option<f64>,
    pub max_memory_bytes: Option<u64>,
    /// The generated password of `login_user`; only in the owner's answer.
    #[oai(skip_serializing_if_is_none)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum PowerActionName {
    Start,
    Shutdown,
    /// A hard stop ("Power off").
    Stop,
    Reboot,
    /// A hard reset; virtual machines only (409 `vm-only` for a container).
    Reset,
}
