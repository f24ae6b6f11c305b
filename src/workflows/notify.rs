//! The notification jobs: `notify` fans an event out (services::notifications::fan_out), `notify_mail`
//! sends one mail over SMTP, `notify_webhook` delivers one event to one webhook. Sending retries with the
//! queue's exponential backoff and jitter up to `notify_attempts`; a mail the server refuses for good
//! ends `failed` at once, anything else `dead` after the last attempt, both visible in the jobs table.

use std::sync::Arc;
use std::time::Duration;

use jobs::{Backoff, HandlerError, KindOptions, Outcome, Registry};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use crate::config::{ConfigError, RawSettings};
use crate::integrations::mail::{MailError, MailSettings, Mailer};
use crate::integrations::webhook::WebhookClient;
use crate::secrets::SecretKey;
use crate::services::notifications::{
    self, Event, FanOut, MAIL_JOB, NOTIFY_JOB, WEBHOOK_JOB, webhooks::DeliveryStatus,
};

/// The notification settings (`PROXDESK_SMTP_*`, `PROXDESK_MAIL_FROM`, `PROXDESK_WEBHOOK_TIMEOUT_SECS`,
/// `PROXDESK_NOTIFY_*`).
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// `None`: mail is off.
    pub mail: Option<MailSettings>,
    pub webhook_timeout: Duration,
    /// Attempts of each mail and delivery before it is given up.
    pub attempts: i32,
    pub backoff: Backoff,
    /// The hosts webhooks may be sent to; empty: any.
    pub webhook_hosts: Vec<String>,
}

impl NotifySettings {
    pub fn from_settings(raw: &RawSettings) -> Result<NotifySettings, ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: format!("PROXDESK_{}", key.to_ascii_uppercase()),
            message: message.into(),
        };
        let timeout: u64 = raw.parse("webhook_timeout_secs")?.unwrap_or(10);
        if !(1..=120).contains(&timeout) {
            return Err(invalid("webhook_timeout_secs", "must be between 1 and 120"));
        }
        let attempts: i32 = raw.parse("notify_attempts")?.unwrap_or(8);
        if !(1..=50).contains(&attempts) {
            return Err(invalid("notify_attempts", "must be between 1 and 50"));
        }
        let backoff_ms: u64 = raw.parse("notify_backoff_ms")?.unwrap_or(10_000);
        if !(10..=3_600_000).contains(&backoff_ms) {
            return Err(invalid("notify_backoff_ms", "must be between 10 and 3600000"));
        }
        Ok(NotifySettings {
            mail: MailSettings::from_settings(raw)?,
            webhook_timeout: Duration::from_secs(timeout),
            attempts,
            backoff: Backoff { base: Duration::from_millis(backoff_ms), max: Duration::from_secs(3600) },
            webhook_hosts: crate::domain::guest::split_list(raw.get("webhook_hosts").unwrap_or_default()),
        })
    }
}

/// What the notification jobs need.
pub struct NotifyDeps {
    pub db: DatabaseConnection,
    pub key: SecretKey,
    pub public_url: String,
    pub mailer: Option<Mailer>,
    pub webhooks: WebhookClient,
    pub webhook_hosts: Vec<String>,
}

impl NotifyDeps {
    pub fn new(
        db: DatabaseConnection,
        key: SecretKey,
        public_url: &str,
        settings: &NotifySettings,
    ) -> Result<NotifyDeps, String> {
        let host = url::Url::parse(public_url).ok().and_then(|u| u.host_str().map(str::to_owned));
        let mailer = match &settings.mail {
            Some(mail) => Some(Mailer::new(mail, host.as_deref().unwrap_or("localhost")).map_err(|e| e.to_string())?),
            None => None,
        };
        let webhooks = WebhookClient::new(settings.webhook_timeout)?;
        let webhook_hosts = settings.webhook_hosts.clone();
        Ok(NotifyDeps { db, key, public_url: public_url.to_owned(), mailer, webhooks, webhook_hosts })
    }
}

