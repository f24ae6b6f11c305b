//! The sign-in policy an admin sets at run time: whether local accounts may still sign in with a
//! proxdesk password, or only the named break-glass admin may (everyone else through an outside
//! identity). Kept in the `settings` table so every replica sees the same policy.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, sea_query::OnConflict,
};
use serde_json::json;

use entities::{session, setting, user};

use super::{Actor, ServiceError, audit};
use crate::domain::FieldError;
use crate::domain::identity::{PasswordSignIn, SignInMethod};
use crate::domain::roles::Role;

const PASSWORD_SIGN_IN: &str = "password_sign_in";
const BREAK_GLASS_ADMIN: &str = "break_glass_admin";

/// The policy in force (`Everyone` until an admin changes it).
pub async fn get<C: ConnectionTrait>(conn: &C) -> Result<PasswordSignIn, ServiceError> {
    let rows = setting::Entity::find()
        .filter(setting::Column::Key.is_in([PASSWORD_SIGN_IN, BREAK_GLASS_ADMIN]))
        .all(conn)
        .await?;
    let value = |k: &str| rows.iter().find(|r| r.key == k).map(|r| r.value.clone());
    Ok(match (value(PASSWORD_SIGN_IN).as_deref(), value(BREAK_GLASS_ADMIN)) {
        (Some("break_glass_only"), Some(admin)) => PasswordSignIn::BreakGlassOnly { admin },
        _ => PasswordSignIn::Everyone,
    })
}

/// Sets the policy. Turning password sign-in off needs an enabled local admin with a password as the
/// break-glass account (so nobody is locked out while every outside provider is down) and ends the
/// password sessions of everyone else at once. Admins only; audited.
pub async fn set(db: &DatabaseConnection, actor: &Actor, policy: PasswordSignIn) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let txn = crate::db::begin_write(db).await?;
    let (mode, admin) = match &policy {
        PasswordSignIn::Everyone => ("everyone", String::new()),
        PasswordSignIn::BreakGlassOnly { admin } => {
            let found = user::Entity::find().filter(user::Column::Username.eq(admin.trim())).one(&txn).await?;
            let usable = found.as_ref().is_some_and(|u| {
                !u.disabled && !u.password_hash.is_empty() && Role::parse(&u.role) == Some(Role::Admin)
            });
            if !usable {
                return Err(FieldError::new("break_glass_admin", "error.break_glass_admin").into());
            }
            let admin = found.expect("checked");
            // Everyone else's password sessions end now; sessions opened through an identity stay.
            session::Entity::delete_many()
                .filter(session::Column::Method.eq(SignInMethod::Password.as_str()))
                .filter(session::Column::UserId.ne(admin.id))
                .exec(&txn)
                .await?;
            let admin = admin.username;
            ("break_glass_only", admin)
        }
    };
    let now = Utc::now();
    for (key, value) in [(PASSWORD_SIGN_IN, mode.to_owned()), (BREAK_GLASS_ADMIN, admin.clone())] {
        let row = setting::ActiveModel { key: Set(key.into()), value: Set(value), updated_at: Set(now) };
        setting::Entity::insert(row)
            .on_conflict(
                OnConflict::column(setting::Column::Key)
                    .update_columns([setting::Column::Value, setting::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec(&txn)
            .await?;
    }
    audit::record(
        &txn,
        Some(actor),
        "sign_in.policy_changed",
        "user",
        actor.id,
        json!({"password_sign_in": mode, "break_glass_admin": admin}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
