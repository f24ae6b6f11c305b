//! Accounts: creation, listing, disabling, password changes and resets, language.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde_json::json;

use entities::user;

use super::{Actor, Page, ServiceError, audit, auth, into_page, page_limit};
use crate::domain::roles::Role;
use crate::domain::values::{Username, check_new_password};
use crate::domain::{FieldError, FieldErrors};
use crate::secrets::{Secret, hash_password_async, random_password, verify_password_async};

pub const LANGUAGES: [&str; 3] = ["en", "fr", "it"];

/// A new account; with no password given, one is generated and returned once.
pub struct NewUser {
    pub username: String,
    pub role: Role,
    pub password: Option<Secret<String>>,
}

/// Creates an account. `actor` is `None` for the command line.
pub async fn create(
    db: &DatabaseConnection,
    actor: Option<&Actor>,
    new: NewUser,
) -> Result<(user::Model, Option<Secret<String>>), ServiceError> {
    if let Some(a) = actor {
        a.require_admin()?;
    }
    let mut errors = FieldErrors::default();
    let username = errors.take(Username::parse(&new.username));
    if let Some(pw) = &new.password {
        errors.take(check_new_password("password", pw.expose()));
    }
    errors.into_result()?;
    let username = username.expect("checked");
    let generated = new.password.is_none().then(|| random_password(16));
    let password = new.password.as_ref().or(generated.as_ref()).expect("one of them");
    let hash = hash_password_async(password).await.map_err(|e| ServiceError::Internal(e.to_string()))?;
    let txn = crate::db::begin_write(db).await?;
    if user::Entity::find().filter(user::Column::Username.eq(username.as_str())).one(&txn).await?.is_some() {
        return Err(FieldError::new("username", "error.username_taken").into());
    }
    let row = user::ActiveModel {
        username: Set(username.as_str().to_owned()),
        password_hash: Set(hash),
        role: Set(new.role.as_str().to_owned()),
        disabled: Set(false),
        language: Set(None),
        created_at: Set(Utc::now()),
        email: Set(None),
        display_name: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(&txn, actor, "user.created", "user", row.id, json!({"username": row.username, "role": row.role}))
        .await?;
    txn.commit().await?;
    Ok((row, generated))
}

pub async fn get(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<user::Model, ServiceError> {
    if actor.id != id {
        actor.require_admin()?;
    }
    user::Entity::find_by_id(id).one(db).await?.ok_or(ServiceError::NotFound)
}

pub async fn find_by_name(db: &DatabaseConnection, name: &str) -> Result<Option<user::Model>, ServiceError> {
    Ok(user::Entity::find().filter(user::Column::Username.eq(name)).one(db).await?)
}

/// Lists accounts by name. Admins only.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    search: Option<&str>,
    cursor: Option<i64>,
    limit: Option<u64>,
) -> Result<Page<user::Model>, ServiceError> {
    actor.require_admin()?;
    let limit = page_limit(limit);
    let mut q = user::Entity::find().order_by_asc(user::Column::Id);
    if let Some(s) = search.filter(|s| !s.is_empty()) {
        q = q.filter(user::Column::Username.contains(super::search_term(s)));
    }
    if let Some(c) = cursor {
        q = q.filter(user::Column::Id.gt(c));
    }
    let rows = q.limit(limit + 1).all(db).await?;
    Ok(into_page(rows, limit, |u| u.id))
}

/// Disables or re-enables an account; disabling ends its sessions at once.
pub async fn set_disabled(db: &DatabaseConnection, actor: &Actor, id: i64, disabled: bool) -> Result<(), ServiceError> {
    actor.require_admin()?;
    if actor.id == id && disabled {
        return Err(ServiceError::Conflict("you cannot disable your own account".into()));
    }
    let txn = db.begin().await?;
    let res = user::Entity::update_many()
        .col_expr(user::Column::Disabled, disabled.into())
        .filter(user::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(ServiceError::NotFound);
    }
    if disabled {
        auth::end_sessions(&txn, id).await?;
    }
    let action = if disabled { "user.disabled" } else { "user.enabled" };
    audit::record(&txn, Some(actor), action, "user", id, json!({})).await?;
    txn.commit().await?;
    Ok(())
}

/// Sets a new generated password (returned once), ends the account's sessions and revokes its API
/// tokens: whoever knew the old password may have made either. Admins only, and not for themselves
/// (that would sign them out and revoke the token asking): they change their own password.
pub async fn reset_password(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<Secret<String>, ServiceError> {
    actor.require_admin()?;
    if actor.id == id {
        return Err(ServiceError::Conflict("change your own password in your profile instead".into()));
    }
    let password = random_password(16);
    set_password(db, Some(actor), id, &password, Revoke::Everything).await?;
    Ok(password)
}

/// Where a password change comes from: for throttling wrong current passwords, and the session that
/// stays signed in (`None`: an API token, and every session ends).
pub struct ChangeOrigin<'a> {
    pub client_addr: &'a str,
    pub session: Option<&'a str>,
}

/// Changes the actor's own password after checking the current one (wrong ones count toward sign-in
/// throttling, like a failed sign-in); every other session of the account ends.
pub async fn change_own_password(
    db: &DatabaseConnection,
    actor: &Actor,
    current: &Secret<String>,
    new: &Secret<String>,
    origin: ChangeOrigin<'_>,
) -> Result<(), ServiceError> {
    let u = user::Entity::find_by_id(actor.id).one(db).await?.ok_or(ServiceError::NotFound)?;
    if u.password_hash.is_empty() {
        // Accounts made from an outside identity sign in there; an admin may give them a password.
        return Err(ServiceError::Conflict("this account has no proxdesk password".into()));
    }
    let attempt = super::throttle::attempt(db, &u.username, origin.client_addr).await?;
    let mut errors = FieldErrors::default();
    if verify_password_async(current, &u.password_hash).await {
        attempt.succeeded(db).await?;
    } else {
        errors.push(FieldError::new("current_password", "error.password_wrong"));
    }
    errors.take(check_new_password("new_password", new.expose()));
    errors.into_result()?;
    set_password(db, Some(actor), actor.id, new, Revoke::OtherSessions(origin.session)).await
}

/// What a new password ends.
enum Revoke<'a> {
    /// Every session and API token (an admin's reset).
    Everything,
    /// Every session but this one (the owner's own change).
    OtherSessions(Option<&'a str>),
}

async fn set_password(
    db: &DatabaseConnection,
    actor: Option<&Actor>,
    id: i64,
    password: &Secret<String>,
    revoke: Revoke<'_>,
) -> Result<(), ServiceError> {
    let hash = hash_password_async(password).await.map_err(|e| ServiceError::Internal(e.to_string()))?;
    let txn = db.begin().await?;
    let res = user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, hash.into())
        .filter(user::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(ServiceError::NotFound);
    }
    let (action, details) = match revoke {
        Revoke::Everything => {
            auth::end_sessions(&txn, id).await?;
            let tokens = super::tokens::revoke_all_in(&txn, id).await?;
            ("user.password_reset", json!({"tokens_revoked": tokens}))
        }
        Revoke::OtherSessions(keep) => {
            let ended = auth::end_other_sessions(&txn, id, keep).await?;
            ("user.password_changed", json!({"sessions_ended": ended}))
        }
    };
    audit::record(&txn, actor, action, "user", id, details).await?;
    txn.commit().await?;
    Ok(())
}

/// Sets the actor's UI language (`None`: follow the browser).
pub async fn set_language(db: &DatabaseConnection, actor: &Actor, language: Option<&str>) -> Result<(), ServiceError> {
    let language = match language.filter(|l| !l.is_empty()) {
        Some(l) if LANGUAGES.contains(&l) => Some(l.to_owned()),
        Some(_) => return Err(FieldError::new("language", "error.choice_invalid").into()),
        None => None,
    };
    user::Entity::update_many()
        .col_expr(user::Column::Language, language.into())
        .filter(user::Column::Id.eq(actor.id))
        .exec(db)
        .await?;
    Ok(())
}
