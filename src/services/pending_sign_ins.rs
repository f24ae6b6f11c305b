//! Half-done sign-ins waiting for the person's next step (an OpenID Connect redirect, a Proxmox VE
//! second factor). The browser carries a random token; the database keeps only its SHA-256 and the
//! flow's payload, sealed with the instance key. A token is taken once: a replay, an expired token or a
//! token of another flow finds nothing.

use chrono::{Duration, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Serialize, de::DeserializeOwned};

use entities::pending_sign_in;

use super::ServiceError;
use crate::domain::identity::IdentityProvider;
use crate::secrets::{Secret, SecretKey, random_token, sha256_hex};

/// Stores `payload` for `provider`'s flow for `ttl`; returns the token to hand to the browser (once).
pub async fn create<T: Serialize>(
    db: &DatabaseConnection,
    key: &SecretKey,
    provider: IdentityProvider,
    payload: &T,
    ttl: Duration,
) -> Result<Secret<String>, ServiceError> {
    let token = random_token(32);
    let json = serde_json::to_string(payload).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let now = Utc::now();
    // Old rows of abandoned sign-ins go as new ones come.
    pending_sign_in::Entity::delete_many().filter(pending_sign_in::Column::ExpiresAt.lt(now)).exec(db).await?;
    let row = pending_sign_in::ActiveModel {
        state_hash: Set(sha256_hex(token.expose())),
        provider: Set(provider.as_str().to_owned()),
        payload: Set(key.seal(&json)),
        created_at: Set(now),
        expires_at: Set(now + ttl),
    };
    pending_sign_in::Entity::insert(row).exec(db).await?;
    Ok(token)
}

/// Takes the payload `token` names for `provider`'s flow, deleting it: `None` when unknown, expired,
/// already taken or of another flow. Two concurrent takes of one token: one wins.
pub async fn take<T: DeserializeOwned>(
    db: &DatabaseConnection,
    key: &SecretKey,
    provider: IdentityProvider,
    token: &str,
) -> Result<Option<T>, ServiceError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let hash = sha256_hex(token);
    let Some(row) = pending_sign_in::Entity::find_by_id(hash.clone()).one(db).await? else {
        return Ok(None);
    };
    let deleted = pending_sign_in::Entity::delete_many()
        .filter(pending_sign_in::Column::StateHash.eq(hash))
        .filter(pending_sign_in::Column::Provider.eq(provider.as_str()))
        .filter(pending_sign_in::Column::ExpiresAt.gt(Utc::now()))
        .exec(db)
        .await?;
    if deleted.rows_affected != 1 {
        return Ok(None);
    }
    let json = key.open(&row.payload).map_err(|e| ServiceError::Internal(e.to_string()))?;
    serde_json::from_str(json.expose()).map(Some).map_err(|e| ServiceError::Internal(e.to_string()))
}
