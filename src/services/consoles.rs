//! Console access: who may open a machine's console, and single-use console URLs for API clients.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;

use entities::{console_token, machine, user};

use super::console_sessions::{self, SessionSubject};
use super::{Actor, ServiceError, audit, machines};
use crate::console::ConsoleKind;
use crate::domain::console_caps::ConsoleCaps;
use crate::domain::guest::GuestType;
use crate::domain::request_status::RequestStatus;
use crate::integrations::pve;
use crate::secrets::{Secret, random_token, sha256_hex};

/// How long a console URL stays valid before its first (and only) use.
pub const TOKEN_LIFETIME_SECS: i64 = 60;

/// The machine whose console `actor` wants, if they own it (or are an admin) and it has a container that
/// is not lost. Opening the console verifies the container itself ([`super::lost_machines::verify`]).
pub async fn machine_for_console(
    db: &DatabaseConnection,
    actor: &Actor,
    machine_id: i64,
) -> Result<machine::Model, ServiceError> {
    let m = machines::get(db, actor, machine_id).await?;
    if m.deleted_at.is_some() || m.vmid.is_none() {
        return Err(ServiceError::Conflict("the machine has no container".into()));
    }
    if let Some(e) = super::lost_machines::lost_error(&m) {
        return Err(e);
    }
    Ok(m)
}

/// Whether machine `m` has a terminal console: a container always (its shell), a VM only when its config
/// has the serial port `serial0` on a socket, which termproxy attaches to (`qm terminal` refuses any
/// other). Read from the config whenever a page or a socket asks, not kept: an admin may add or remove
/// the port at any time, and the config read is one cheap call.
pub async fn has_terminal(pve: &pve::Client, m: &machine::Model) -> Result<bool, ServiceError> {
    let (GuestType::Qemu, Some(vmid)) = (machines::guest_type(m)?, m.vmid) else { return Ok(true) };
    guest_has_terminal(pve, &m.node, GuestType::Qemu, vmid as u64).await
}

/// [`has_terminal`] for any guest of the cluster: a container always, a VM with `serial0: socket`.
pub async fn guest_has_terminal(pve: &pve::Client, node: &str, ty: GuestType, vmid: u64) -> Result<bool, ServiceError> {
    if ty == GuestType::Lxc {
        return Ok(true);
    }
    let config = pve.guest_config(node, GuestType::Qemu, vmid).await.map_err(super::lost_machines::pve_error)?;
    Ok(has_serial_socket(&config))
}

/// `serial0: socket` in a VM's config.
pub fn has_serial_socket(config: &pve::wire::GuestConfig) -> bool {
    config.other.get("serial0").and_then(|v| v.as_str()).is_some_and(|v| v.trim() == "socket")
}

/// A single-use token for one console session of `machine_id`, valid [`TOKEN_LIFETIME_SECS`]; refused
/// (and audited) when the person already has the most console sessions open, or was issued the most
/// URLs in the last minute.
pub async fn issue(
    db: &DatabaseConnection,
    caps: ConsoleCaps,
    actor: &Actor,
    machine_id: i64,
    kind: ConsoleKind,
) -> Result<(Secret<String>, DateTime<Utc>), ServiceError> {
    machine_for_console(db, actor, machine_id).await?;
    let subject = SessionSubject::Machine(machine_id);
    let (token, expires_at) = match issue_capped(db, caps, actor, subject, kind, kind.as_str()).await {
        Err(ServiceError::ConsoleCap(r)) => {
            return Err(console_sessions::refused(db, actor, subject, kind, "api", r).await);
        }
        other => other?,
    };
    let details = json!({"kind": kind.as_str(), "expires_at": expires_at.to_rfc3339()});
    audit::record(db, Some(actor), "console.url_issued", "machine", machine_id, details).await?;
    Ok((token, expires_at))
}

