//! Groups of users, and where a request stands in its entry's approval stages.

use chrono::{DateTime, Utc};
use poem_openapi::Object;

use crate::services::groups::GroupRow;
use crate::services::requests::stages::Progress;

use super::Text;

/// A group of users; catalog entries' approval stages name groups.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// Its members, by name.
    pub members: Vec<GroupMember>,
    /// The catalog entries with an approval stage for this group (it cannot be deleted while any).
    pub used_by: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct GroupMember {
    pub user_id: i64,
    pub username: String,
}

impl From<GroupRow> for Group {
    fn from(g: GroupRow) -> Self {
        Group {
            id: g.group.id,
            name: g.group.name,
            description: g.group.description,
            members: g.members.into_iter().map(|(user_id, username)| GroupMember { user_id, username }).collect(),
            used_by: g.used_by,
            created_at: g.group.created_at,
        }
    }
}

/// A group's name (unique) and description.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct GroupBody {
    /// Free text, unique among groups: not blank, no control characters.
    #[oai(validator(
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Text,
    /// No control characters but tab and newline.
    #[oai(nullable, default, validator(max_length = 500, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"))]
    pub description: Text,
}

/// Where a request of an entry with approval stages stands.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApprovalProgress {
    /// The stage it waits at, counted from 1 (once decided: the stage it was at).
    pub stage: i32,
    pub stage_count: i32,
    /// The group whose member approves next; absent once the request is decided.
    pub waiting_group: Option<String>,
    /// The groups of the stages, in order.
    pub stages: Vec<String>,
    /// The approvals given so far, by stage.
    pub approvals: Vec<StageApproval>,
}

/// An approval given at one stage.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StageApproval {
    /// The stage, counted from 1.
    pub stage: i32,
    /// The group of that stage.
    pub group: String,
    pub user_id: i64,
    pub username: String,
    pub decided_at: DateTime<Utc>,
}

impl ApprovalProgress {
    pub fn new(p: Progress, status: &str) -> Self {
        let group_of =
            |stage: i32| p.stages.get(stage.max(0) as usize).map(|s| s.group_name.clone()).unwrap_or_default();
        ApprovalProgress {
            stage: p.stage + 1,
            stage_count: p.stages.len() as i32,
            waiting_group: p.waiting(status).map(|s| s.group_name.clone()),
            stages: p.stages.iter().map(|s| s.group_name.clone()).collect(),
            approvals: p
                .approvals
                .iter()
                .map(|a| StageApproval {
                    stage: a.stage + 1,
                    group: group_of(a.stage),
                    user_id: a.user_id,
                    username: a.username.clone(),
                    decided_at: a.decided_at,
                })
                .collect(),
        }
    }
}
