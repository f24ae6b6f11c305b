//! Webhooks (admins only): a URL, a signing secret made by proxdesk (shown once, sealed at rest), the
//! kinds it wants (none listed: all), and the outcome of its latest delivery attempt.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    sea_query::Expr,
};
use serde_json::json;

use entities::webhook;

use crate::domain::FieldError;
use crate::domain::notification::EventKind;
use crate::secrets::{Secret, SecretKey, random_token};
use crate::services::{Actor, ServiceError, audit};

/// Prefix of signing secrets, so a leaked one is recognised.
pub const SECRET_PREFIX: &str = "whsec_";

/// How the latest delivery attempt to a webhook went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Delivered,
    /// Failed; the job tries again.
    Retrying,
    /// Failed on its last attempt.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [DeliveryStatus::Delivered, DeliveryStatus::Retrying, DeliveryStatus::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// The kinds a webhook lists (empty: every kind).
pub fn kinds(w: &webhook::Model) -> Vec<EventKind> {
    w.events.split(',').filter_map(|k| EventKind::parse(k.trim())).collect()
}

/// Whether `w` wants events of `kind`.
pub fn wants(w: &webhook::Model, kind: EventKind) -> bool {
    w.events.trim().is_empty() || kinds(w).contains(&kind)
}

/// Whether `url`'s host may receive webhooks under `allowed` (`webhook_hosts`: host names or addresses,
/// `*.example.org` for any name under it; empty: any host).
pub fn host_allowed(url: &str, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(host) = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)) else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    allowed.iter().map(|a| a.trim().to_ascii_lowercase()).any(|a| match a.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
        None => host == a.trim_start_matches('[').trim_end_matches(']'),
    })
}

/// Adds a webhook; answers it with its signing secret, which is not shown again.
#[tracing::instrument(skip(db, key, actor), fields(actor = actor.id))]
pub async fn create(
    db: &DatabaseConnection,
    key: &SecretKey,
    actor: &Actor,
    url: &str,
    events: &[EventKind],
    allowed_hosts: &[String],
) -> Result<(webhook::Model, Secret<String>), ServiceError> {
    actor.require_admin()?;
    let url = url.trim();
    let parsed = url::Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if parsed.is_none() || url.len() > 2000 {
        return Err(FieldError::new("url", "error.url_invalid").into());
    }
    if !host_allowed(url, allowed_hosts) {
        return Err(FieldError::new("url", "error.webhook_host").into());
    }
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    let secret = Secret::new(format!("{SECRET_PREFIX}{}", random_token(24).expose()));
    let txn = crate::db::begin_write(db).await?;
    let row = webhook::ActiveModel {
        url: Set(url.to_owned()),
        secret_sealed: Set(key.seal(secret.expose())),
        events: Set(events.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")),
        created_by: Set(Some(actor.id)),
        created_at: Set(Utc::now()),
        last_status: Set(None),
        last_status_code: Set(None),
        last_error: Set(None),
        last_attempt_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let kinds: Vec<&str> = events.iter().map(|k| k.as_str()).collect();
    audit::record(&txn, Some(actor), "webhook.created", "webhook", row.id, json!({"url": url, "events": kinds}))
        .await?;
    txn.commit().await?;
    Ok((row, secret))
}

/// Every webhook, oldest first.
pub async fn list(db: &DatabaseConnection, actor: &Actor) -> Result<Vec<webhook::Model>, ServiceError> {
    actor.require_admin()?;
    Ok(webhook::Entity::find().order_by_asc(webhook::Column::Id).all(db).await?)
}

/// Deletes a webhook; deliveries still queued for it then do nothing.
#[tracing::instrument(skip(db, actor), fields(actor = actor.id))]
pub async fn delete(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let txn = crate::db::begin_write(db).await?;
    let row = webhook::Entity::find_by_id(id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    webhook::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(&txn, Some(actor), "webhook.deleted", "webhook", id, json!({"url": row.url})).await?;
    txn.commit().await?;
    Ok(())
}

/// The webhook a delivery is for, with its secret opened; `None` once deleted.
pub async fn for_delivery(
    db: &DatabaseConnection,
    key: &SecretKey,
    id: i64,
) -> Result<Option<(webhook::Model, Secret<String>)>, ServiceError> {
    let Some(row) = webhook::Entity::find_by_id(id).one(db).await? else { return Ok(None) };
    let secret = key.open(&row.secret_sealed).map_err(|e| ServiceError::Internal(format!("webhook {id}: {e}")))?;
    Ok(Some((row, secret)))
}

/// Records how an attempt to deliver to webhook `id` went, for admins to see.
pub async fn record_attempt(
    db: &DatabaseConnection,
    id: i64,
    status: DeliveryStatus,
    code: Option<u16>,
    error: Option<String>,
) -> Result<(), ServiceError> {
    webhook::Entity::update_many()
        .col_expr(webhook::Column::LastStatus, Expr::value(status.as_str()))
        .col_expr(webhook::Column::LastStatusCode, Expr::value(code.map(i32::from)))
        .col_expr(webhook::Column::LastError, Expr::value(error))
        .col_expr(webhook::Column::LastAttemptAt, Expr::value(Utc::now()))
        .filter(webhook::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn only_listed_hosts_and_names_under_a_wildcard_are_allowed() {
        let allowed = vec!["hooks.example.org".to_owned(), "*.corp.example".to_owned(), "127.0.0.1".to_owned()];
        assert!(host_allowed("https://hooks.example.org/x", &allowed));
        assert!(host_allowed("https://HOOKS.example.org:8443/x", &allowed));
        assert!(host_allowed("https://ci.corp.example/hook", &allowed));
        assert!(host_allowed("http://127.0.0.1:9000/", &allowed));
        assert!(!host_allowed("https://corp.example/hook", &allowed), "the wildcard is for names under it");
        assert!(!host_allowed("https://evilcorp.example/hook", &allowed));
        assert!(!host_allowed("https://hooks.example.org.evil.example/", &allowed));
        assert!(!host_allowed("http://10.0.0.1/", &allowed));
        assert!(host_allowed("http://10.0.0.1/", &[]), "no list: any host");
    }
}
