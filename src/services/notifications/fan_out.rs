//! Who hears of an event: each recipient with an address who did not turn the kind off gets one mail job
//! (composed now, in their language), and each webhook that wants the kind one delivery job; all in one
//! transaction, keyed by the event, so a repeated fan-out adds nothing.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;

use entities::{machine, notification_opt_out, request, template, user, webhook};

use super::{DEFAULT_LANGUAGE, Event, MAIL_JOB, WEBHOOK_JOB, approvers_of, webhooks};
use crate::domain::notification::{Audience, EventKind, MailFacts, compose};
use crate::services::ServiceError;

/// Looks a text up in `lang` by key, with `{placeholders}` filled (the i18n catalogs).
pub type Translate = fn(lang: &str, key: &str, params: &[(&str, &str)]) -> String;

/// What a fan-out needs besides the database.
pub struct FanOut {
    /// Links in mails start here (`public_url`).
    pub public_url: String,
    /// Whether mail is configured; without it no mail job is made.
    pub mail: bool,
    pub translate: Translate,
}

/// What one fan-out queued.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Queued {
    pub mails: usize,
    pub webhooks: usize,
}

/// Queues the mails and webhook deliveries of `event`. A request gone meanwhile queues nothing.
pub async fn fan_out(db: &DatabaseConnection, cfg: &FanOut, event: &Event) -> Result<Queued, ServiceError> {
    let kind = event.kind().ok_or_else(|| ServiceError::Internal(format!("unknown event kind {:?}", event.kind)))?;
    let Some(req) = request::Entity::find_by_id(event.request_id).one(db).await? else {
        return Ok(Queued::default());
    };
    let owner = user::Entity::find_by_id(req.user_id).one(db).await?.ok_or(ServiceError::NotFound)?;
    let template = match req.template_id {
        Some(id) => template::Entity::find_by_id(id).one(db).await?.map(|t| t.name),
        None => None,
    };
    let machine_id = match event.machine_id {
        Some(id) => Some(id),
        None => machine::Entity::find().filter(machine::Column::RequestId.eq(req.id)).one(db).await?.map(|m| m.id),
    };
    let base = cfg.public_url.trim_end_matches('/');
    let link = match (kind, machine_id) {
        (EventKind::RequestReady | EventKind::LeaseWarning | EventKind::LeaseExpired, Some(m)) => {
            format!("{base}/machines/{m}")
        }
        _ => format!("{base}/requests/{}", req.id),
    };
    let facts = MailFacts {
        hostname: req.hostname.clone(),
        request_id: req.id,
        owner: owner.username.clone(),
        template: template.clone().unwrap_or_default(),
        reason: event.reason.clone(),
        expires_at: event.expires_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        link: link.clone(),
        profile_link: format!("{base}/profile"),
    };

    let mut mails: Vec<(user::Model, Audience)> = Vec::new();
    for audience in kind.audiences() {
        match audience {
            Audience::Owner => mails.push((owner.clone(), Audience::Owner)),
            Audience::Approvers => {
                // An owner who is also an approver gets the receipt, not a second mail.
                for a in approvers_of(db, &req).await?.into_iter().filter(|a| a.id != owner.id) {
                    mails.push((a, Audience::Approvers));
                }
            }
        }
    }
    if !cfg.mail {
        mails.clear();
    }
    mails.retain(|(u, _)| !u.disabled && u.email.as_deref().is_some_and(|e| !e.trim().is_empty()));
    let ids: Vec<i64> = mails.iter().map(|(u, _)| u.id).collect();
    let off: Vec<i64> = notification_opt_out::Entity::find()
        .filter(notification_opt_out::Column::UserId.is_in(ids))
        .filter(notification_opt_out::Column::Kind.eq(kind.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.user_id)
        .collect();
    mails.retain(|(u, _)| !off.contains(&u.id));

    let hooks: Vec<webhook::Model> =
        webhook::Entity::find().all(db).await?.into_iter().filter(|w| webhooks::wants(w, kind)).collect();
    let body = json!({
        "id": event.id,
        "type": kind.as_str(),
        "created_at": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": {
            "request_id": req.id,
            "machine_id": machine_id,
            "hostname": req.hostname,
            "owner": {"id": owner.id, "username": owner.username},
            "template": template,
            "reason": event.reason,
            "expires_at": event.expires_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "url": link,
        },
    })
    .to_string();

    let txn = crate::db::begin_write(db).await?;
    for (u, audience) in &mails {
        let lang = mail_language(u.language.as_deref());
        let translate = cfg.translate;
        let texts = move |key: &str, params: &[(&str, &str)]| translate(lang, key, params);
        let mail = compose(kind, *audience, &facts, &texts);
        let payload = json!({"event_id": event.id, "kind": kind.as_str(), "user_id": u.id, "language": lang,
            "to": u.email, "subject": mail.subject, "body": mail.body});
        let key = format!("mail:{}:{}", event.id, u.id);
        jobs::enqueue(&txn, jobs::NewJob::new(MAIL_JOB, payload).idempotency_key(key)).await?;
    }
    for w in &hooks {
        let payload = json!({"webhook_id": w.id, "event_id": event.id, "body": body});
        let key = format!("webhook:{}:{}", event.id, w.id);
        jobs::enqueue(&txn, jobs::NewJob::new(WEBHOOK_JOB, payload).idempotency_key(key)).await?;
    }
    txn.commit().await?;
    if !mails.is_empty() || !hooks.is_empty() {
        jobs::wake();
    }
    Ok(Queued { mails: mails.len(), webhooks: hooks.len() })
}

/// The language of a user's mails: their choice when it is one of ours, else the desk's default.
fn mail_language(choice: Option<&str>) -> &'static str {
    ["en", "fr", "it"].into_iter().find(|l| Some(*l) == choice).unwrap_or(DEFAULT_LANGUAGE)
}
