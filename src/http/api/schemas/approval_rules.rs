//! Automatic approval rules.

use chrono::{DateTime, Utc};
use poem_openapi::Object;

use super::{RoleName, Text};
use crate::domain::roles::Role;
use crate::services::approval_rules::RuleView;

/// A rule: requests it covers are approved at once, as policy. Rules are tried in id order; the first
/// enabled one that covers a request approves it.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApprovalRule {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    /// The catalog entry it covers; absent: every entry.
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
    /// The requester's role it covers; absent: every role.
    pub role: Option<RoleName>,
    /// The most a covered request may ask for; absent: the entry's own bound.
    pub max_cores: Option<i32>,
    pub max_memory_mib: Option<i32>,
    pub max_disk_gib: Option<i32>,
    /// Machines of the entry the requester may hold, the new one included; absent: no count limit.
    pub max_machines: Option<i32>,
    /// Only these users (ids); empty: anyone the entry and role allow.
    pub user_ids: Vec<i64>,
    pub usernames: Vec<String>,
    /// …or members of these groups (ids); both empty: anyone the entry and role allow.
    pub group_ids: Vec<i64>,
    pub group_names: Vec<String>,
    /// Requests it approved so far (list them with `GET /requests?approved_by_rule={id}`).
    pub approved_requests: u64,
    pub created_at: DateTime<Utc>,
}

impl From<RuleView> for ApprovalRule {
    fn from(v: RuleView) -> Self {
        let r = v.rule;
        ApprovalRule {
            id: r.id,
            name: r.name,
            enabled: r.enabled,
            template_id: r.template_id,
            template_name: v.template_name,
            role: r.role.map(|role| match role {
                Role::Admin => RoleName::Admin,
                Role::User => RoleName::User,
            }),
            max_cores: r.max_cores,
            max_memory_mib: r.max_memory_mib,
            max_disk_gib: r.max_disk_gib,
            max_machines: r.max_machines,
            user_ids: r.user_ids,
            usernames: v.usernames,
            group_ids: r.group_ids,
            group_names: v.group_names,
            approved_requests: v.approved,
            created_at: v.created_at,
        }
    }
}

/// A new rule, or a rule's new content (every field; absent optional fields lift that limit).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApprovalRuleBody {
    /// 1–80 characters, unique.
    #[oai(validator(min_length = 1, max_length = 80, pattern = r"\S"))]
    pub name: Text,
    /// Absent: enabled.
    #[oai(nullable)]
    pub enabled: Option<bool>,
    #[oai(nullable)]
    pub template_id: Option<i64>,
    #[oai(nullable)]
    pub role: Option<RoleName>,
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub max_cores: Option<i32>,
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub max_memory_mib: Option<i32>,
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub max_disk_gib: Option<i32>,
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub max_machines: Option<i32>,
    /// Ids of the users it is limited to (at most 1000); absent or empty: not limited to users.
    #[oai(nullable, validator(max_items = 1000))]
    pub user_ids: Option<Vec<i64>>,
    /// Ids of the groups whose members it also covers (at most 1000); absent or empty: no group.
    #[oai(nullable, validator(max_items = 1000))]
    pub group_ids: Option<Vec<i64>>,
}
