//! Who may read a request, change it, or decide it: its owner and admins; members of the group of the
//! approval stage it waits at read and decide it; anyone else finds nothing (404), so ids reveal nothing.

use sea_orm::{ConnectionTrait, EntityTrait};

use entities::request;

use super::stages;
use crate::services::{Actor, ServiceError};

/// One request, if the actor owns it, is an admin, or is a member of the group of the approval stage it
/// waits at (otherwise: not found, so ids reveal nothing).
pub async fn get<C: ConnectionTrait>(conn: &C, actor: &Actor, id: i64) -> Result<request::Model, ServiceError> {
    let r = request::Entity::find_by_id(id).one(conn).await?.ok_or(ServiceError::NotFound)?;
    if r.user_id == actor.id || actor.is_admin() || stages::may_review(conn, actor, &r).await? {
        Ok(r)
    } else {
        Err(ServiceError::NotFound)
    }
}

/// One request to decide: one the actor may read, or one of an entry whose stage groups they are in (the
/// stage rules then say whether they may decide it now: 403 for a later stage, 409 for a passed one).
pub(super) async fn get_to_decide<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    id: i64,
) -> Result<request::Model, ServiceError> {
    let r = request::Entity::find_by_id(id).one(conn).await?.ok_or(ServiceError::NotFound)?;
    if r.user_id == actor.id || actor.is_admin() || stages::is_stage_member(conn, actor, &r).await? {
        Ok(r)
    } else {
        Err(ServiceError::NotFound)
    }
}

/// One request, if the actor owns it or is an admin: what changes a request beyond deciding it.
pub async fn get_own<C: ConnectionTrait>(conn: &C, actor: &Actor, id: i64) -> Result<request::Model, ServiceError> {
    request::Entity::find_by_id(id)
        .one(conn)
        .await?
        .filter(|r| r.user_id == actor.id || actor.is_admin())
        .ok_or(ServiceError::NotFound)
}
