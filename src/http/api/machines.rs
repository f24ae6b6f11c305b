//! `/templates` and `/machines`: the catalog, your machines, their power and deletion.

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::account::NoContent;
use super::schemas::*;
use super::{ApiTags, state};
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services;

pub struct MachinesApi;

type R<T> = Result<Json<T>, ApiError>;

#[OpenApi(tag = "ApiTags::Machines")]
impl MachinesApi {
    /// The catalog: templates you may request.
    #[oai(path = "/templates", method = "get")]
    async fn templates(&self, req: &HttpRequest, auth: ApiAuth) -> R<Vec<Template>> {
        let db = &state(req).db;
        let list = services::catalog::list(db, auth.actor(), false).await?;
        Ok(Json(super::admin::templates_out(db, list).await?))
    }

    /// Your machines (admins: everyone's, or one user's with `user_id`), newest first, narrowed by
    /// part of the host name (any case), VMID, live state (one cluster-wide read of Proxmox VE per
    /// page), node and catalog entry. A name or node holds only ASCII letters, digits, `-`, `.` and `_`.
    #[oai(path = "/machines", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn machines(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        user_id: Query<Option<i64>>,
        #[oai(validator(max_length = 63, pattern = r"^[A-Za-z0-9._-]*$"))] name: Query<Option<String>>,
        #[oai(validator(minimum(value = "100"), maximum(value = "999999999")))] vmid: Query<Option<i64>>,
        state: Query<Option<PowerStateName>>,
        #[oai(validator(max_length = 63, pattern = r"^[A-Za-z0-9._-]*$"))] node: Query<Option<String>>,
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
    #[oai(path = "/machines/:id", method = "get")]
    async fn machine(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<MachineDetail> {
        let st = state(req);
        let m = services::machines::get(&st.db, auth.actor(), id.0).await?;
        let live = services::machines::live_status(st.pve.as_ref(), &m).await;
        let password = services::machines::password_for(auth.actor(), &m, &st.settings.secret_key)?;
        Ok(Json(MachineDetail {
            machine: m.into(),
            state: PowerStateName::from_pve(&live.state),
            uptime_secs: live.uptime_secs,
            cpus: live.cpus,
            max_memory_bytes: live.max_memory_bytes,
            password: password.map(|p| p.expose().clone()),
        }))
    }

    /// Start, shut down, power off (`stop`), reboot or reset a machine (reset: VMs only). Its container is verified first: a guest at its VMID
    /// without the machine's marker is left alone, and the answer is 409 `machine-lost` (the machine is
    /// then `lost`).
    #[oai(path = "/machines/:id/:action", method = "post")]
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
    #[oai(path = "/machines/:id/detach-iso", method = "post")]
    async fn detach_iso(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        let st = state(req);
        services::machines::detach_install_media(&st.db, st.pve.as_ref(), auth.actor(), id.0).await?;
        Ok(NoContent::Done)
    }

    /// Delete a machine: its container is stopped and destroyed by a job; the request ends `deleted`.
    /// A guest at its VMID without the machine's marker is never touched: 409 `machine-lost` (or, when
    /// only the job finds out, the request ends `lost`).
    #[oai(path = "/machines/:id", method = "delete")]
    async fn delete_machine(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        let st = state(req);
        services::machines::delete(&st.db, st.pve.as_ref(), auth.actor(), id.0).await?;
        Ok(NoContent::Accepted)
    }
}