/// Stores a token for `subject` under `label` once both caps allow it.
pub(crate) async fn issue_capped(
    db: &DatabaseConnection,
    caps: ConsoleCaps,
    actor: &Actor,
    subject: SessionSubject,
    kind: ConsoleKind,
    label: &str,
) -> Result<(Secret<String>, DateTime<Utc>), ServiceError> {
    console_sessions::room_for(db, caps, actor, subject, kind).await?;
    store_token(db, caps, actor, subject.parts().1, label).await
}

/// Stores a fresh single-use token for `actor` and `subject_id` under `label` (a machine's console
/// kind, or another subject's own label), valid [`TOKEN_LIFETIME_SECS`], unless `actor` was issued
/// `caps.urls_per_minute` in the last minute.
async fn store_token(
    db: &DatabaseConnection,
    caps: ConsoleCaps,
    actor: &Actor,
    subject_id: i64,
    label: &str,
) -> Result<(Secret<String>, DateTime<Utc>), ServiceError> {
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    console_sessions::admit_url(&txn, caps, actor.id, now).await?;
    // Kept an hour past expiry: the URL cap counts the last minute's.
    console_token::Entity::delete_many()
        .filter(console_token::Column::ExpiresAt.lt(now - Duration::hours(1)))
        .exec(&txn)
        .await?;
    let token = random_token(32);
    let expires_at = now + Duration::seconds(TOKEN_LIFETIME_SECS);
    let row = console_token::ActiveModel {
        token_hash: Set(sha256_hex(token.expose())),
        user_id: Set(actor.id),
        machine_id: Set(subject_id),
        kind: Set(label.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
    };
    console_token::Entity::insert(row).exec_without_returning(&txn).await?;
    txn.commit().await?;
    Ok((token, expires_at))
}

/// Uses up `token` for `machine_id` and `kind`: the actor it was issued to, or `None` when it is
/// unknown, expired, already used, for another machine or console, or its user is disabled.
pub async fn redeem(
    db: &DatabaseConnection,
    token: &str,
    machine_id: i64,
    kind: ConsoleKind,
) -> Result<Option<Actor>, ServiceError> {
    redeem_labelled(db, token, machine_id, kind.as_str()).await
}

/// [`redeem`] for a token stored by [`store_token`] under `label`.
pub(crate) async fn redeem_labelled(
    db: &DatabaseConnection,
    token: &str,
    subject_id: i64,
    label: &str,
) -> Result<Option<Actor>, ServiceError> {
    let hash = sha256_hex(token);
    let now = Utc::now();
    // One UPDATE decides, so two concurrent uses cannot both win.
    let used = console_token::Entity::update_many()
        .col_expr(console_token::Column::UsedAt, Expr::value(now))
        .filter(console_token::Column::TokenHash.eq(hash.clone()))
        .filter(console_token::Column::UsedAt.is_null())
        .filter(console_token::Column::ExpiresAt.gt(now))
        .filter(console_token::Column::MachineId.eq(subject_id))
        .filter(console_token::Column::Kind.eq(label))
        .exec(db)
        .await?;
    if used.rows_affected != 1 {
        return Ok(None);
    }
    let Some(row) = console_token::Entity::find_by_id(hash).one(db).await? else { return Ok(None) };
    match user::Entity::find_by_id(row.user_id).one(db).await? {
        Some(u) if !u.disabled => Ok(Some(u.try_into()?)),
        _ => Ok(None),
    }
}

/// Whether machine `machine_id` still has its container for a console: not deleted, not lost, and its
/// request not being deleted. Open console sessions end once this turns false.
pub async fn still_available(db: &DatabaseConnection, machine_id: i64) -> Result<bool, ServiceError> {
    let Some(m) = machine::Entity::find_by_id(machine_id).one(db).await? else { return Ok(false) };
    if m.deleted_at.is_some() || m.lost_at.is_some() || m.vmid.is_none() {
        return Ok(false);
    }
    let status = entities::request::Entity::find_by_id(m.request_id).one(db).await?.map(|r| r.status);
    Ok(status.as_deref() != Some(RequestStatus::Deleting.as_str()))
}
