//! The API's own types: never sea-orm models as-is.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use crate::domain::lost::LostReason;
use crate::domain::request_status::RequestStatus;
use crate::services::requests::RequestRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Provisioning,
    Ready,
    Failed,
    Rejected,
    Cancelled,
    Deleting,
    Deleted,
    /// Its machine's VMID no longer names its container; an admin re-adopts or releases it.
    Lost,
}

impl From<Status> for RequestStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => RequestStatus::Pending,
            Status::Approved => RequestStatus::Approved,
            Status::Provisioning => RequestStatus::Provisioning,
            Status::Ready => RequestStatus::Ready,
            Status::Failed => RequestStatus::Failed,
            Status::Rejected => RequestStatus::Rejected,
            Status::Cancelled => RequestStatus::Cancelled,
            Status::Deleting => RequestStatus::Deleting,
            Status::Deleted => RequestStatus::Deleted,
            Status::Lost => RequestStatus::Lost,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum RoleName {
    User,
    Admin,
}

/// The caller.
#[derive(Debug, Object)]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub role: RoleName,
    pub language: Option<String>,
}

/// A catalog template.
#[derive(Debug, Object)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub node: String,
    pub vmid: i64,
    pub default_cores: i32,
    pub max_cores: i32,
    pub default_memory_mib: i32,
    pub max_memory_mib: i32,
    pub default_disk_gib: i32,
    pub max_disk_gib: i32,
    pub full_clone: bool,
    pub enabled: bool,
    pub net0: String,
    pub storage: Option<String>,
    /// `node` (`pct exec` on the node), `guest` (SSH to the container) or `none`.
    pub finish_mode: String,
}

impl From<entities::template::Model> for Template {
    fn from(t: entities::template::Model) -> Self {
        Template {
            id: t.id,
            name: t.name,
            description: t.description,
            node: t.node,
            vmid: t.vmid,
            default_cores: t.default_cores,
            max_cores: t.max_cores,
            default_memory_mib: t.default_memory_mib,
            max_memory_mib: t.max_memory_mib,
            default_disk_gib: t.default_disk_gib,
            max_disk_gib: t.max_disk_gib,
            full_clone: t.full_clone,
            enabled: t.enabled,
            net0: t.net0,
            storage: t.storage,
            finish_mode: t.finish_mode,
        }
    }
}

/// A template as an admin writes it.
#[derive(Debug, Object)]
pub struct TemplateBody {
    pub name: String,
    #[oai(default)]
    pub description: String,
    pub node: String,
    pub vmid: i64,
    pub default_cores: i32,
    pub max_cores: i32,
    pub default_memory_mib: i32,
    pub max_memory_mib: i32,
    pub default_disk_gib: i32,
    pub max_disk_gib: i32,
    #[oai(default = "default_true")]
    pub full_clone: bool,
    #[oai(default = "default_true")]
    pub enabled: bool,
    /// Default `name=eth0,bridge=vmbr0,ip=dhcp`.
    pub net0: Option<String>,
    pub storage: Option<String>,
    /// `node` (default), `guest` or `none`.
    pub finish_mode: Option<String>,
}

fn default_true() -> bool {
    true
}

/// A new request.
#[derive(Debug, Object)]
pub struct CreateRequest {
    pub template_id: i64,
    pub hostname: String,
    pub cores: i32,
    pub memory_mib: i32,
    pub disk_gib: i32,
    pub purpose: String,
    pub ssh_public_key: Option<String>,
}

