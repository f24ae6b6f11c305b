//! Personal API tokens: shown once, stored as SHA-256, named, revocable, with a last-used time.

use chrono::{Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde_json::json;

use entities::{api_token, user};

use super::{Actor, ServiceError, audit};
use crate::domain::values::bounded_text;
use crate::secrets::{Secret, random_token, sha256_hex};

/// Prefix of every token, so leaked ones are easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "pdk_";

/// Creates a token for `owner_id` (the actor, or anyone when the actor is an admin or the CLI).
pub async fn create(
    db: &DatabaseConnection,
    actor: Option<&Actor>,
    owner_id: i64,
    name: &str,
) -> Result<(api_token::Model, Secret<String>), ServiceError> {
    if let Some(a) = actor
        && a.id != owner_id
    {
        a.require_admin()?;
    }
    let name = bounded_text("name", name, 1, 64)?;
    let token = Secret::new(format!("{TOKEN_PREFIX}{}", random_token(32).expose()));
    let txn = db.begin().await?;
    let row = api_token::ActiveModel {
        user_id: Set(owner_id),
        name: Set(name.clone()),
        prefix: Set(token.expose()[..TOKEN_PREFIX.len() + 6].to_owned()),
        token_hash: Set(sha256_hex(token.expose())),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(&txn, actor, "token.created", "token", row.id, json!({"name": name, "user_id": owner_id})).await?;
    txn.commit().await?;
    Ok((row, token))
}

/// The actor's live tokens, newest first.
pub async fn list(db: &DatabaseConnection, actor: &Actor) -> Result<Vec<api_token::Model>, ServiceError> {
    Ok(api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(actor.id))
        .filter(api_token::Column::RevokedAt.is_null())
        .order_by_desc(api_token::Column::Id)
        .all(db)
        .await?)
}

/// Revokes a token of the actor's (admins: anyone's). Another user's token is "not found".
pub async fn revoke(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<(), ServiceError> {
    let txn = db.begin().await?;
    let mut q = api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Some(Utc::now()).into())
        .filter(api_token::Column::Id.eq(id))
        .filter(api_token::Column::RevokedAt.is_null());
    if !actor.is_admin() {
        q = q.filter(api_token::Column::UserId.eq(actor.id));
    }
    if q.exec(&txn).await?.rows_affected == 0 {
        return Err(ServiceError::NotFound);
    }
    audit::record(&txn, Some(actor), "token.revoked", "token", id, json!({})).await?;
    txn.commit().await?;
    Ok(())
}

/// Revokes every live token of `user_id` (an admin reset the password: whoever knew it may have made
/// tokens). Answers how many.
pub async fn revoke_all_in<C: sea_orm::ConnectionTrait>(conn: &C, user_id: i64) -> Result<u64, ServiceError> {
    let done = api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Some(Utc::now()).into())
        .filter(api_token::Column::UserId.eq(user_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}

/// The owner of a live token. Records the last-used time at most once a minute, so reads stay reads.
pub async fn authenticate(db: &DatabaseConnection, token: &str) -> Result<Option<Actor>, ServiceError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let found = api_token::Entity::find()
        .find_also_related(user::Entity)
        .filter(api_token::Column::TokenHash.eq(sha256_hex(token)))
        .filter(api_token::Column::RevokedAt.is_null())
        .one(db)
        .await?;
    let Some((t, Some(u))) = found.filter(|(_, u)| u.as_ref().is_some_and(|u| !u.disabled)) else {
        return Ok(None);
    };
    let now = Utc::now();
    if t.last_used_at.is_none_or(|at| now - at > Duration::seconds(60)) {
        api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Some(now).into())
            .filter(api_token::Column::Id.eq(t.id))
            .exec(db)
            .await?;
    }
    Ok(Some(u.try_into()?))
}
