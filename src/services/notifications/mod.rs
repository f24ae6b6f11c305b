//! Notifications: events are recorded where they happen (a request's status change, a lease step), in
//! the same transaction, as one durable `notify` job each. That job decides who hears of it
//! ([`fan_out`]): one `notify_mail` job per recipient (their language, their opt-outs, their address)
//! and one `notify_webhook` job per webhook that wants the kind. Sending happens in those jobs, with the
//! queue's retries and backoff; a mail or delivery that can never go through ends `failed` or `dead` in
//! the jobs table, and nothing else waits for it.

mod fan_out;
pub mod prefs;
pub mod webhooks;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use entities::{request, user};

use super::ServiceError;
use crate::domain::notification::EventKind;
use crate::domain::request_status::RequestStatus;
use crate::domain::roles::Role;

pub use fan_out::{FanOut, Translate, fan_out};

/// The job that fans one event out to its recipients and webhooks.
pub const NOTIFY_JOB: &str = "notify";
/// The job that sends one mail.
pub const MAIL_JOB: &str = "notify_mail";
/// The job that delivers one event to one webhook.
pub const WEBHOOK_JOB: &str = "notify_webhook";

/// Language of mails to people who chose none.
pub const DEFAULT_LANGUAGE: &str = "en";

/// One event, as the `notify` job carries it: what happened to which request, and the facts of that
/// moment (a later change of the request does not change what the event says).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Unique, the same in every mail job and webhook delivery (and every retry) of this event.
    pub id: String,
    /// The kind's name (`EventKind::as_str`).
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub request_id: i64,
    #[serde(default)]
    pub machine_id: Option<i64>,
    /// Why it was rejected or failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// When the lease ends (lease events).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Event {
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.kind)
    }
}

/// Records an event of `kind` about `request_id` in the caller's transaction: one `notify` job, keyed by
/// `key` so the same event recorded twice (a repeated step) is one job.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    kind: EventKind,
    key: &str,
    request_id: i64,
    machine_id: Option<i64>,
    reason: Option<String>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), ServiceError> {
    let event = Event {
        id: format!("evt_{}", crate::secrets::random_token(12).expose()),
        kind: kind.as_str().to_owned(),
        created_at: Utc::now(),
        request_id,
        machine_id,
        reason,
        expires_at,
    };
    let payload = serde_json::to_value(&event).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let job = jobs::NewJob::new(NOTIFY_JOB, payload).idempotency_key(format!("notify:{}:{key}", kind.as_str()));
    jobs::enqueue(conn, job).await?;
    Ok(())
}

/// The event a request's move from `from` to `to` is, if people hear of it.
pub fn transition_event(from: RequestStatus, to: RequestStatus) -> Option<EventKind> {
    use RequestStatus as S;
    match (from, to) {
        (S::Pending, S::Approved) => Some(EventKind::RequestApproved),
        (S::Pending, S::Rejected) => Some(EventKind::RequestRejected),
        (S::Provisioning, S::Ready) => Some(EventKind::RequestReady),
        (S::Provisioning, S::Failed) => Some(EventKind::RequestFailed),
        (_, S::Deleted) => Some(EventKind::MachineDeleted),
        _ => None,
    }
}

/// Records the event of a status change (see [`transition_event`]), in the transaction that made it;
/// `audit_id` (the change's audit entry) keys it.
pub async fn record_transition<C: ConnectionTrait>(
    conn: &C,
    updated: &request::Model,
    from: RequestStatus,
    to: RequestStatus,
    audit_id: i64,
) -> Result<(), ServiceError> {
    let Some(kind) = transition_event(from, to) else { return Ok(()) };
    let reason =
        matches!(kind, EventKind::RequestRejected | EventKind::RequestFailed).then(|| updated.reason.clone()).flatten();
    record(conn, kind, &format!("request:{}:{audit_id}", updated.id), updated.id, None, reason, None).await
}

/// The people who may decide `request`: the members of the approval stage it waits at (those who have not
/// acted on it yet), or, for an entry without stages, every enabled admin.
pub async fn approvers_of<C: ConnectionTrait>(
    conn: &C,
    request: &request::Model,
) -> Result<Vec<user::Model>, ServiceError> {
    // An entry with approval stages: the members of the stage the request waits at (who have not acted).
    if let Some(members) = super::requests::stages::current_approvers(conn, request).await? {
        return Ok(members);
    }
    Ok(user::Entity::find()
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .filter(user::Column::Disabled.eq(false))
        .all(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus as S;

    #[test]
    fn only_decisions_outcomes_and_deletion_are_told() {
        for (from, _, to) in crate::domain::request_status::TRANSITIONS {
            let told = transition_event(*from, *to);
            let expected = match (from, to) {
                (S::Pending, S::Approved) => Some(EventKind::RequestApproved),
                (S::Pending, S::Rejected) => Some(EventKind::RequestRejected),
                (S::Provisioning, S::Ready) => Some(EventKind::RequestReady),
                (S::Provisioning, S::Failed) => Some(EventKind::RequestFailed),
                (S::Deleting | S::Lost, S::Deleted) => Some(EventKind::MachineDeleted),
                _ => None,
            };
            assert_eq!(told, expected, "{from:?} → {to:?}");
        }
        // A retry (failed → approved) and a re-adoption (lost → ready) are not news to the owner.
        assert_eq!(transition_event(S::Failed, S::Approved), None);
        assert_eq!(transition_event(S::Lost, S::Ready), None);
    }
}
