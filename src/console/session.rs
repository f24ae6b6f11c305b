//! One console session: ticket from PVE, authenticated upstream, browser handshake, relay, audit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use poem::web::websocket::WebSocketStream;
use sea_orm::DatabaseConnection;
use serde_json::json;

use super::{ConsoleError, ConsoleKind, Counters, Limits, LiveSession, Registry, relay, rfb, terminal};
use crate::integrations::pve::{self, websocket::ConsoleSocket};
use crate::services::{Actor, audit};

// vncproxy's worker waits 10 s for the connection and the ticket lives 40 s (pve-api.md §8.1).
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
const BROWSER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// An authenticated connection to the guest's console on PVE, not yet joined to a browser.
pub struct Upstream {
    socket: ConsoleSocket,
    /// What PVE sent beyond the handshake; goes to the browser first.
    first: Vec<u8>,
    kind: ConsoleKind,
}

/// Asks PVE for a `vncproxy`/`termproxy` ticket for the container `vmid` on `node`, opens the
/// `vncwebsocket` right away on the same host and authenticates (VNC auth or termproxy login).
pub async fn open(client: &pve::Client, node: &str, vmid: u64, kind: ConsoleKind) -> Result<Upstream, ConsoleError> {
    let upstream = async {
        let ticket = match kind {
            ConsoleKind::Vnc => client.lxc_vncproxy(node, vmid).await,
            ConsoleKind::Terminal => client.lxc_termproxy(node, vmid).await,
        }
        .map_err(|e| ConsoleError::Upstream(e.to_string()))?;
        let url = client.vncwebsocket_url(node, "lxc", vmid, &ticket);
        let mut socket = client.open_console(&url).await.map_err(|e| ConsoleError::Upstream(e.to_string()))?;
        let first = match kind {
            ConsoleKind::Vnc => rfb::authenticate_upstream(&mut socket, rfb::vnc_password(&ticket)).await?,
            ConsoleKind::Terminal => terminal::login(&mut socket, &ticket).await?,
        };
        Ok(Upstream { socket, first, kind })
    };
    tokio::time::timeout(OPEN_TIMEOUT, upstream).await.map_err(|_| ConsoleError::Timeout)?
}

/// Everything [`serve`] needs besides the two sockets.
pub struct Serve {
    pub db: DatabaseConnection,
    pub registry: Arc<Registry>,
    pub limits: Limits,
    pub actor: Actor,
    pub machine_id: i64,
}

/// Joins the browser to `upstream` until either ends, then writes `console.closed` to the audit log.
pub async fn serve(ctx: Serve, upstream: Upstream, mut browser: WebSocketStream) {
    let started = Utc::now();
    let kind = upstream.kind;
    let counters = Arc::new(Counters::default());
    let to_upstream = match kind {
        ConsoleKind::Vnc => {
            match tokio::time::timeout(BROWSER_HANDSHAKE_TIMEOUT, rfb::greet_browser(&mut browser)).await {
                Ok(Ok(rest)) => Some(rest),
                _ => None,
            }
        }
        ConsoleKind::Terminal => Some(vec![]),
    };
    let reason = match to_upstream {
        Some(to_upstream) => {
            let live =
                LiveSession { machine_id: ctx.machine_id, user_id: ctx.actor.id, kind, counters: counters.clone() };
            let id = ctx.registry.add(live);
            let first = (upstream.first, to_upstream);
            let reason = relay::pump(browser, upstream.socket, kind, first, ctx.limits, counters.clone()).await;
            ctx.registry.remove(id);
            reason.as_str()
        }
        None => "browser_handshake",
    };
    let ended = Utc::now();
    let details = json!({
        "kind": kind.as_str(),
        "started_at": started.to_rfc3339(),
        "ended_at": ended.to_rfc3339(),
        "duration_secs": (ended - started).num_seconds(),
        "bytes_to_browser": counters.to_browser.load(Ordering::Relaxed),
        "bytes_from_browser": counters.from_browser.load(Ordering::Relaxed),
        "reason": reason,
    });
    if let Err(e) = audit::record(&ctx.db, Some(&ctx.actor), "console.closed", "machine", ctx.machine_id, details).await
    {
        tracing::error!(error = ?e, machine = ctx.machine_id, "console.closed not audited");
    }
}
