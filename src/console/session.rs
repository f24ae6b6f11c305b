//! One console session: ticket from PVE, authenticated upstream, browser handshake, relay, the close
//! code that tells the browser why it ended, audit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use futures_util::SinkExt;
use poem::web::websocket::{Message as BrowserMessage, WebSocketStream};
use sea_orm::DatabaseConnection;
use serde_json::json;

use super::close::frame_reason;
use super::relay::EndReason;
use super::{CloseReason, ConsoleError, ConsoleKind, Counters, Limits, Registry, SubjectKey, relay, rfb, terminal};
use crate::domain::guest::GuestType;
use crate::integrations::pve::{self, websocket::ConsoleSocket};
use crate::services::{self, Actor, audit};

// vncproxy's worker waits 10 s for the connection and the ticket lives 40 s (pve-api.md §8.1).
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
const BROWSER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
// How often an open session checks that its machine was neither deleted nor lost meanwhile.
const AVAILABILITY_CHECK: Duration = Duration::from_secs(3);
// How often a session on a person's own PVE guest asks PVE whether they still hold `VM.Console`.
const PERMISSION_CHECK: Duration = Duration::from_secs(15);
// How long finding out why PVE closed may take before the plain reason is given.
const END_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// An authenticated connection to the guest's console on PVE, not yet joined to a browser.
pub struct Upstream {
    socket: ConsoleSocket,
    /// What PVE sent beyond the handshake; goes to the browser first.
    first: Vec<u8>,
    kind: ConsoleKind,
}

