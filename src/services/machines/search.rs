//! The machines lists' search: filters applied in the database (name, VMID, node, catalog entry,
//! owner), then the live power state, which only PVE knows, filtered after one cluster-wide read.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use entities::{machine, request, template, user};

use super::power_states;
use crate::domain::{FieldError, FieldErrors};
use crate::integrations::pve;
use crate::services::{Actor, Page, ServiceError, page_limit};

/// Longest name or node a filter accepts (a DNS label, a PVE node name).
pub const MAX_TEXT: usize = 63;
/// PVE's VMID range.
pub const VMID_MIN: i64 = 100;
pub const VMID_MAX: i64 = 999_999_999;

/// The live power state a list may be filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    Running,
    Stopped,
    /// PVE does not list the guest, or cannot be asked.
    Unknown,
}

impl PowerState {
    pub const ALL: [PowerState; 3] = [PowerState::Running, PowerState::Stopped, PowerState::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::Running => "running",
            PowerState::Stopped => "stopped",
            PowerState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<PowerState> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Which filter value a state PVE reported falls under (`paused`, `prelaunch`… are neither
    /// running nor stopped for an owner: they count as unknown).
    fn of(reported: &str) -> PowerState {
        Self::parse(reported).unwrap_or(PowerState::Unknown)
    }
}

/// What a machines list is narrowed to; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct MachineFilter {
    /// Part of the host name, any case.
    pub name: Option<String>,
    pub vmid: Option<i64>,
    pub state: Option<PowerState>,
    pub node: Option<String>,
    /// The catalog entry the machine was requested from.
    pub template_id: Option<i64>,
    /// Only this owner's machines; for admins only (a user always sees only their own).
    pub user_id: Option<i64>,
}

impl MachineFilter {
    /// Bounds the inputs: names and nodes are short and plain (so they need no LIKE escaping), a VMID
    /// is in PVE's range.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let mut errors = FieldErrors::default();
        for (field, value) in [("name", &self.name), ("node", &self.node)] {
            let Some(v) = value else { continue };
            if v.chars().count() > MAX_TEXT {
                errors.push(FieldError::new(field, "error.too_long").with("max", MAX_TEXT));
            } else if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_') {
                errors.push(FieldError::new(field, "error.search_chars"));
            }
        }
        if self.vmid.is_some_and(|v| !(VMID_MIN..=VMID_MAX).contains(&v)) {
            errors.push(FieldError::new("vmid", "error.vmid_range"));
        }
        if errors.0.is_empty() { Ok(()) } else { Err(ServiceError::Invalid(errors)) }
    }
}

/// One listed machine with what the lists show beside it.
#[derive(Debug, Clone)]
pub struct MachineRow {
    pub machine: machine::Model,
    /// `running`, `stopped`, … as PVE reported it, or `unknown`.
    pub state: String,
    pub template_name: Option<String>,
    pub template_id: Option<i64>,
    pub owner: String,
}

/// The actor's machines (admins: everyone's, or one owner's) matching `filter`, newest first, in
/// keyset pages. With a state filter, rows are read in batches until a page is full, so a page has
/// `limit` matches and its cursor is the last shown machine's id; each batch costs one cluster-wide
/// read of PVE (a batch is [`MAX_PAGE`](crate::services::MAX_PAGE)-sized, so usually one read).
pub async fn search(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
    filter: &MachineFilter,
    cursor: Option<i64>,
    limit: Option<u64>,
) -> Result<Page<MachineRow>, ServiceError> {
    filter.validate()?;
    let limit = page_limit(limit);
    let batch = if filter.state.is_some() { Ord::max(crate::services::MAX_PAGE, limit + 1) } else { limit + 1 };
    let mut found: Vec<(machine::Model, String)> = Vec::new();
    let mut after = cursor;
    loop {
        let mut q = narrowed(actor, filter).order_by_desc(machine::Column::Id);
        if let Some(c) = after {
            q = q.filter(machine::Column::Id.lt(c));
        }
        let rows = q.limit(batch).all(db).await?;
        let exhausted = (rows.len() as u64) < batch;
        after = rows.last().map(|m| m.id);
        let mut states = power_states(pve, &rows).await;
        for m in rows {
            let state = states.remove(&m.id).unwrap_or_else(|| "unknown".into());
            if filter.state.is_none_or(|want| PowerState::of(&state) == want) {
                found.push((m, state));
            }
            if found.len() as u64 > limit {
                break;
            }
        }
        if found.len() as u64 > limit || exhausted {
            break;
        }
    }
    let more = found.len() as u64 > limit;
    found.truncate(limit as usize);
    let next_cursor = if more { found.last().map(|(m, _)| m.id) } else { None };
    let items = with_names(db, found).await?;
    Ok(Page { items, next_cursor })
}

