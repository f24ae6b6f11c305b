//! What each live page shows, read from the database with a few indexed queries: the marks that change
//! when the page would, the subjects whose changes concern it, and the machines whose power state it
//! shows (read from PVE by the watch).

use std::collections::HashSet;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use entities::{audit_entry, guac_sync_run, machine, request};

use super::Change;
use crate::domain::request_status::RequestStatus;
use crate::services::{Actor, ServiceError, machines, requests};

/// A page that updates itself while open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivePage {
    /// A request's page, with its machine.
    Request(i64),
    /// The visitor's own requests, machines and quota.
    Dashboard,
    /// The admin home and queue: what waits for an admin.
    Admin,
    /// A bulk run's page: each machine's result.
    Bulk(i64),
}

/// One reading of a live page's rows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Changes whenever a row the page shows changes.
    pub marks: String,
    /// Subjects whose changes concern the page; `None`: every change may.
    pub subjects: Option<HashSet<(String, i64)>>,
    /// The machines whose power state the page shows.
    pub machines: Vec<machine::Model>,
    /// When the page's subjects last changed (their newest audit entry): shortly after, a machine's
    /// power state is likely to change too (a shutdown takes a while), so it is read more often; and a
    /// page rendered just before it may not show it.
    pub last_change_at: Option<DateTime<Utc>>,
}

impl Snapshot {
    /// Reads `page` as `actor` sees it; not found or forbidden when the actor may not see it.
    pub async fn read(db: &DatabaseConnection, actor: &Actor, page: LivePage) -> Result<Snapshot, ServiceError> {
        match page {
            LivePage::Request(id) => request_page(db, actor, id).await,
            LivePage::Dashboard => dashboard(db, actor).await,
            LivePage::Admin => admin(db, actor).await,
            LivePage::Bulk(id) => bulk_run(db, actor, id).await,
        }
    }

    /// Whether `change` (seen by `viewer`) may change the page.
    pub fn concerns(&self, change: &Change, viewer: i64) -> bool {
        match &self.subjects {
            None => true,
            Some(s) => change.actor_id == Some(viewer) || s.contains(&(change.subject_type.clone(), change.subject_id)),
        }
    }
}

/// The newest audit entry of one subject (the audit table's subject index answers it).
async fn newest_entry(
    db: &DatabaseConnection,
    subject_type: &str,
    ids: &[i64],
) -> Result<Option<(i64, DateTime<Utc>)>, ServiceError> {
    if ids.is_empty() {
        return Ok(None);
    }
    let row = audit_entry::Entity::find()
        .filter(audit_entry::Column::SubjectType.eq(subject_type))
        .filter(audit_entry::Column::SubjectId.is_in(ids.iter().copied()))
        .order_by_desc(audit_entry::Column::Id)
        .one(db)
        .await?;
    Ok(row.map(|e| (e.id, e.at)))
}

fn machine_marks(out: &mut String, m: &machine::Model) {
    let _ = write!(
        out,
        "m{}:{:?}:{:?}:{:?}:{:?}:{:?}:{:?};",
        m.id, m.vmid, m.ipv4, m.login_user, m.lost_at, m.deleted_at, m.install_media
    );
}

/// A machine whose power state means something: not deleted, not lost (its VMID names another guest).
fn shows_power(m: &machine::Model) -> bool {
    m.deleted_at.is_none() && m.lost_at.is_none() && m.vmid.is_some()
}

async fn request_page(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<Snapshot, ServiceError> {
    let r = requests::get(db, actor, id).await?;
    let m = machines::of_request(db, id).await?;
    let on_request = newest_entry(db, "request", &[id]).await?;
    let on_machine = match &m {
        Some(m) => newest_entry(db, "machine", &[m.id]).await?,
        None => None,
    };
    let mut marks = format!("r{}:{}:{}:{:?};", r.id, r.status, r.updated_at.timestamp_micros(), r.reason);
    let _ = write!(marks, "a{:?}:{:?};", on_request.map(|e| e.0), on_machine.map(|e| e.0));
    let mut subjects = HashSet::from([("request".to_owned(), id)]);
    if let Some(m) = &m {
        machine_marks(&mut marks, m);
        subjects.insert(("machine".to_owned(), m.id));
    }
    Ok(Snapshot {
        marks,
        subjects: Some(subjects),
        machines: m.into_iter().filter(shows_power).collect(),
        last_change_at: on_request.into_iter().chain(on_machine).map(|e| e.1).max(),
    })
}

async fn dashboard(db: &DatabaseConnection, actor: &Actor) -> Result<Snapshot, ServiceError> {
    // The dashboard shows statuses, machines and quota: a timeline note alone changes none of them.
    let rows: Vec<(i64, String, DateTime<Utc>)> = request::Entity::find()
        .select_only()
        .columns([request::Column::Id, request::Column::Status, request::Column::UpdatedAt])
        .filter(request::Column::UserId.eq(actor.id))
        .order_by_desc(request::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let of_user = Query::select()
        .column(request::Column::Id)
        .from(request::Entity)
        .and_where(request::Column::UserId.eq(actor.id))
        .to_owned();
    let ms = machine::Entity::find()
        .filter(machine::Column::RequestId.in_subquery(of_user))
        .order_by_desc(machine::Column::Id)
        .all(db)
        .await?;
    let mut marks = String::new();
    for (id, status, updated) in &rows {
        let _ = write!(marks, "r{id}:{status}:{};", updated.timestamp_micros());
    }
    for m in &ms {
        machine_marks(&mut marks, m);
    }
    let machine_ids: Vec<i64> = ms.iter().map(|m| m.id).collect();
    let request_ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let on_machines = newest_entry(db, "machine", &machine_ids).await?;
    let on_requests = newest_entry(db, "request", &request_ids).await?;
    let last_change_at = on_machines.into_iter().chain(on_requests).map(|e| e.1).max();
    let subjects = rows
        .iter()
        .map(|r| ("request".to_owned(), r.0))
        .chain(machine_ids.iter().map(|id| ("machine".to_owned(), *id)))
        .collect();
    Ok(Snapshot {
        marks,
        subjects: Some(subjects),
        machines: ms.into_iter().filter(shows_power).collect(),
        last_change_at,
    })
}

async fn admin(db: &DatabaseConnection, actor: &Actor) -> Result<Snapshot, ServiceError> {
    actor.require_admin()?;
    let newest: Option<(i64, DateTime<Utc>)> = audit_entry::Entity::find()
        .select_only()
        .columns([audit_entry::Column::Id, audit_entry::Column::At])
        .order_by_desc(audit_entry::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    let pending = requests::count_in(db, RequestStatus::Pending).await?;
    let sync: Option<i64> = guac_sync_run::Entity::find()
        .select_only()
        .column(guac_sync_run::Column::Id)
        .order_by_desc(guac_sync_run::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    Ok(Snapshot {
        marks: format!("a{:?};p{pending};g{sync:?}", newest.map(|e| e.0)),
        subjects: None,
        machines: vec![],
        last_change_at: newest.map(|e| e.1),
    })
}

async fn bulk_run(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<Snapshot, ServiceError> {
    let run = crate::services::bulk::get(db, actor, id).await?;
    let mut marks = String::new();
    for i in &run.items {
        let _ = write!(marks, "i{}:{}:{:?}:{:?};", i.machine_id, i.state.as_str(), i.reason, i.message);
    }
    Ok(Snapshot {
        marks,
        subjects: Some(HashSet::from([(crate::services::bulk::SUBJECT.to_owned(), id)])),
        machines: vec![],
        last_change_at: None,
    })
}
