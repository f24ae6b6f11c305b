//! `/requests`, `/templates`, `/machines`.

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::account::NoContent;
use super::schemas::*;
use super::{ApiTags, state};
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services::{self, ServiceError, requests::RequestFilter};

pub struct RequestsApi;

type R<T> = Result<Json<T>, ApiError>;

async fn detail(req: &HttpRequest, auth: &ApiAuth, id: i64) -> Result<RequestDetail, ServiceError> {
    let db = &state(req).db;
    let r = services::requests::get(db, auth.actor(), id).await?;
    let row = services::requests::with_names(db, vec![r]).await?.pop().expect("one row in, one out");
    let timeline = services::audit::timeline_for(db, auth.actor(), "request", id).await?;
    Ok(RequestDetail { request: row.into(), timeline: timeline.into_iter().map(Into::into).collect() })
}

#[OpenApi(tag = "ApiTags::Requests")]
impl RequestsApi {
    /// List requests: your own, or (admins) everyone's. Newest first unless `oldest_first`.
    #[oai(path = "/requests", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        status: Query<Option<Status>>,
        user_id: Query<Option<i64>>,
        template_id: Query<Option<i64>>,
        q: Query<Option<String>>,
        #[oai(default)] oldest_first: Query<bool>,
        cursor: Query<Option<i64>>,
        /// Page size, 1–100 (default 50).
        limit: Query<Option<u64>>,
    ) -> R<RequestPage> {
        let filter = RequestFilter {
            status: status.0.map(Into::into),
            user_id: user_id.0,
            template_id: template_id.0,
            search: q.0,
            oldest_first: oldest_first.0,
            cursor: cursor.0,
            limit: limit.0,
        };
        let page = services::requests::list(&state(req).db, auth.actor(), filter).await?;
        Ok(Json(RequestPage { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }))
    }

    /// Ask for a machine.
    #[oai(path = "/requests", method = "post")]
    async fn create(&self, req: &HttpRequest, auth: ApiAuth, body: Json<CreateRequest>) -> R<RequestDetail> {
        let b = body.0;
        let input = services::requests::NewRequest {
            template_id: b.template_id,
            hostname: b.hostname,
            cores: b.cores,
            memory_mib: b.memory_mib,
            disk_gib: b.disk_gib,
            purpose: b.purpose,
            ssh_public_key: b.ssh_public_key,
            storage: b.storage,
            bridge: b.bridge,
            iso: b.iso,
        };
        let r = services::requests::create(&state(req).db, auth.actor(), input).await?;
        Ok(Json(detail(req, &auth, r.id).await?))
    }

    /// One request with its timeline.
    #[oai(path = "/requests/:id", method = "get")]
    async fn get(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<RequestDetail> {
        Ok(Json(detail(req, &auth, id.0).await?))
    }

    /// Withdraw a pending request.
    #[oai(path = "/requests/:id/cancel", method = "post")]
    async fn cancel(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<RequestDetail> {
        services::requests::cancel(&state(req).db, auth.actor(), id.0).await?;
        Ok(Json(detail(req, &auth, id.0).await?))
    }

    /// Approve a pending request (admin), optionally adjusting its resources; provisioning starts.
    #[oai(path = "/requests/:id/approve", method = "post")]
    async fn approve(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<Option<ApproveBody>>,
    ) -> R<RequestDetail> {
        let b = body.0.unwrap_or_default();
        let adj = services::requests::Adjustments { cores: b.cores, memory_mib: b.memory_mib, disk_gib: b.disk_gib };
        services::requests::approve(&state(req).db, auth.actor(), id.0, adj).await?;
        Ok(Json(detail(req, &auth, id.0).await?))
    }

    /// Reject a pending request (admin) with a reason the requester sees.
    #[oai(path = "/requests/:id/reject", method = "post")]
    async fn reject(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<RejectBody>,
    ) -> R<RequestDetail> {
        services::requests::reject(&state(req).db, auth.actor(), id.0, &body.0.reason).await?;
        Ok(Json(detail(req, &auth, id.0).await?))
    }

    /// Send a failed request back to provisioning (admin).
    #[oai(path = "/requests/:id/retry", method = "post")]
    async fn retry(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<RequestDetail> {
        services::requests::retry(&state(req).db, auth.actor(), id.0).await?;
        Ok(Json(detail(req, &auth, id.0).await?))
    }

    /// Approve or reject several requests (admin); each succeeds or fails on its own.
    #[oai(path = "/requests/bulk", method = "post")]
    async fn bulk(&self, req: &HttpRequest, auth: ApiAuth, body: Json<BulkBody>) -> R<BulkResult> {
        let actor = auth.actor();
        actor.require_admin()?;
        let db = &state(req).db;
        let mut results = Vec::with_capacity(body.0.ids.len());
        for id in body.0.ids.iter().copied().take(500) {
            let res = match body.0.action {
                BulkAction::Approve => services::requests::approve(db, actor, id, Default::default()).await,
                BulkAction::Reject => {
                    services::requests::reject(db, actor, id, body.0.reason.as_deref().unwrap_or("")).await
                }
            };
            let error = res.err().map(|e| match ApiError::from(e) {
                ApiError::BadRequest(p)
                | ApiError::Unauthorized(p)
                | ApiError::Forbidden(p)
                | ApiError::NotFound(p)
                | ApiError::Conflict(p)
                | ApiError::Invalid(p)
                | ApiError::TooManyRequests(p, _)
                | ApiError::Internal(p)
                | ApiError::Unavailable(p) => p.0.kind,
            });
            results.push(BulkItem { id, ok: error.is_none(), error });
        }
        Ok(Json(BulkResult { results }))
    }

    /// The catalog: templates you may request.
    #[oai(path = "/templates", method = "get", tag = "ApiTags::Machines")]
    async fn templates(&self, req: &HttpRequest, auth: ApiAuth) -> R<Vec<Template>> {
        let list = services::catalog::list(&state(req).db, auth.actor(), false).await?;
        Ok(Json(list.into_iter().map(Into::into).collect()))
    }

    /// Your machines (admins: everyone's, or one user's with `user_id`), newest first, narrowed by
    /// part of the host name (any case), VMID, live state (one cluster-wide read of Proxmox VE per
    /// page), node and catalog entry. 422 for a name or node with other than letters, digits, `-`,
    /// `.` and `_`.
    #[oai(path = "/machines", method = "get", tag = "ApiTags::Machines")]
    #[allow(clippy::too_many_arguments)]
    async fn machines(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        user_id: Query<Option<i64>>,
        #[oai(validator(max_length = 63))] name: Query<Option<String>>,
        #[oai(validator(minimum(value = "100"), maximum(value = "999999999")))] vmid: Query<Option<i64>>,
        state: Query<Option<PowerStateName>>,
        #[oai(validator(max_length = 63))] node: Query<Option<String>>,
        template_id: Query<Option<i64>>,
        cursor: Query<Option<i64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u64>>,
    ) -> R<MachinePage> {
        let st = self::state(req);
        let filter = services::machines::MachineFilter {
            name: name.0.filter(|n| !n.is_empty()),
            vmid: vmid.0,
            state: state.0.map(Into::into),
            node: node.0.filter(|n| !n.is_empty()),
            template_id: template_id.0,
            user_id: user_id.0,
        };
        let page =
            services::machines::search(&st.db, st.pve.as_ref(), auth.actor(), &filter, cursor.0, limit.0).await?;
        Ok(Json(MachinePage { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }))
    }

    /// One machine: live status from PVE and, for its owner, the login and password.
    #[oai(path = "/machines/:id", method = "get", tag = "ApiTags::Machines")]
    async fn machine(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<MachineDetail> {
        let st = state(req);
        let m = services::machines::get(&st.db, auth.actor(), id.0).await?;
        let live = services::machines::live_status(st.pve.as_ref(), &m).await;
        let password = services::machines::password_for(auth.actor(), &m, &st.settings.secret_key)?;
        Ok(Json(MachineDetail {
            machine: m.into(),
            state: live.state,
            uptime_secs: live.uptime_secs,
            cpus: live.cpus,
            max_memory_bytes: live.max_memory_bytes,
            password: password.map(|p| p.expose().clone()),
        }))
    }

    /// Start, shut down, power off (`stop`), reboot or reset a machine (reset: VMs only). Its container is verified first: a guest at its VMID
    /// without the machine's marker is left alone, and the answer is 409 `machine-lost` (the machine is
    /// then `lost`).
    #[oai(path = "/machines/:id/:action", method = "post", tag = "ApiTags::Machines")]
    async fn power(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        action: Path<PowerActionName>,
    ) -> Result<NoContent, ApiError> {
        let action = match action.0 {
            PowerActionName::Start => services::machines::PowerAction::Start,
            PowerActionName::Shutdown => services::machines::PowerAction::Shutdown,
            PowerActionName::Stop => services::machines::PowerAction::Stop,
            PowerActionName::Reboot => services::machines::PowerAction::Reboot,
            PowerActionName::Reset => services::machines::PowerAction::Reset,
        };
        let st = state(req);
        services::machines::power(&st.db, st.pve.as_ref(), auth.actor(), id.0, action).await?;
        Ok(NoContent::Accepted)
    }

    /// Detach the installer ISO of a VM made from an ISO, once its OS is installed: its CD drive is
    /// emptied at once (also while it runs) and `install_media` cleared. 409 when the machine has no ISO
    /// attached (a container, a cloud-init VM, or already detached).
    #[oai(path = "/machines/:id/detach-iso", method = "post", tag = "ApiTags::Machines")]
    async fn detach_iso(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        let st = state(req);
        services::machines::detach_install_media(&st.db, st.pve.as_ref(), auth.actor(), id.0).await?;
        Ok(NoContent::Done)
    }

    /// Delete a machine: its container is stopped and destroyed by a job; the request ends `deleted`.
    /// A guest at its VMID without the machine's marker is never touched: 409 `machine-lost` (or, when
    /// only the job finds out, the request ends `lost`).
    #[oai(path = "/machines/:id", method = "delete", tag = "ApiTags::Machines")]
    async fn delete_machine(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        let st = state(req);
        services::machines::delete(&st.db, st.pve.as_ref(), auth.actor(), id.0).await?;
        Ok(NoContent::Accepted)
    }
}
