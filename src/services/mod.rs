//! Use cases. Each public function is one transaction; state changes write their audit entry in it.

pub mod addresses;
pub mod adoption;
pub mod approval_rules;
pub mod audit;
pub mod auth;
pub mod bulk;
pub mod catalog;
pub mod console_sessions;
pub mod consoles;
pub mod groups;
pub mod guac_sync_runs;
pub mod guest_agents;
pub mod identities;
pub mod install_media;
pub mod leases;
pub mod live;
pub mod locks;
pub mod lost_machines;
pub mod machines;
pub mod notifications;
pub mod overview;
pub mod pending_sign_ins;
pub mod pve_guests;
pub mod quotas;
pub mod requests;
pub mod sign_in;
pub mod sign_in_policy;
pub mod slots;
pub mod snapshots;
pub mod throttle;
pub mod tokens;
pub mod users;

use sea_orm::DbErr;

pub use crate::domain::FieldErrors;
use crate::domain::request_status::IllegalTransition;
use crate::domain::roles::Role;

/// The person (or script, through a token) acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub language: Option<String>,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }

    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.is_admin() { Ok(()) } else { Err(ServiceError::Forbidden) }
    }
}

impl TryFrom<entities::user::Model> for Actor {
    type Error = ServiceError;
    fn try_from(u: entities::user::Model) -> Result<Self, ServiceError> {
        let role =
            Role::parse(&u.role).ok_or_else(|| ServiceError::Internal(format!("user {} has unknown role", u.id)))?;
        Ok(Actor { id: u.id, username: u.username, role, language: u.language })
    }
}

/// Errors of the service layer; `http::errors` maps each to a status, exhaustively.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// Someone else changed the subject first (lost a race).
    #[error("{0}")]
    Conflict(String),
    /// PVE refused an action on a machine's guest (containers and VMs word it differently; this does not).
    #[error("{0}")]
    GuestRefused(GuestRefusal),
    /// The machine's VMID no longer names its container; nothing was done to the guest found there.
    #[error("{}", reason.describe(node, *vmid))]
    MachineLost { reason: crate::domain::lost::LostReason, node: String, vmid: i64 },
    /// The machine already keeps as many snapshots as its catalog entry (or the default) allows.
    #[error("the machine already has {limit} snapshots, its limit; delete one first")]
    SnapshotLimit { limit: u32 },
    /// A guest was not adopted, and why; nothing was left behind.
    #[error("{0}")]
    AdoptRefused(adoption::AdoptRefusal),
    /// The account a sign-in would make has a system account's name (`domain::login_name`); nothing
    /// was made.
    #[error(transparent)]
    ReservedName(#[from] crate::domain::login_name::LoginNameError),
    #[error("authentication failed")]
    Unauthenticated,
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: i64 },
    /// A console session or console URL would break a per-user cap; nothing was asked of PVE.
    #[error("{0}")]
    ConsoleCap(crate::domain::console_caps::CapReached),
    /// A system the use case needs (Proxmox VE) did not answer, or is not configured; nothing was changed.
    #[error("{0}")]
    Unavailable(String),
    #[error("database error")]
    Db(#[from] DbErr),
    #[error("job queue error")]
    Jobs(#[from] jobs::JobError),
    #[error("{0}")]
    Internal(String),
}

/// Why an action on a machine's guest was refused, the same words whether PVE said `CT 101 not running`
/// or `VM 101 not running`, synchronously or (QEMU) only inside the task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestRefusal {
    #[error("the machine is not running")]
    NotRunning,
    #[error("the machine is already running")]
    AlreadyRunning,
    /// Another operation holds the guest's config (`backup`, `snapshot`…).
    #[error("the machine is busy ({0})")]
    Locked(String),
    /// The action exists only for virtual machines (a reset of a container).
    #[error("the action is only for virtual machines")]
    VmOnly,
    /// Any other refusal, in PVE's words.
    #[error("Proxmox VE refused: {0}")]
    Other(String),
}

impl From<FieldErrors> for ServiceError {
    fn from(e: FieldErrors) -> Self {
        ServiceError::Invalid(e)
    }
}

impl From<crate::domain::FieldError> for ServiceError {
    fn from(e: crate::domain::FieldError) -> Self {
        ServiceError::Invalid(FieldErrors(vec![e]))
    }
}

/// One page of a keyset-paginated list: pass `next_cursor` back to get the following page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<i64>,
}

/// Page size bounds: big pages cost more than they help (see the README's figures).
pub const DEFAULT_PAGE: u64 = 50;
pub const MAX_PAGE: u64 = 100;

/// A search term as the database may compare it: PostgreSQL's text cannot hold NUL (it refuses the whole
/// query), and no stored text has one, so a term with NUL becomes one that matches nothing.
pub fn search_term(term: &str) -> String {
    term.replace('\0', "\u{FFFD}")
}

pub fn page_limit(limit: Option<u64>) -> u64 {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

/// Cuts a fetched `limit + 1` rows down to `limit` and derives the cursor from the last id.
pub fn into_page<T>(mut rows: Vec<T>, limit: u64, id: impl Fn(&T) -> i64) -> Page<T> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(&id) } else { None };
    Page { items: rows, next_cursor }
}
