//! `/proxmox/guests`: the guests the caller may use in Proxmox VE through their own PVE user, their
//! power actions and console URLs. Every action is checked with PVE when it is taken; PVE's refusal
//! of the caller's privilege is a 403, a guest they cannot see (or that does not exist) a 404.

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::account::NoContent;
use super::body_error::BodyApiError;
use super::console::{ConsoleUrl, ConsoleUrlRequest};
use super::schemas::*;
use super::{ApiTags, state};
use crate::console::ConsoleKind;
use crate::domain::guest::GuestType;
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services::{self, machines::PowerAction};

pub struct PveGuestsApi;

impl From<services::pve_guests::PveGuest> for PveGuest {
    fn from(g: services::pve_guests::PveGuest) -> Self {
        PveGuest {
            vmid: g.vmid,
            name: g.name,
            node: g.node,
            kind: match g.kind {
                GuestType::Lxc => GuestKindName::Lxc,
                GuestType::Qemu => GuestKindName::Qemu,
            },
            status: g.status,
            ipv4: g.ipv4.map(|ip| ip.to_string()),
            may_power: g.may_power,
            may_console: g.may_console,
            has_terminal: g.has_terminal,
        }
    }
}

#[OpenApi(tag = "ApiTags::Machines")]
impl PveGuestsApi {
    /// The guests the caller's Proxmox VE user may see (`VM.Audit`, as PVE evaluates it: ACLs,
    /// groups, pools), their own proxdesk machines and templates left out. Empty without a Proxmox VE
    /// identity; 503 when Proxmox VE does not answer. Kept for up to 30 s per person.
    #[oai(path = "/proxmox/guests", method = "get")]
    async fn list(&self, req: &HttpRequest, auth: ApiAuth) -> Result<Json<PveGuestList>, ApiError> {
        let st = state(req);
        let guests = services::pve_guests::list(&st.db, st.pve.as_ref(), &st.pve_guests, auth.actor()).await?;
        Ok(Json(PveGuestList { items: guests.into_iter().map(Into::into).collect() }))
    }

    /// Start, shut down or reboot a guest. Proxmox VE is asked first whether the caller's PVE user
    /// holds `VM.PowerMgmt` on it (403 when not, and nothing is sent); proxdesk then acts with its
    /// own token. Counts against no quota.
    #[oai(path = "/proxmox/guests/:vmid/power", method = "post")]
    async fn power(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        #[oai(validator(minimum(value = "100"), maximum(value = "999999999")))] vmid: Path<u64>,
        body: Json<PveGuestPower>,
    ) -> Result<NoContent, BodyApiError> {
        let action = match body.0.action {
            PowerActionName::Start => PowerAction::Start,
            PowerActionName::Shutdown => PowerAction::Shutdown,
            PowerActionName::Reboot => PowerAction::Reboot,
            PowerActionName::Stop => PowerAction::Stop,
            PowerActionName::Reset => PowerAction::Reset,
        };
        let st = state(req);
        services::pve_guests::power(&st.db, st.pve.as_ref(), &st.pve_guests, auth.actor(), vmid.0, action).await?;
        Ok(NoContent::Accepted)
    }

    /// A single-use console URL for a guest, valid for 60 seconds, when the caller's PVE user holds
    /// `VM.Console` on it (asked now, and again when the URL is opened).
    ///
    /// 429 (`/problems/console-sessions-cap` or `/problems/console-urls-cap`) when the caller already
    /// has `PROXDESK_CONSOLE_MAX_SESSIONS_PER_USER` console sessions open, or was issued
    /// `PROXDESK_CONSOLE_MAX_URLS_PER_MINUTE` console URLs in the last minute; the detail names the cap.
    #[oai(path = "/proxmox/guests/:vmid/console", method = "post")]
    async fn console_url(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        #[oai(validator(minimum(value = "100"), maximum(value = "999999999")))] vmid: Path<u64>,
        body: Json<OrNull<ConsoleUrlRequest>>,
    ) -> Result<Json<ConsoleUrl>, BodyApiError> {
        let st = state(req);
        let kind_name = body.0.into_option().unwrap_or_default().kind;
        let kind = ConsoleKind::from(kind_name);
        let (token, expires_at) = services::pve_guests::issue_console_url(
            &st.db,
            st.pve.as_ref(),
            &st.pve_guests,
            st.console_limits.caps,
            auth.actor(),
            vmid.0,
            kind,
        )
        .await?;
        let base = st.settings.public_url.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        let url = format!("{base}/proxmox/{}/{}/ws?token={}", vmid.0, kind.segment(), token.expose());
        Ok(Json(ConsoleUrl { url, kind: kind_name, expires_at }))
    }
}
