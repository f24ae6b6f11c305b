//! Logging in and out: password checks (throttled by `throttle`), and server-side sessions (the cookie
//! carries a random token, the table only its hash).

use chrono::{Duration, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};

use entities::{session, user};

use super::{Actor, ServiceError};
use crate::domain::identity::SignInMethod;
use crate::secrets::{Secret, random_token, sha256_hex, verify_password_async};

/// A fresh session: the cookie value (shown once) and its owner.
pub struct NewSession {
    pub token: Secret<String>,
    pub actor: Actor,
    pub method: SignInMethod,
}

/// Checks a local account's password and opens a session. Unknown users, wrong passwords and disabled
/// accounts all give the same `Unauthenticated`, so nothing is revealed; a right password of an account
/// the sign-in policy keeps out (`sign_in_policy`) gives `Forbidden`.
#[tracing::instrument(skip(db, password))]
pub async fn login(
    db: &DatabaseConnection,
    username: &str,
    password: &Secret<String>,
    client_addr: &str,
    session_hours: i64,
) -> Result<NewSession, ServiceError> {
    let username = username.trim().to_ascii_lowercase();
    // Counted before the check, known name or not, so timing tells neither apart.
    let attempt = super::throttle::attempt(db, &username, client_addr).await?;
    let found = user::Entity::find().filter(user::Column::Username.eq(&username)).one(db).await?;
    let ok = match &found {
        // An account made from an outside identity has no password (an empty hash never verifies).
        Some(u) => verify_password_async(password, &u.password_hash).await && !u.disabled,
        None => {
            // Spend the same time on unknown users so timing does not reveal which names exist.
            let _ = verify_password_async(password, DUMMY_HASH).await;
            false
        }
    };
    let Some(user) = found.filter(|_| ok) else {
        tracing::info!(%username, "login failed");
        crate::metrics::sign_in_failed(crate::metrics::labels::SignInMethod::Password);
        return Err(ServiceError::Unauthenticated);
    };
    attempt.succeeded(db).await?;
    if !super::sign_in_policy::get(db).await?.allows(&user.username) {
        tracing::info!(%username, "password sign-in refused by the sign-in policy");
        return Err(ServiceError::Forbidden);
    }
    let txn = crate::db::begin_write(db).await?;
    let session = open_session(&txn, user, SignInMethod::Password, session_hours, serde_json::json!({})).await?;
    txn.commit().await?;
    Ok(session)
}

/// Opens a session for `user` (already checked by `method`) and audits the sign-in with `details`
/// (which identity, never a secret). Call inside the transaction that decided who `user` is.
pub async fn open_session<C: ConnectionTrait>(
    conn: &C,
    user: user::Model,
    method: SignInMethod,
    session_hours: i64,
    mut details: serde_json::Value,
) -> Result<NewSession, ServiceError> {
    if user.disabled {
        return Err(ServiceError::Unauthenticated);
    }
    let token = random_token(32);
    let now = Utc::now();
    let row = session::ActiveModel {
        token_hash: Set(sha256_hex(token.expose())),
        user_id: Set(user.id),
        created_at: Set(now),
        expires_at: Set(now + Duration::hours(session_hours)),
        method: Set(method.as_str().to_owned()),
    };
    session::Entity::insert(row).exec(conn).await?;
    let actor: Actor = user.try_into()?;
    if let Some(map) = details.as_object_mut() {
        map.insert("method".into(), method.as_str().into());
    }
    super::audit::record(conn, Some(&actor), "user.signed_in", "user", actor.id, details).await?;
    tracing::info!(user_id = actor.id, method = method.as_str(), "login");
    Ok(NewSession { token, actor, method })
}

/// A valid argon2id hash of a random string, verified against for unknown users.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0yJ6ZKRz8iOXb0bqFj7bQ0DKzNiPPhkgn5QZ6D0XzTk";

/// The user behind a session cookie, if the session is live and the account enabled.
pub async fn session_actor(db: &DatabaseConnection, token: &str) -> Result<Option<Actor>, ServiceError> {
    let found = session::Entity::find_by_id(sha256_hex(token)).find_also_related(user::Entity).one(db).await?;
    let Some((s, u)) = found else {
        return Ok(None);
    };
    if s.expires_at < Utc::now() {
        session::Entity::delete_by_id(s.token_hash).exec(db).await?;
        return Ok(None);
    }
    match u {
        Some(u) if !u.disabled => Ok(Some(u.try_into()?)),
        _ => Ok(None),
    }
}

/// Ends the session behind `token`.
pub async fn logout(db: &DatabaseConnection, token: &str) -> Result<(), ServiceError> {
    session::Entity::delete_by_id(sha256_hex(token)).exec(db).await?;
    Ok(())
}

/// Ends every session of `user_id` but the one behind `keep`: the person who just changed the password
/// stays signed in where they did it, and nowhere else.
pub async fn end_other_sessions<C: sea_orm::ConnectionTrait>(
    conn: &C,
    user_id: i64,
    keep: Option<&str>,
) -> Result<u64, ServiceError> {
    let mut q = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
    if let Some(token) = keep {
        q = q.filter(session::Column::TokenHash.ne(sha256_hex(token)));
    }
    Ok(q.exec(conn).await?.rows_affected)
}

/// Ends every session of `user_id` (disabled account, password reset).
pub async fn end_sessions<C: sea_orm::ConnectionTrait>(conn: &C, user_id: i64) -> Result<(), ServiceError> {
    session::Entity::delete_many().filter(session::Column::UserId.eq(user_id)).exec(conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_dummy_hash_is_a_valid_argon2id_hash() {
        let pw = crate::secrets::Secret::new("x".to_string());
        // Must parse (so verification takes full time) and must not match.
        assert!(argon2::password_hash::PasswordHash::new(super::DUMMY_HASH).is_ok());
        assert!(!crate::secrets::verify_password(&pw, super::DUMMY_HASH));
    }
}