/// Asks PVE for a `vncproxy`/`termproxy` ticket for the guest `vmid` (a container or a VM) on `node`,
/// opens the `vncwebsocket` right away on the same host and authenticates (VNC auth with the returned
/// password, or the termproxy login). A VM's terminal is its first serial port.
pub async fn open(
    client: &pve::Client,
    node: &str,
    ty: GuestType,
    vmid: u64,
    kind: ConsoleKind,
) -> Result<Upstream, ConsoleError> {
    let upstream = async {
        let ticket = match kind {
            ConsoleKind::Vnc => client.guest_vncproxy(node, ty, vmid).await,
            ConsoleKind::Terminal => client.guest_termproxy(node, ty, vmid).await,
        }
        .map_err(ConsoleError::Refused)?;
        let url = client.vncwebsocket_url(node, ty.as_str(), vmid, &ticket);
        let mut socket = client.open_console(&url).await.map_err(|e| match e {
            pve::PveError::Timeout(_) => ConsoleError::Timeout,
            e => ConsoleError::Upstream(e.to_string()),
        })?;
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
    pub pve: pve::Client,
    pub registry: Arc<Registry>,
    pub limits: Limits,
    pub actor: Actor,
    pub subject: Subject,
    /// The session's place under the per-user cap, freed when the session ends.
    pub slot: super::Slot,
}

/// Whose console a session shows.
pub enum Subject {
    /// A machine proxdesk made.
    Machine(entities::machine::Model),
    /// A guest a person may use in Proxmox VE through their own PVE permissions.
    PveGuest(services::pve_guests::CheckedGuest),
}

impl Subject {
    fn key(&self) -> SubjectKey {
        match self {
            Subject::Machine(m) => SubjectKey::Machine(m.id),
            Subject::PveGuest(g) => SubjectKey::PveGuest(g.vmid),
        }
    }

    /// The audit subject: type and id.
    fn audit_subject(&self) -> (&'static str, i64) {
        match self {
            Subject::Machine(m) => ("machine", m.id),
            Subject::PveGuest(g) => (services::pve_guests::SUBJECT, g.vmid as i64),
        }
    }

    /// How often an open session checks it may go on: a machine's row is cheap to read; a guest's
    /// permission is a call to PVE.
    fn check_every(&self) -> Duration {
        match self {
            Subject::Machine(_) => AVAILABILITY_CHECK,
            Subject::PveGuest(_) => PERMISSION_CHECK,
        }
    }

    /// Why the session must end now, if it must: the machine is gone, or PVE withdrew the console
    /// from the person. `None` also when it cannot be told right now.
    async fn must_end(&self, ctx: &Serve) -> Option<CloseReason> {
        match self {
            Subject::Machine(m) => match services::consoles::still_available(&ctx.db, m.id).await {
                Ok(false) => Some(CloseReason::MachineGone),
                Ok(true) => None,
                Err(e) => {
                    tracing::warn!(error = %e, machine = m.id, "console: machine not checked");
                    None
                }
            },
            Subject::PveGuest(g) => {
                let may = services::pve_guests::still_may_console(&ctx.pve, &g.userid, g.vmid).await;
                (may == Some(false)).then_some(CloseReason::AccessWithdrawn)
            }
        }
    }

    /// Whether PVE says the guest is stopped.
    async fn stopped(&self, pve: &pve::Client) -> bool {
        match self {
            Subject::Machine(m) => services::machines::live_status(Some(pve), m).await.state == "stopped",
            Subject::PveGuest(g) => {
                pve.guest_status(&g.node, g.kind, g.vmid).await.is_ok_and(|s| s.status == "stopped")
            }
        }
    }
}

/// Answers an upgraded browser socket that cannot have its console: closes it at once with `reason`'s
/// code, so the page can say what happened (a failed upgrade would only tell it "1006").
pub async fn refuse(mut browser: WebSocketStream, reason: CloseReason, detail: Option<String>) {
    let text = frame_reason(detail.as_deref().unwrap_or(reason.name()));
    let close = browser.send(BrowserMessage::close_with(reason.code(), text));
    let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
}

/// Joins the browser to `upstream` until either ends, tells the browser why with a close code, then
/// writes `console.closed` to the audit log.
pub async fn serve(ctx: Serve, upstream: Upstream, mut browser: WebSocketStream) {
    let started = Utc::now();
    let kind = upstream.kind;
    let (subject_type, subject_id) = ctx.subject.audit_subject();
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
            let (id, stop) = ctx.registry.add(ctx.subject.key(), ctx.actor.id, kind, counters.clone());
            let _open = crate::metrics::ConsoleOpen::new(kind.as_str());
            let first = (upstream.first, to_upstream);
            let pump = relay::pump(browser, upstream.socket, kind, first, ctx.limits, counters.clone(), stop);
            let (reason, mut sink) = tokio::select! {
                ended = pump => ended,
                never = watch_availability(&ctx, id) => match never {},
                never = ctx.slot.keep_alive() => match never {},
            };
            // Freed before the browser hears of the end, so it may open another console at once.
            ctx.slot.release().await;
            let reason = match reason {
                EndReason::Close(r @ (CloseReason::GuestClosed | CloseReason::PveClosed)) => {
                    EndReason::Close(why_pve_closed(&ctx).await.unwrap_or(r))
                }
                other => other,
            };
            if let EndReason::Close(r) = reason {
                let close = sink.send(BrowserMessage::close_with(r.code(), r.name()));
                let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
            }
            ctx.registry.remove(id);
            reason
        }
        None => EndReason::BrowserHandshake,
    };
    ctx.slot.release().await;
    let ended = Utc::now();
    let details = json!({
        "kind": kind.as_str(),
        "started_at": started.to_rfc3339(),
        "ended_at": ended.to_rfc3339(),
        "duration_secs": (ended - started).num_seconds(),
        "bytes_to_browser": counters.to_browser.load(Ordering::Relaxed),
        "bytes_from_browser": counters.from_browser.load(Ordering::Relaxed),
        "reason": reason.as_str(),
    });
    if let Err(e) = audit::record(&ctx.db, Some(&ctx.actor), "console.closed", subject_type, subject_id, details).await
    {
        tracing::error!(error = ?e, subject_type, subject_id, "console.closed not audited");
    }
}

/// Ends session `id` once its machine is deleted, being deleted or lost, or (a person's PVE guest)
/// once PVE no longer grants them its console; never returns.
async fn watch_availability(ctx: &Serve, id: u64) -> std::convert::Infallible {
    let mut tick = tokio::time::interval(ctx.subject.check_every());
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Some(reason) = ctx.subject.must_end(ctx).await {
            ctx.registry.end(id, reason);
        }
    }
}

/// When PVE closed the console, the guest itself may be the reason: deleted or lost, or stopped.
async fn why_pve_closed(ctx: &Serve) -> Option<CloseReason> {
    let check = async {
        if let Some(reason) = ctx.subject.must_end(ctx).await {
            return Some(reason);
        }
        ctx.subject.stopped(&ctx.pve).await.then_some(CloseReason::MachineStoppedMeanwhile)
    };
    tokio::time::timeout(END_CHECK_TIMEOUT, check).await.ok().flatten()
}