fn translate(lang: &str, key: &str, params: &[(&str, &str)]) -> String {
    crate::http::i18n::message(lang, key, params)
}

#[derive(Deserialize)]
struct MailPayload {
    event_id: String,
    to: String,
    subject: String,
    body: String,
}

#[derive(Deserialize)]
struct WebhookPayload {
    webhook_id: i64,
    event_id: String,
    body: String,
}

/// Registers the three kinds.
pub fn register(registry: &mut Registry, deps: Arc<NotifyDeps>, settings: &NotifySettings) {
    let sending = KindOptions { max_attempts: Some(settings.attempts), backoff: settings.backoff, concurrency: None };
    let fan_out_options = KindOptions { max_attempts: Some(5), ..KindOptions::default() };

    let d = deps.clone();
    registry.register_fn(NOTIFY_JOB, fan_out_options, move |ctx| {
        let d = d.clone();
        async move {
            let event: Event = ctx.payload_as()?;
            let cfg = FanOut { public_url: d.public_url.clone(), mail: d.mailer.is_some(), translate };
            let queued = notifications::fan_out(&d.db, &cfg, &event).await?;
            tracing::info!(event = %event.id, kind = %event.kind, mails = queued.mails, webhooks = queued.webhooks, "notification fanned out");
            Ok::<_, HandlerError>(Outcome::Done)
        }
    });

    let d = deps.clone();
    registry.register_fn(MAIL_JOB, sending.clone(), move |ctx| {
        let d = d.clone();
        async move {
            let mail: MailPayload = ctx.payload_as()?;
            let Some(mailer) = &d.mailer else { return Ok(Outcome::failed("mail is not configured in this process")) };
            match mailer.send(&mail.to, &mail.subject, &mail.body).await {
                Ok(()) => {
                    tracing::info!(event = %mail.event_id, "notification mail sent");
                    Ok(Outcome::Done)
                }
                Err(e @ (MailError::Permanent(_) | MailError::Address(_) | MailError::Config(_))) => {
                    tracing::warn!(event = %mail.event_id, error = %e, "notification mail refused");
                    Ok(Outcome::failed(e.to_string()))
                }
                Err(e) => {
                    tracing::warn!(event = %mail.event_id, attempt = ctx.attempt(), error = %e, "notification mail not sent");
                    Err(e.into())
                }
            }
        }
    });

    registry.register_fn(WEBHOOK_JOB, sending, move |ctx| {
        let d = deps.clone();
        async move {
            let p: WebhookPayload = ctx.payload_as()?;
            let Some((hook, secret)) = notifications::webhooks::for_delivery(&d.db, &d.key, p.webhook_id).await? else {
                // Deleted since: nobody to deliver to.
                return Ok(Outcome::Done);
            };
            if !notifications::webhooks::host_allowed(&hook.url, &d.webhook_hosts) {
                let why = "the webhook's host is not among webhook_hosts";
                notifications::webhooks::record_attempt(&d.db, hook.id, DeliveryStatus::Failed, None, Some(why.into()))
                    .await?;
                return Ok(Outcome::failed(why));
            }
            let now = chrono::Utc::now().timestamp();
            match d.webhooks.deliver(&hook.url, &secret, &p.event_id, &p.body, now).await {
                Ok(code) => {
                    notifications::webhooks::record_attempt(&d.db, hook.id, DeliveryStatus::Delivered, Some(code), None)
                        .await?;
                    Ok::<_, HandlerError>(Outcome::Done)
                }
                Err(e) => {
                    let status = if ctx.is_last_attempt() { DeliveryStatus::Failed } else { DeliveryStatus::Retrying };
                    notifications::webhooks::record_attempt(&d.db, hook.id, status, e.status(), Some(e.to_string()))
                        .await?;
                    tracing::warn!(webhook = hook.id, event = %p.event_id, attempt = ctx.attempt(), error = %e, "webhook delivery failed");
                    Err(e.into())
                }
            }
        }
    });
}
