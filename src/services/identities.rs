//! Outside identities and the accounts they sign in as: one proxdesk account per person whichever way
//! they sign in. A provider's integration checks the person and hands over a `VerifiedIdentity`;
//! `sign_in` finds the linked account (or links by a verified e-mail, or makes a new account), applies
//! the provider's group → role mapping and opens the session, all in one audited transaction.
//! Admins list, link and unlink identities here too.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde_json::json;

use entities::{identity, session, user};

use super::auth::{NewSession, open_session};
use super::{Actor, ServiceError, audit, sign_in_policy};
use crate::domain::identity::{
    IdentityProvider, PasswordSignIn, RoleMapping, SignInMethod, VerifiedIdentity, account_name_candidates,
};
use crate::domain::login_name;
use crate::domain::roles::Role;
use crate::domain::{FieldError, FieldErrors};

/// Signs in the person `who` describes, as the account linked to that identity. Whether they are who they
/// say was decided by the caller (PVE, the directory, the OpenID provider): this only maps identity →
/// account. A disabled account stays out (`Unauthenticated`).
#[tracing::instrument(skip_all, fields(provider = who.provider.as_str(), subject = %who.subject))]
pub async fn sign_in(
    db: &DatabaseConnection,
    who: &VerifiedIdentity,
    mapping: &RoleMapping,
    session_hours: i64,
) -> Result<NewSession, ServiceError> {
    let txn = crate::db::begin_write(db).await?;
    let now = Utc::now();
    let linked = find(&txn, who.provider, &who.issuer, &who.subject).await?;
    let (account, identity_id) = match linked {
        Some(found) => {
            let account = user::Entity::find_by_id(found.user_id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
            let mut row: identity::ActiveModel = found.into();
            row.email = Set(who.email.clone());
            row.email_verified = Set(who.email_verified);
            row.display_name = Set(who.display_name.clone());
            row.last_sign_in_at = Set(Some(now));
            let row = row.update(&txn).await?;
            (account, row.id)
        }
        None => {
            let (account, how) = match account_by_verified_email(&txn, who).await? {
                Some(account) => (account, "verified_email"),
                None => (create_account(&txn, who, mapping).await?, "first_sign_in"),
            };
            let row = insert(&txn, account.id, who, Some(now)).await?;
            let details = identity_details(who.provider, &who.issuer, &who.subject, how);
            audit::record(&txn, None, "identity.linked", "user", account.id, details).await?;
            (account, row.id)
        }
    };
    let account = apply_mapping(&txn, account, who, mapping).await?;
    let details = json!({"identity": identity_id, "subject": who.subject});
    let session = open_session(&txn, account, SignInMethod::External(who.provider), session_hours, details).await?;
    txn.commit().await?;
    Ok(session)
}

/// The identities linked to account `user_id`, oldest first. The account itself or an admin.
pub async fn list_for_user(
    db: &DatabaseConnection,
    actor: &Actor,
    user_id: i64,
) -> Result<Vec<identity::Model>, ServiceError> {
    if actor.id != user_id {
        actor.require_admin()?;
    }
    Ok(identity::Entity::find()
        .filter(identity::Column::UserId.eq(user_id))
        .order_by_asc(identity::Column::Id)
        .all(db)
        .await?)
}

/// What an admin types to link an identity to an account before (or instead of) its first sign-in.
#[derive(Debug, Clone, Default)]
pub struct LinkInput {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
}

/// Links an identity to account `user_id`. An identity already linked to another account moves here
/// (that is how two accounts of one person become one). Admins only; audited on both accounts.
pub async fn link(
    db: &DatabaseConnection,
    actor: &Actor,
    user_id: i64,
    input: &LinkInput,
) -> Result<identity::Model, ServiceError> {
    actor.require_admin()?;
    let mut errors = FieldErrors::default();
    let provider = IdentityProvider::parse(input.provider.trim());
    if provider.is_none() {
        errors.push(FieldError::new("provider", "error.choice_invalid"));
    }
    let issuer = input.issuer.trim();
    let subject = input.subject.trim();
    if issuer.is_empty() || issuer.chars().count() > 255 {
        errors.push(FieldError::new("issuer", "error.required"));
    }
    if subject.is_empty() || subject.chars().count() > 255 {
        errors.push(FieldError::new("subject", "error.required"));
    }
    errors.into_result()?;
    let provider = provider.expect("checked");
    let txn = crate::db::begin_write(db).await?;
    user::Entity::find_by_id(user_id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    let row = match find(&txn, provider, issuer, subject).await? {
        Some(found) if found.user_id == user_id => return Ok(found),
        Some(found) => {
            let from = found.user_id;
            let mut row: identity::ActiveModel = found.into();
            row.user_id = Set(user_id);
            let row = row.update(&txn).await?;
            // The sessions it opened belonged to the other account; they end.
            end_identity_sessions(&txn, from, provider).await?;
            let details = identity_details(provider, issuer, subject, "admin");
            audit::record(&txn, Some(actor), "identity.unlinked", "user", from, details).await?;
            row
        }
        None => {
            let who = VerifiedIdentity {
                provider,
                issuer: issuer.to_owned(),
                subject: subject.to_owned(),
                preferred_username: String::new(),
                display_name: None,
                email: None,
                email_verified: false,
                groups: vec![],
            };
            insert(&txn, user_id, &who, None).await?
        }
    };
    audit::record(
        &txn,
        Some(actor),
        "identity.linked",
        "user",
        user_id,
        identity_details(provider, issuer, subject, "admin"),
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// Unlinks identity `identity_id` from its account; its next sign-in makes or finds an account anew.
/// Refused when it is the only way left into an account without a password. Admins only; audited.
pub async fn unlink(db: &DatabaseConnection, actor: &Actor, identity_id: i64) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let txn = crate::db::begin_write(db).await?;
    let found = identity::Entity::find_by_id(identity_id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    let account = user::Entity::find_by_id(found.user_id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    let others = identity::Entity::find()
        .filter(identity::Column::UserId.eq(account.id))
        .filter(identity::Column::Id.ne(found.id))
        .all(&txn)
        .await?;
    if account.password_hash.is_empty() && others.is_empty() {
        return Err(ServiceError::Conflict(
            "this is the account's only way to sign in; reset its password or link another identity first".into(),
        ));
    }
    identity::Entity::delete_by_id(found.id).exec(&txn).await?;
    if let Some(provider) = IdentityProvider::parse(&found.provider)
        && !others.iter().any(|o| o.provider == found.provider)
    {
        end_identity_sessions(&txn, account.id, provider).await?;
    }
    let details = json!({"provider": found.provider, "issuer": found.issuer, "subject": found.subject, "by": "admin"});
    audit::record(&txn, Some(actor), "identity.unlinked", "user", account.id, details).await?;
    txn.commit().await?;
    Ok(())
}

/// The PVE user id (`alice@pve`) of the account's Proxmox VE identity, if it has one: what its
/// "machines I already have in Proxmox" are evaluated for.
pub async fn pve_userid<C: ConnectionTrait>(conn: &C, user_id: i64) -> Result<Option<String>, ServiceError> {
    Ok(identity::Entity::find()
        .filter(identity::Column::UserId.eq(user_id))
        .filter(identity::Column::Provider.eq(IdentityProvider::Pve.as_str()))
        .order_by_asc(identity::Column::Id)
        .one(conn)
        .await?
        .map(|i| i.subject))
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    provider: IdentityProvider,
    issuer: &str,
    subject: &str,
) -> Result<Option<identity::Model>, ServiceError> {
    Ok(identity::Entity::find()
        .filter(identity::Column::Provider.eq(provider.as_str()))
        .filter(identity::Column::Issuer.eq(issuer))
        .filter(identity::Column::Subject.eq(subject))
        .one(conn)
        .await?)
}

async fn insert<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    who: &VerifiedIdentity,
    signed_in: Option<chrono::DateTime<Utc>>,
) -> Result<identity::Model, ServiceError> {
    Ok(identity::ActiveModel {
        user_id: Set(user_id),
        provider: Set(who.provider.as_str().to_owned()),
        issuer: Set(who.issuer.clone()),
        subject: Set(who.subject.clone()),
        email: Set(who.email.clone()),
        email_verified: Set(who.email_verified),
        display_name: Set(who.display_name.clone()),
        created_at: Set(Utc::now()),
        last_sign_in_at: Set(signed_in),
        ..Default::default()
    }
    .insert(conn)
    .await?)
}

/// The account whose verified e-mail address equals the identity's, when the provider says the address
/// is verified. An address that came unverified never links: anyone can claim any address.
async fn account_by_verified_email<C: ConnectionTrait>(
    conn: &C,
    who: &VerifiedIdentity,
) -> Result<Option<user::Model>, ServiceError> {
    let Some(email) = who.email.as_deref().map(str::trim).filter(|e| who.email_verified && e.contains('@')) else {
        return Ok(None);
    };
    let email = email.to_lowercase();
    Ok(user::Entity::find().filter(user::Column::Email.eq(email)).one(conn).await?)
}

/// A new account for a first sign-in: the provider's preferred name (made unique), no password, the role
/// the mapping gives (or `user`), and the e-mail address only when verified. A preferred name that is a
/// system account's (`root`, `root@pam`, `www-data`) is refused rather than numbered: `root-2` would
/// hide who it is, and the person gets an account from an admin instead.
async fn create_account<C: ConnectionTrait>(
    conn: &C,
    who: &VerifiedIdentity,
    mapping: &RoleMapping,
) -> Result<user::Model, ServiceError> {
    let mut candidates = account_name_candidates(&who.preferred_username).peekable();
    if let Some(first) = candidates.peek()
        && let Err(e) = login_name::check(first)
    {
        tracing::warn!(account = %first, "first sign-in refused: the account name is a system account's");
        return Err(e.into());
    }
    let mut name = None;
    for candidate in candidates.take(100) {
        if user::Entity::find().filter(user::Column::Username.eq(candidate.as_str())).one(conn).await?.is_none() {
            name = Some(candidate);
            break;
        }
    }
    let name = name.ok_or_else(|| ServiceError::Internal("no free account name".into()))?;
    let role = mapping.role_for(&who.groups).unwrap_or(Role::User);
    let email = who.email.as_deref().filter(|_| who.email_verified).map(|e| e.trim().to_lowercase());
    let row = user::ActiveModel {
        username: Set(name),
        password_hash: Set(String::new()),
        role: Set(role.as_str().to_owned()),
        disabled: Set(false),
        language: Set(None),
        created_at: Set(Utc::now()),
        email: Set(email),
        display_name: Set(who.display_name.clone()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    let details = json!({"username": row.username, "role": row.role, "via": who.provider.as_str()});
    audit::record(conn, None, "user.created", "user", row.id, details).await?;
    Ok(row)
}

/// Applies the provider's group → role mapping at each sign-in, so a person removed from the admin group
/// is a user the next time. The break-glass admin is never demoted by a mapping.
async fn apply_mapping<C: ConnectionTrait>(
    conn: &C,
    account: user::Model,
    who: &VerifiedIdentity,
    mapping: &RoleMapping,
) -> Result<user::Model, ServiceError> {
    let Some(role) = mapping.role_for(&who.groups) else {
        return Ok(account);
    };
    if account.role == role.as_str() {
        return Ok(account);
    }
    if role == Role::User
        && let PasswordSignIn::BreakGlassOnly { admin } = sign_in_policy::get(conn).await?
        && admin == account.username
    {
        return Ok(account);
    }
    let from = account.role.clone();
    let mut row: user::ActiveModel = account.into();
    row.role = Set(role.as_str().to_owned());
    let account = row.update(conn).await?;
    let details = json!({"from": from, "to": role.as_str(), "via": who.provider.as_str(), "groups": who.groups});
    audit::record(conn, None, "user.role_changed", "user", account.id, details).await?;
    Ok(account)
}

async fn end_identity_sessions<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    provider: IdentityProvider,
) -> Result<(), ServiceError> {
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::Method.eq(provider.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

fn identity_details(provider: IdentityProvider, issuer: &str, subject: &str, by: &str) -> serde_json::Value {
    json!({"provider": provider.as_str(), "issuer": issuer, "subject": subject, "by": by})
}
