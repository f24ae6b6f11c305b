//! Requests, their states, approvals and bulk decisions.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use crate::domain::request_origin::RequestOrigin;
use crate::domain::request_status::RequestStatus;
use crate::services::requests::RequestRow;

use super::{ApprovalProgress, AuditEntry, Text};

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
    /// An admin took its machine out of proxdesk; the guest lives on in PVE, untouched.
    Released,
}

impl From<RequestStatus> for Status {
    fn from(s: RequestStatus) -> Self {
        match s {
            RequestStatus::Pending => Status::Pending,
            RequestStatus::Approved => Status::Approved,
            RequestStatus::Provisioning => Status::Provisioning,
            RequestStatus::Ready => Status::Ready,
            RequestStatus::Failed => Status::Failed,
            RequestStatus::Rejected => Status::Rejected,
            RequestStatus::Cancelled => Status::Cancelled,
            RequestStatus::Deleting => Status::Deleting,
            RequestStatus::Deleted => Status::Deleted,
            RequestStatus::Lost => Status::Lost,
            RequestStatus::Released => Status::Released,
        }
    }
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
            Status::Released => RequestStatus::Released,
        }
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Origin {
    /// Asked for through the form or the API, then provisioned by proxdesk.
    Requested,
    /// A guest the cluster already had, adopted by an admin.
    Adopted,
}

/// A new request.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreateRequest {
    pub template_id: i64,
    /// An RFC 1123 label: 1–63 of `a-z A-Z 0-9 -`, not starting or ending with `-` (stored lower-case).
    #[oai(validator(max_length = 63, pattern = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"))]
    pub hostname: Text,
    /// At most the entry's `max_cores`, and within your quota.
    #[oai(validator(minimum(value = "1")))]
    pub cores: i32,
    /// At most the entry's `max_memory_mib`, and within your quota.
    #[oai(validator(minimum(value = "1")))]
    pub memory_mib: i32,
    /// At most the entry's `max_disk_gib`, and within your quota.
    #[oai(validator(minimum(value = "1")))]
    pub disk_gib: i32,
    /// Free text: not blank, no control characters but tab and newline.
    #[oai(validator(
        max_length = 1000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    ))]
    pub purpose: Text,
    /// An OpenSSH public key line (`ssh-ed25519 AAAA… comment`); blank for none.
    #[oai(nullable, validator(max_length = 16384))]
    pub ssh_public_key: Option<Text>,
    /// One of the entry's `storages`; absent: the first of them.
    #[oai(nullable)]
    pub storage: Option<Text>,
    /// One of the entry's `bridges`; absent: the first of them.
    #[oai(nullable)]
    pub bridge: Option<Text>,
    /// One of the entry's `isos` (ISO entries); absent: the first of them.
    #[oai(nullable)]
    pub iso: Option<Text>,
}

/// A request for a machine.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Request {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    /// The catalog entry it was made from; absent for a guest adopted without one.
    pub template_id: Option<i64>,
    /// The entry's name; empty without one.
    pub template_name: String,
    /// `requested` (the form or the API) or `adopted` (a guest the cluster already had).
    pub origin: Origin,
    pub hostname: String,
    pub cores: i32,
    pub memory_mib: i32,
    pub disk_gib: i32,
    pub purpose: String,
    pub ssh_public_key: Option<String>,
    /// The storage chosen (or the entry's first); absent when the entry offers no choice.
    pub storage: Option<String>,
    /// The bridge chosen for the network (or the entry's first).
    pub bridge: Option<String>,
    /// The installer ISO chosen (ISO entries).
    pub iso: Option<String>,
    pub status: Status,
    /// Why it was rejected, why provisioning or deletion failed, or why its machine is lost.
    pub reason: Option<String>,
    /// The automatic approval rule that approved it; absent when a person decided (or nobody yet).
    pub approved_by_rule: Option<RuleRef>,
    /// Its entry's approval stages: the stage, their count, the group waiting and the approvals given;
    /// absent for entries without stages.
    pub approval: Option<ApprovalProgress>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An automatic approval rule, by id and name.
#[derive(Debug, Object)]
pub struct RuleRef {
    pub id: i64,
    pub name: String,
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
            origin: match RequestOrigin::parse(&r.origin) {
                Some(RequestOrigin::Adopted) => Origin::Adopted,
                _ => Origin::Requested,
            },
            hostname: r.hostname,
            cores: r.cores,
            memory_mib: r.memory_mib,
            disk_gib: r.disk_gib,
            purpose: r.purpose,
            ssh_public_key: r.ssh_public_key,
            storage: r.storage,
            bridge: r.bridge,
            iso: r.iso,
            approval: row.approval.map(|p| ApprovalProgress::new(p, &r.status)),
            status: RequestStatus::parse(&r.status).map_or(Status::Failed, Into::into),
            reason: r.reason,
            approved_by_rule: r.approved_by_rule.map(|id| RuleRef { id, name: row.rule_name.unwrap_or_default() }),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A request with its timeline.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RequestDetail {
    #[oai(flatten)]
    pub request: Request,
    pub timeline: Vec<AuditEntry>,
}

/// One page of requests; pass `next_cursor` as `cursor` for the next.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RequestPage {
    pub items: Vec<Request>,
    pub next_cursor: Option<i64>,
}

/// Resource changes an admin makes while approving (all optional).
#[derive(Debug, Default, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApproveBody {
    #[oai(nullable, validator(minimum(value = "1")))]
    pub cores: Option<i32>,
    #[oai(nullable, validator(minimum(value = "1")))]
    pub memory_mib: Option<i32>,
    #[oai(nullable, validator(minimum(value = "1")))]
    pub disk_gib: Option<i32>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RejectBody {
    /// Free text: not blank, no control characters but tab and newline.
    #[oai(validator(
        max_length = 1000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    ))]
    pub reason: Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum BulkAction {
    Approve,
    Reject,
}

/// Approve or reject several pending requests at once.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkBody {
    pub ids: Vec<i64>,
    pub action: BulkAction,
    /// Required when rejecting.
    #[oai(nullable)]
    pub reason: Option<Text>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkItem {
    pub id: i64,
    pub ok: bool,
    /// Problem type when it failed, e.g. `/problems/illegal-transition`.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkResult {
    pub results: Vec<BulkItem>,
}