/// A request for a machine.
#[derive(Debug, Object)]
pub struct Request {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub template_id: i64,
    pub template_name: String,
    pub hostname: String,
    pub cores: i32,
    pub memory_mib: i32,
    pub disk_gib: i32,
    pub purpose: String,
    pub ssh_public_key: Option<String>,
    pub status: String,
    /// Why it was rejected, why provisioning or deletion failed, or why its machine is lost.
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<RequestRow> for Request {
    fn from(row: RequestRow) -> Self {
        let r = row.request;
        Request {
            id: r.id,
            user_id: r.user_id,
            username: row.username,
            template_id: r.template_id,
            template_name: row.template_name,
            hostname: r.hostname,
            cores: r.cores,
            memory_mib: r.memory_mib,
            disk_gib: r.disk_gib,
            purpose: r.purpose,
            ssh_public_key: r.ssh_public_key,
            status: r.status,
            reason: r.reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A request with its timeline.
#[derive(Debug, Object)]
pub struct RequestDetail {
    #[oai(flatten)]
    pub request: Request,
    pub timeline: Vec<AuditEntry>,
}

/// One page of requests; pass `next_cursor` as `cursor` for the next.
#[derive(Debug, Object)]
pub struct RequestPage {
    pub items: Vec<Request>,
    pub next_cursor: Option<i64>,
}

/// Resource changes an admin makes while approving (all optional).
#[derive(Debug, Default, Object)]
pub struct ApproveBody {
    pub cores: Option<i32>,
    pub memory_mib: Option<i32>,
    pub disk_gib: Option<i32>,
}

#[derive(Debug, Object)]
pub struct RejectBody {
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum BulkAction {
    Approve,
    Reject,
}

/// Approve or reject several pending requests at once.
#[derive(Debug, Object)]
pub struct BulkBody {
    pub ids: Vec<i64>,
    pub action: BulkAction,
    /// Required when rejecting.
    pub reason: Option<String>,
}

#[derive(Debug, Object)]
pub struct BulkItem {
    pub id: i64,
    pub ok: bool,
    /// Problem type when it failed, e.g. `/problems/illegal-transition`.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

#[derive(Debug, Object)]
pub struct BulkResult {
    pub results: Vec<BulkItem>,
}

/// A provisioned machine.
#[derive(Debug, Object)]
pub struct Machine {
    pub id: i64,
    pub request_id: i64,
    pub user_id: i64,
    pub hostname: String,
    pub node: String,
    pub vmid: Option<i64>,
    pub ipv4: Option<String>,
    pub login_user: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Set while the machine is lost: the guest at its VMID no longer carries its marker, or is gone.
    pub lost: Option<LostMachine>,
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
        Machine {
            id: m.id,
            request_id: m.request_id,
            user_id: m.user_id,
            hostname: m.hostname,
            node: m.node,
            vmid: m.vmid,
            ipv4: m.ipv4,
            login_user: m.login_user,
            created_at: m.created_at,
            lost,
        }
    }
}

#[derive(Debug, Object)]
pub struct MachinePage {
    pub items: Vec<Machine>,
    pub next_cursor: Option<i64>,
}

/// One audit log entry.
#[derive(Debug, Object)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: i64,
    pub details: serde_json::Value,
}

impl From<entities::audit_entry::Model> for AuditEntry {
    fn from(e: entities::audit_entry::Model) -> Self {
        AuditEntry {
            id: e.id,
            at: e.at,
            actor: e.actor_name,
            action: e.action,
            subject_type: e.subject_type,
            subject_id: e.subject_id,
            details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, Object)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<i64>,
}

/// An API token (without its secret).
#[derive(Debug, Object)]
pub struct Token {
    pub id: i64,
    pub name: String,
    /// First characters, to tell tokens apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<entities::api_token::Model> for Token {
    fn from(t: entities::api_token::Model) -> Self {
        Token { id: t.id, name: t.name, prefix: t.prefix, created_at: t.created_at, last_used_at: t.last_used_at }
    }
}

#[derive(Debug, Object)]
pub struct CreateToken {
    pub name: String,
}

/// A new token; `token` is shown this once only.
#[derive(Debug, Object)]
pub struct NewToken {
    pub token: String,
    #[oai(flatten)]
    pub info: Token,
}

/// An account, as admins see it.
#[derive(Debug, Object)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl From<entities::user::Model> for User {
    fn from(u: entities::user::Model) -> Self {
        User { id: u.id, username: u.username, role: u.role, disabled: u.disabled, created_at: u.created_at }
    }
}

#[derive(Debug, Object)]
pub struct UserPage {
    pub items: Vec<User>,
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Object)]
pub struct CreateUser {
    pub username: String,
    pub role: RoleName,
    /// Leave out to have one generated (returned once).
    pub password: Option<String>,
}

/// A created account, with its generated password when none was given.
#[derive(Debug, Object)]
pub struct CreatedUser {
    #[oai(flatten)]
    pub user: User,
    pub password: Option<String>,
}

#[derive(Debug, Object)]
pub struct Password {
    pub password: String,
}

#[derive(Debug, Object)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// A quota.
#[derive(Debug, Object)]
pub struct Quota {
    pub max_machines: i32,
    pub max_cores: i32,
    pub max_memory_mib: i32,
    pub max_disk_gib: i32,
}

#[derive(Debug, Object)]
pub struct RoleQuota {
    pub role: RoleName,
    #[oai(flatten)]
    pub quota: Quota,
}

/// A user's quota override; unset fields follow the role.
#[derive(Debug, Default, Object)]
pub struct QuotaOverride {
    pub max_machines: Option<i32>,
    pub max_cores: Option<i32>,
    pub max_memory_mib: Option<i32>,
    pub max_disk_gib: Option<i32>,
}

/// A user's quota: the override, what applies, and what is in use.
#[derive(Debug, Object)]
pub struct UserQuota {
    pub overrides: QuotaOverride,
    pub effective: Quota,
    pub used_machines: i32,
    pub used_cores: i32,
    pub used_memory_mib: i32,
    pub used_disk_gib: i32,
}

/// A machine with what PVE says about it now, and (for its owner) its login.
#[derive(Debug, Object)]
pub struct MachineDetail {
    #[oai(flatten)]
    pub machine: Machine,
    /// `running`, `stopped`, or `unknown` when PVE cannot be asked (or the machine is lost).
    pub state: String,
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
    Reboot,
}
