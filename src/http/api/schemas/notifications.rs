//! Notification choices and webhooks.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use super::Text;
use crate::domain::notification::EventKind;

/// A kind of event: what a mail is about, and a webhook event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum NotificationKind {
    #[oai(rename = "request.received")]
    RequestReceived,
    /// A request reached your group's approval stage.
    #[oai(rename = "request.awaiting")]
    RequestAwaiting,
    #[oai(rename = "request.approved")]
    RequestApproved,
    #[oai(rename = "request.rejected")]
    RequestRejected,
    #[oai(rename = "request.ready")]
    RequestReady,
    #[oai(rename = "request.failed")]
    RequestFailed,
    #[oai(rename = "lease.warning")]
    LeaseWarning,
    #[oai(rename = "lease.expired")]
    LeaseExpired,
    #[oai(rename = "machine.deleted")]
    MachineDeleted,
}

impl From<NotificationKind> for EventKind {
    fn from(k: NotificationKind) -> Self {
        match k {
            NotificationKind::RequestReceived => EventKind::RequestReceived,
            NotificationKind::RequestAwaiting => EventKind::RequestAwaiting,
            NotificationKind::RequestApproved => EventKind::RequestApproved,
            NotificationKind::RequestRejected => EventKind::RequestRejected,
            NotificationKind::RequestReady => EventKind::RequestReady,
            NotificationKind::RequestFailed => EventKind::RequestFailed,
            NotificationKind::LeaseWarning => EventKind::LeaseWarning,
            NotificationKind::LeaseExpired => EventKind::LeaseExpired,
            NotificationKind::MachineDeleted => EventKind::MachineDeleted,
        }
    }
}

impl From<EventKind> for NotificationKind {
    fn from(k: EventKind) -> Self {
        match k {
            EventKind::RequestReceived => NotificationKind::RequestReceived,
            EventKind::RequestAwaiting => NotificationKind::RequestAwaiting,
            EventKind::RequestApproved => NotificationKind::RequestApproved,
            EventKind::RequestRejected => NotificationKind::RequestRejected,
            EventKind::RequestReady => NotificationKind::RequestReady,
            EventKind::RequestFailed => NotificationKind::RequestFailed,
            EventKind::LeaseWarning => NotificationKind::LeaseWarning,
            EventKind::LeaseExpired => NotificationKind::LeaseExpired,
            EventKind::MachineDeleted => NotificationKind::MachineDeleted,
        }
    }
}

/// Your notification mails: which kinds you get, and where they go.
#[derive(Debug, Object)]
pub struct NotificationChoices {
    /// Where mails go; null: your account has no address, so none is sent.
    #[oai(nullable)]
    pub email: Option<String>,
    /// Whether this desk sends mail at all.
    pub mail_configured: bool,
    /// The kinds you turned off.
    pub disabled: Vec<NotificationKind>,
    /// The kinds you get (every other kind).
    pub enabled: Vec<NotificationKind>,
}

/// The kinds to turn off; every kind not listed is turned on.
#[derive(Debug, Object)]
pub struct SetNotificationChoices {
    #[oai(validator(max_items = 32))]
    pub disabled: Vec<NotificationKind>,
}

/// The outcome of a webhook's latest delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum DeliveryState {
    Delivered,
    Retrying,
    Failed,
}

/// A webhook's latest delivery attempt.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LastDelivery {
    pub status: DeliveryState,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// A webhook (without its secret).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    /// The kinds it receives; empty: every kind.
    pub events: Vec<NotificationKind>,
    pub created_at: DateTime<Utc>,
    /// Absent until the first attempt.
    pub last_delivery: Option<LastDelivery>,
}

impl From<entities::webhook::Model> for Webhook {
    fn from(w: entities::webhook::Model) -> Self {
        use crate::services::notifications::webhooks::{DeliveryStatus, kinds};
        let status = w.last_status.as_deref().and_then(DeliveryStatus::parse).map(|s| match s {
            DeliveryStatus::Delivered => DeliveryState::Delivered,
            DeliveryStatus::Retrying => DeliveryState::Retrying,
            DeliveryStatus::Failed => DeliveryState::Failed,
        });
        let last_delivery = match (status, w.last_attempt_at) {
            (Some(status), Some(at)) => {
                Some(LastDelivery { status, status_code: w.last_status_code, error: w.last_error.clone(), at })
            }
            _ => None,
        };
        Webhook {
            id: w.id,
            events: kinds(&w).into_iter().map(Into::into).collect(),
            url: w.url,
            created_at: w.created_at,
            last_delivery,
        }
    }
}

/// A webhook to add.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreateWebhook {
    /// An http:// or https:// URL.
    #[oai(validator(max_length = 2000, pattern = r"^[hH][tT][tT][pP][sS]?://\S+$"))]
    pub url: Text,
    /// The kinds it receives; left out, null or empty: every kind.
    #[oai(nullable, validator(max_items = 32))]
    pub events: Option<Vec<NotificationKind>>,
}

/// A new webhook; `secret` (its signing key) is shown this once only.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewWebhook {
    pub secret: String,
    #[oai(flatten)]
    pub webhook: Webhook,
}
