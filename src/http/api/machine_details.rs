//! `/machines/{id}/details` and `/machines/{id}/metrics`: what Proxmox VE says of a machine now and its
//! recent usage. Owners and admins; another user's machine is 404.

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::schemas::*;
use super::{ApiTags, state};
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services::{self, ServiceError};

pub struct MachineDetailsApi;

type R<T> = Result<Json<T>, ApiError>;

#[OpenApi(tag = "ApiTags::Machines")]
impl MachineDetailsApi {
    /// A machine with its live usage (status, uptime, CPU, memory, disk, network counters, tags, lock).
    /// `live` is absent when Proxmox VE did not answer in time; the stored facts are always there.
    #[oai(path = "/machines/:id/details", method = "get")]
    async fn details(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<MachineDetailsView> {
        let st = state(req);
        let bound = services::machines::live_timeout(&st.settings.raw);
        let d = services::machines::details(&st.db, st.pve.as_ref(), auth.actor(), id.0, None, bound).await?;
        Ok(Json(d.into()))
    }

    /// A machine's usage over the last hour or day (CPU %, memory, network in and out per second),
    /// oldest first, with gaps where nothing was recorded. 409 for a deleted or lost machine (no guest to
    /// ask); 503 when Proxmox VE did not answer in time.
    #[oai(path = "/machines/:id/metrics", method = "get")]
    async fn metrics(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        range: Query<Option<MetricsRangeName>>,
    ) -> R<MachineMetrics> {
        let st = state(req);
        let bound = services::machines::live_timeout(&st.settings.raw);
        let range = Some(range.0.unwrap_or_default().into());
        let d = services::machines::details(&st.db, st.pve.as_ref(), auth.actor(), id.0, range, bound).await?;
        // A deleted or lost machine has no guest to ask: that is its state (409), not an outage (503).
        let m = &d.machine;
        if m.vmid.is_none() || m.deleted_at.is_some() || m.lost_at.is_some() {
            return Err(ServiceError::Conflict("the machine has no guest, so no usage history".into()).into());
        }
        let metrics = d.metrics.ok_or_else(|| ServiceError::Unavailable("usage history unavailable".into()))?;
        Ok(Json(metrics.into()))
    }
}
