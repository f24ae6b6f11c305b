//! `/machines/{id}/snapshots`: list, take, roll back, delete. Owners and admins; another user's
//! machine is 404. Each write waits for PVE's task (up to a minute) and answers its outcome.

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::body_error::BodyApiError;
use super::schemas::*;
use super::{ApiTags, state};
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services::ServiceError;
use crate::services::snapshots::{self, NewSnapshot, RollbackTarget, SnapshotCtx};

pub struct SnapshotsApi;

type R<T> = Result<Json<T>, ApiError>;
type B<T> = Result<Json<T>, BodyApiError>;

fn service(req: &HttpRequest) -> Result<SnapshotCtx<'_>, ApiError> {
    let st = state(req);
    let default_limit = snapshots::default_limit(&st.settings.raw).map_err(ServiceError::Internal)?;
    Ok(SnapshotCtx { db: &st.db, pve: st.pve.as_ref(), default_limit, wait: snapshots::WAIT })
}

#[OpenApi(tag = "ApiTags::Machines")]
impl SnapshotsApi {
    /// A machine's snapshots as a tree, with the one its present state descends from marked.
    #[oai(path = "/machines/:id/snapshots", method = "get")]
    async fn list(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<SnapshotList> {
        Ok(Json(snapshots::list(&service(req)?, auth.actor(), id.0).await?.into()))
    }

    /// Take a snapshot. 422 for a bad name or description; 409 `snapshot-limit` when the machine has
    /// as many as its limit, `machine-busy` while Proxmox VE holds a lock on it (the lock is named).
    #[oai(path = "/machines/:id/snapshots", method = "post")]
    async fn take(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<NewSnapshotBody>,
    ) -> B<SnapshotResult> {
        let input =
            NewSnapshot { name: body.0.name.into(), description: body.0.description.into(), with_ram: body.0.with_ram };
        Ok(Json(snapshots::take(&service(req)?, auth.actor(), id.0, input).await?.into()))
    }

    /// Roll back to the snapshot `name`.
    /// A running machine is stopped hard first, as Proxmox VE does.
    #[oai(path = "/machines/:id/snapshots/:name/rollback", method = "post")]
    async fn rollback(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>, name: Path<String>) -> R<SnapshotResult> {
        let target = RollbackTarget::Named(name.0);
        Ok(Json(snapshots::roll_back(&service(req)?, auth.actor(), id.0, target).await?.into()))
    }

    /// Roll back to the newest snapshot.
    #[oai(path = "/machines/:id/snapshots/rollback-newest", method = "post")]
    async fn rollback_newest(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<SnapshotResult> {
        Ok(Json(snapshots::roll_back(&service(req)?, auth.actor(), id.0, RollbackTarget::Newest).await?.into()))
    }

    /// Delete a snapshot; the snapshots taken from it take its parent.
    #[oai(path = "/machines/:id/snapshots/:name", method = "delete")]
    async fn delete(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>, name: Path<String>) -> R<SnapshotResult> {
        Ok(Json(snapshots::delete(&service(req)?, auth.actor(), id.0, &name.0).await?.into()))
    }
}
