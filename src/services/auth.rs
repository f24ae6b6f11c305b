//! Logging in and out: password checks with throttling per account and per client address, and
//! server-side sessions (the cookie carries a random token, the table only its hash).

use chrono::{Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

use entities::{login_failure, session, user};

use super::{Actor, ServiceError};
use crate::secrets::{Secret, random_token, sha256_hex, verify_password};

/// Failed attempts allowed per account, and per client address, within `WINDOW_MINUTES`.
pub const MAX_FAILURES_PER_ACCOUNT: u64 = 5;
pub const MAX_FAILURES_PER_ADDRESS: u64 = 20;
pub const WINDOW_MINUTES: i64 = 15;

/// A fresh session: the cookie value (shown once) and its owner.
pub struct NewSession {
    pub token: Secret<String>,
    pub actor: Actor,
}

/// Checks a password and opens a session. Unknown users, wrong passwords and disabled accounts all
/// give the same `Unauthenticated`, so nothing is revealed.
#[tracing::instrument(skip(db, password))]
pub async fn login(
    db: &DatabaseConnection,
    username: &str,
    password: &Secret<String>,
    client_addr: &str,
    session_hours: i64,
) -> Result<NewSession, ServiceError> {
    let username = username.trim().to_ascii_lowercase();
    let account_scope = format!("user:{username}");
    let addr_scope = format!("addr:{client_addr}");
    for (scope, max) in [(&account_scope, MAX_FAILURES_PER_ACCOUNT), (&addr_scope, MAX_FAILURES_PER_ADDRESS)] {
        if let Some(retry_after_secs) = throttled(db, scope, max).await? {
            return Err(ServiceError::Throttled { retry_after_secs });
        }
    }
    let found = user::Entity::find().filter(user::Column::Username.eq(&username)).one(db).await?;
    let ok = match &found {
        Some(u) => verify_password(password, &u.password_hash) && !u.disabled,
        None => {
            // Spend the same time on unknown users so timing does not reveal which names exist.
            let _ = verify_password(password, DUMMY_HASH);
            false
        }
    };
    let Some(user) = found.filter(|_| ok) else {
        let now = Utc::now();
        for scope in [account_scope, addr_scope] {
            let row = login_failure::ActiveModel { scope: Set(scope), at: Set(now), ..Default::default() };
            login_failure::Entity::insert(row).exec(db).await?;
        }
        tracing::info!(%username, "login failed");
        return Err(ServiceError::Unauthenticated);
    };
    login_failure::Entity::delete_many().filter(login_failure::Column::Scope.eq(account_scope)).exec(db).await?;
    let token = random_token(32);
    let now = Utc::now();
    let row = session::ActiveModel {
        token_hash: Set(sha256_hex(token.expose())),
        user_id: Set(user.id),
        created_at: Set(now),
        expires_at: Set(now + Duration::hours(session_hours)),
    };
    session::Entity::insert(row).exec(db).await?;
    tracing::info!(user_id = user.id, "login");
    Ok(NewSession { token, actor: user.try_into()? })
}

/// A valid argon2id hash of a random string, verified against for unknown users.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0yJ6ZKRz8iOXb0bqFj7bQ0DKzNiPPhkgn5QZ6D0XzTk";

/// `Some(seconds until the oldest counted failure leaves the window)` when `scope` is locked.
async fn throttled(db: &DatabaseConnection, scope: &str, max: u64) -> Result<Option<i64>, ServiceError> {
    let since = Utc::now() - Duration::minutes(WINDOW_MINUTES);
    let recent = login_failure::Entity::find()
        .filter(login_failure::Column::Scope.eq(scope))
        .filter(login_failure::Column::At.gt(since));
    if recent.clone().count(db).await? < max {
        return Ok(None);
    }
    let oldest = recent.order_by_asc(login_failure::Column::At).one(db).await?;
    let retry = oldest.map(|f| (f.at - since).num_seconds().max(1)).unwrap_or(WINDOW_MINUTES * 60);
    Ok(Some(retry))
}

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