/// The database part of the filter, and who may see what.
fn narrowed(actor: &Actor, filter: &MachineFilter) -> sea_orm::Select<machine::Entity> {
    let mut q = machine::Entity::find().filter(machine::Column::DeletedAt.is_null());
    let owner = if actor.is_admin() { filter.user_id } else { Some(actor.id) };
    if let Some(u) = owner {
        q = q.filter(machine::Column::UserId.eq(u));
    }
    if let Some(name) = filter.name.as_deref().filter(|n| !n.is_empty()) {
        let lowered = Expr::expr(Func::lower(Expr::col((machine::Entity, machine::Column::Hostname))));
        q = q.filter(lowered.like(format!("%{}%", crate::services::search_term(&name.to_lowercase()))));
    }
    if let Some(v) = filter.vmid {
        q = q.filter(machine::Column::Vmid.eq(v));
    }
    if let Some(node) = filter.node.as_deref().filter(|n| !n.is_empty()) {
        q = q.filter(machine::Column::Node.eq(node));
    }
    if let Some(t) = filter.template_id {
        let of_template = Query::select()
            .column(request::Column::Id)
            .from(request::Entity)
            .and_where(request::Column::TemplateId.eq(t))
            .to_owned();
        q = q.filter(machine::Column::RequestId.in_subquery(of_template));
    }
    q
}

/// Adds each machine's catalog entry and owner name (two reads for the whole page).
async fn with_names(
    db: &DatabaseConnection,
    found: Vec<(machine::Model, String)>,
) -> Result<Vec<MachineRow>, ServiceError> {
    let request_ids: Vec<i64> = found.iter().map(|(m, _)| m.request_id).collect();
    let user_ids: Vec<i64> = found.iter().map(|(m, _)| m.user_id).collect();
    let template_of: HashMap<i64, Option<i64>> = request::Entity::find()
        .filter(request::Column::Id.is_in(request_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id, r.template_id))
        .collect();
    let template_ids: Vec<i64> = template_of.values().filter_map(|t| *t).collect();
    let template_names: HashMap<i64, String> = template::Entity::find()
        .filter(template::Column::Id.is_in(template_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let owners: HashMap<i64, String> = user::Entity::find()
        .filter(user::Column::Id.is_in(user_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect();
    Ok(found
        .into_iter()
        .map(|(m, state)| {
            let template_id = template_of.get(&m.request_id).copied().flatten();
            MachineRow {
                template_name: template_id.and_then(|t| template_names.get(&t).cloned()),
                template_id,
                owner: owners.get(&m.user_id).cloned().unwrap_or_default(),
                state,
                machine: m,
            }
        })
        .collect())
}

/// The nodes the actor's machines are on, for the node filter's choices.
pub async fn nodes(db: &DatabaseConnection, actor: &Actor) -> Result<Vec<String>, ServiceError> {
    let mut q = machine::Entity::find()
        .select_only()
        .column(machine::Column::Node)
        .distinct()
        .filter(machine::Column::DeletedAt.is_null())
        .order_by_asc(machine::Column::Node);
    if !actor.is_admin() {
        q = q.filter(machine::Column::UserId.eq(actor.id));
    }
    Ok(q.into_tuple::<String>().all(db).await?)
}
