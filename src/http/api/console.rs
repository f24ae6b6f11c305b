//! `POST /machines/{id}/console`: a short-lived, single-use console URL for API clients.

use chrono::{DateTime, Utc};
use poem::Request as HttpRequest;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};

use super::body_error::BodyApiError;
use super::schemas::OrNull;
use super::{ApiTags, state};
use crate::console::ConsoleKind;
use crate::http::auth::ApiAuth;
use crate::services;

pub struct ConsoleApi;

/// Which console of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ConsoleKindName {
    /// The graphical console (RFB, for noVNC or any VNC client over a websocket).
    #[default]
    Vnc,
    /// The container's terminal (termproxy framing, as xterm.js speaks it).
    Terminal,
}

impl From<ConsoleKindName> for ConsoleKind {
    fn from(k: ConsoleKindName) -> Self {
        match k {
            ConsoleKindName::Vnc => ConsoleKind::Vnc,
            ConsoleKindName::Terminal => ConsoleKind::Terminal,
        }
    }
}

/// Options of a console URL.
#[derive(Debug, Clone, Default, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ConsoleUrlRequest {
    /// `vnc` (default) or `terminal`.
    #[oai(nullable, default)]
    pub kind: ConsoleKindName,
}

/// A websocket URL that opens one console session. It works once and only until `expires_at`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ConsoleUrl {
    /// `ws://` or `wss://` URL with a one-time token; open it with subprotocol `binary` (or none).
    pub url: String,
    pub kind: ConsoleKindName,
    pub expires_at: DateTime<Utc>,
}

#[OpenApi(tag = "ApiTags::Machines")]
impl ConsoleApi {
    /// A single-use console URL, valid for 60 seconds. The VNC console needs no password (offers
    /// security type None); the terminal speaks termproxy's framing (`0:<len>:<data>`, `1:<cols>:<rows>:`).
    ///
    /// 429 (`/problems/console-sessions-cap` or `/problems/console-urls-cap`) when the caller already
    /// has `PROXDESK_CONSOLE_MAX_SESSIONS_PER_USER` console sessions open, or was issued
    /// `PROXDESK_CONSOLE_MAX_URLS_PER_MINUTE` console URLs in the last minute; the detail names the cap.
    #[oai(path = "/machines/:id/console", method = "post")]
    async fn console_url(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<OrNull<ConsoleUrlRequest>>,
    ) -> Result<Json<ConsoleUrl>, BodyApiError> {
        let st = state(req);
        let kind_name = body.0.into_option().unwrap_or_default().kind;
        let kind = ConsoleKind::from(kind_name);
        let (token, expires_at) =
            services::consoles::issue(&st.db, st.console_limits.caps, auth.actor(), id.0, kind).await?;
        let base = st.settings.public_url.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        let url = format!("{base}/machines/{}/{}/ws?token={}", id.0, kind.segment(), token.expose());
        Ok(Json(ConsoleUrl { url, kind: kind_name, expires_at }))
    }
}
