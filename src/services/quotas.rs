//! Quotas: per role, with per-user overrides; and what a user currently holds.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, sea_query::OnConflict,
};
use serde_json::json;

use entities::{request, role_quota, user, user_quota};

use super::{Actor, ServiceError, audit};
use crate::domain::FieldError;
use crate::domain::quota::{Quota, QuotaOverride, Resources, Usage};
use crate::domain::request_status::RequestStatus;
use crate::domain::roles::Role;

fn quota_of(q: &role_quota::Model) -> Quota {
    Quota {
        max_machines: q.max_machines,
        max_cores: q.max_cores,
        max_memory_mib: q.max_memory_mib,
        max_disk_gib: q.max_disk_gib,
    }
}

/// Every role's quota.
pub async fn role_quotas<C: ConnectionTrait>(conn: &C) -> Result<Vec<(Role, Quota)>, ServiceError> {
    let rows = role_quota::Entity::find().all(conn).await?;
    Ok(Role::ALL
        .into_iter()
        .map(|r| {
            let q = rows.iter().find(|q| q.role == r.as_str()).map(quota_of);
            (r, q.unwrap_or(Quota { max_machines: 0, max_cores: 0, max_memory_mib: 0, max_disk_gib: 0 }))
        })
        .collect())
}

/// A user's override, if any.
pub async fn user_override<C: ConnectionTrait>(conn: &C, user_id: i64) -> Result<QuotaOverride, ServiceError> {
    Ok(user_quota::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .map(|o| QuotaOverride {
            max_machines: o.max_machines,
            max_cores: o.max_cores,
            max_memory_mib: o.max_memory_mib,
            max_disk_gib: o.max_disk_gib,
        })
        .unwrap_or_default())
}

/// The quota that applies to `user_id`.
pub async fn effective<C: ConnectionTrait>(conn: &C, user_id: i64) -> Result<Quota, ServiceError> {
    let u = user::Entity::find_by_id(user_id).one(conn).await?.ok_or(ServiceError::NotFound)?;
    let role = Role::parse(&u.role).unwrap_or(Role::User);
    let base = role_quotas(conn).await?.into_iter().find(|(r, _)| *r == role).map(|(_, q)| q);
    Ok(base.expect("every role listed").with_override(user_override(conn, user_id).await?))
}

/// What `user_id`'s pending and active requests hold.
pub async fn usage<C: ConnectionTrait>(conn: &C, user_id: i64) -> Result<Usage, ServiceError> {
    let holding: Vec<&str> = RequestStatus::ALL.into_iter().filter(|s| s.holds_quota()).map(|s| s.as_str()).collect();
    let rows = request::Entity::find()
        .filter(request::Column::UserId.eq(user_id))
        .filter(request::Column::Status.is_in(holding))
        .all(conn)
        .await?;
    let mut usage = Usage::default();
    for r in rows {
        usage.add(Resources { cores: r.cores, memory_mib: r.memory_mib, disk_gib: r.disk_gib });
    }
    Ok(usage)
}

fn check(q: &Quota) -> Result<(), FieldError> {
    for (field, v) in [
        ("max_machines", q.max_machines),
        ("max_cores", q.max_cores),
        ("max_memory_mib", q.max_memory_mib),
        ("max_disk_gib", q.max_disk_gib),
    ] {
        if !(0..=1_000_000).contains(&v) {
            return Err(FieldError::new(field, "error.quota_range"));
        }
    }
    Ok(())
}

/// Sets a role's quota (admin).
pub async fn set_role_quota(db: &DatabaseConnection, actor: &Actor, role: Role, q: Quota) -> Result<(), ServiceError> {
    actor.require_admin()?;
    check(&q)?;
    let txn = crate::db::begin_write(db).await?;
    let row = role_quota::ActiveModel {
        role: Set(role.as_str().to_owned()),
        max_machines: Set(q.max_machines),
        max_cores: Set(q.max_cores),
        max_memory_mib: Set(q.max_memory_mib),
        max_disk_gib: Set(q.max_disk_gib),
    };
    role_quota::Entity::insert(row)
        .on_conflict(
            OnConflict::column(role_quota::Column::Role)
                .update_columns([
                    role_quota::Column::MaxMachines,
                    role_quota::Column::MaxCores,
                    role_quota::Column::MaxMemoryMib,
                    role_quota::Column::MaxDiskGib,
                ])
                .to_owned(),
        )
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        Some(actor),
        "quota.role_set",
        "quota",
        0,
        json!({"role": role.as_str(), "max_machines": q.max_machines, "max_cores": q.max_cores,
               "max_memory_mib": q.max_memory_mib, "max_disk_gib": q.max_disk_gib}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Sets (or with all fields `None`, clears) a user's override (admin).
pub async fn set_user_override(
    db: &DatabaseConnection,
    actor: &Actor,
    user_id: i64,
    o: QuotaOverride,
) -> Result<(), ServiceError> {
    actor.require_admin()?;
    for v in [o.max_machines, o.max_cores, o.max_memory_mib, o.max_disk_gib].into_iter().flatten() {
        if !(0..=1_000_000).contains(&v) {
            return Err(FieldError::new("max_machines", "error.quota_range").into());
        }
    }
    let txn = crate::db::begin_write(db).await?;
    user::Entity::find_by_id(user_id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    user_quota::Entity::delete_many().filter(user_quota::Column::UserId.eq(user_id)).exec(&txn).await?;
    if o != QuotaOverride::default() {
        let row = user_quota::ActiveModel {
            user_id: Set(user_id),
            max_machines: Set(o.max_machines),
            max_cores: Set(o.max_cores),
            max_memory_mib: Set(o.max_memory_mib),
            max_disk_gib: Set(o.max_disk_gib),
        };
        user_quota::Entity::insert(row).exec(&txn).await?;
    }
    // One fact per limit, `null` where the role's value applies, so the audit page can list them.
    let details = json!({"max_machines": o.max_machines, "max_cores": o.max_cores,
                         "max_memory_mib": o.max_memory_mib, "max_disk_gib": o.max_disk_gib});
    audit::record(&txn, Some(actor), "quota.user_set", "user", user_id, details).await?;
    txn.commit().await?;
    Ok(())
}
