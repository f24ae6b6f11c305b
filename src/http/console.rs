//! The console websockets `/machines/{id}/console/ws` (VNC) and `/machines/{id}/terminal/ws`
//! (termproxy). Each checks `Origin`, the session cookie (or a single-use console URL token) and that
//! the user owns the machine or is an admin; those refusals are plain HTTP errors. For an allowed
//! user it then checks that the guest still carries its marker and runs (and, for a VM's terminal, has
//! a serial port), and opens PVE's console with proxdesk's own credentials. Whatever fails from there on is told through the websocket: it
//! is upgraded and closed at once with a code of [`CloseReason`], which the page can translate.
//!
//! `/proxmox/{vmid}/console/ws` and `/proxmox/{vmid}/terminal/ws` do the same for a guest a person
//! may use through their own PVE permissions: instead of ownership, PVE is asked at the upgrade
//! whether their PVE user holds `VM.Console` on the guest (403 when not; nothing is opened).

use poem::http::StatusCode;
use poem::web::websocket::WebSocket;
use poem::web::{Path, Query};
use poem::{Body, FromRequest, IntoResponse, Request, RequestBody, Response, handler};
use serde::Deserialize;
use serde_json::json;

use crate::console::{CloseReason, ConsoleKind, Slot, session};
use crate::http::auth;
use crate::services::console_sessions::SessionSubject;
use crate::services::{self, Actor, ServiceError};
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct WsQuery {
    /// A single-use console URL token (`POST /api/v1/machines/{id}/console`).
    token: Option<String>,
}

/// `GET /machines/{id}/console/ws`: RFB for noVNC, already authenticated (security type None).
#[handler]
pub async fn vnc(req: &Request, Path(id): Path<i64>, Query(q): Query<WsQuery>) -> Response {
    open(req, id, q, ConsoleKind::Vnc).await.unwrap_or_else(|e| e)
}

/// `GET /machines/{id}/terminal/ws`: termproxy's framing for xterm.js, already logged in.
#[handler]
pub async fn terminal(req: &Request, Path(id): Path<i64>, Query(q): Query<WsQuery>) -> Response {
    open(req, id, q, ConsoleKind::Terminal).await.unwrap_or_else(|e| e)
}

fn refuse(status: StatusCode, message: &str) -> Response {
    Response::builder().status(status).content_type("text/plain; charset=utf-8").body(message.to_owned())
}

fn internal(e: impl std::fmt::Debug) -> Response {
    tracing::error!(error = ?e, "console request failed");
    refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

async fn who(req: &Request, st: &AppState, id: i64, q: &WsQuery, kind: ConsoleKind) -> Result<Actor, Response> {
    let unauthorized = || refuse(StatusCode::UNAUTHORIZED, "log in first");
    if let Some(token) = q.token.as_deref() {
        let used = services::consoles::redeem(&st.db, token, id, kind).await.map_err(internal)?;
        return used.ok_or_else(|| refuse(StatusCode::UNAUTHORIZED, "this console URL is unknown, used or expired"));
    }
    let cookie = req.cookie().get(auth::SESSION_COOKIE).ok_or_else(unauthorized)?;
    services::auth::session_actor(&st.db, cookie.value_str()).await.map_err(internal)?.ok_or_else(unauthorized)
}

async fn open(req: &Request, id: i64, q: WsQuery, kind: ConsoleKind) -> Result<Response, Response> {
    let st = req.data::<AppState>().expect("AppState attached").clone();
    // Browsers always send Origin on websockets: another site's page must not ride the cookie.
    if !auth::same_origin(req, st.settings.public_origin()) {
        return Err(refuse(StatusCode::FORBIDDEN, "cross-origin console request refused"));
    }
    // Not a websocket: refused before a console URL token could be spent on it.
    let ws = WebSocket::from_request(req, &mut RequestBody::new(Body::empty()))
        .await
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "a websocket upgrade is expected here"))?;
    let actor = who(req, &st, id, &q, kind).await?;
    let m = match services::consoles::machine_for_console(&st.db, &actor, id).await {
        Ok(m) => m,
        Err(ServiceError::NotFound) => return Err(refuse(StatusCode::NOT_FOUND, "no such machine")),
        Err(ServiceError::Conflict(_) | ServiceError::MachineLost { .. }) => {
            return Ok(close_at_once(ws, CloseReason::MachineUnavailable, None));
        }
        Err(e) => return Err(internal(e)),
    };
    let Some(pve) = st.pve.clone() else {
        return Ok(close_at_once(ws, CloseReason::NotConfigured, None));
    };
    // The per-user cap, before anything is asked of PVE; the slot is freed however this ends.
    let subject = SessionSubject::Machine(id);
    let slot = match claim(&st, &actor, subject, kind, &q).await? {
        Ok(slot) => slot,
        Err(cap) => return Ok(close_at_once(ws, CloseReason::TooManyConsoles, Some(cap))),
    };
    // The VMID may name another guest by now: never open someone else's console.
    match services::lost_machines::verify(&st.db, &pve, &m, "console").await {
        Ok(()) => {}
        Err(ServiceError::Conflict(_) | ServiceError::MachineLost { .. } | ServiceError::GuestRefused(_)) => {
            return Ok(close_at_once(ws, CloseReason::MachineUnavailable, None));
        }
        Err(e) => return Err(internal(e)),
    }
    let ty = services::machines::guest_type(&m).map_err(internal)?;
    let live = services::machines::live_status(Some(&pve), &m).await;
    if live.state != "running" {
        return Ok(close_at_once(ws, CloseReason::MachineStopped, None));
    }
    // A VM's terminal is its serial port; without one termproxy would only print `qm terminal`'s refusal.
    if kind == ConsoleKind::Terminal && !services::consoles::has_terminal(&pve, &m).await.unwrap_or(true) {
        return Ok(close_at_once(ws, CloseReason::NoTerminal, None));
    }
    let vmid = m.vmid.expect("checked") as u64;
    let upstream = match session::open(&pve, &m.node, ty, vmid, kind).await {
        Ok(upstream) => upstream,
        Err(e) => {
            tracing::warn!(machine = id, error = %e, "console could not be opened");
            return Ok(close_at_once(ws, e.close_reason(), e.pve_detail()));
        }
    };
    let details = json!({"kind": kind.as_str(), "node": m.node, "vmid": vmid, "via": if q.token.is_some() { "url" } else { "session" }});
    services::audit::record(&st.db, Some(&actor), "console.opened", "machine", id, details).await.map_err(internal)?;
    let ctx = session::Serve {
        db: st.db.clone(),
        pve,
        registry: st.consoles.clone(),
        limits: st.console_limits,
        actor,
        subject: session::Subject::Machine(m),
        slot,
    };
    Ok(upgrade(ws).on_upgrade(move |socket| session::serve(ctx, upstream, socket)).into_response())
}

/// Claims a slot under the per-user cap; at the cap, the refusal (audited) in words for the close frame.
async fn claim(
    st: &AppState,
    actor: &Actor,
    subject: SessionSubject,
    kind: ConsoleKind,
    q: &WsQuery,
) -> Result<Result<Slot, String>, Response> {
    let via = if q.token.is_some() { "url" } else { "session" };
    match Slot::claim(&st.db, st.console_limits.caps, actor, subject, kind, via).await {
        Ok(slot) => Ok(Ok(slot)),
        Err(ServiceError::ConsoleCap(reached)) => Ok(Err(reached.to_string())),
        Err(e) => Err(internal(e)),
    }
}

fn upgrade(ws: WebSocket) -> WebSocket {
    ws.protocols(["binary"]).config(crate::integrations::pve::websocket::socket_config())
}

/// Accepts the upgrade only to close it with `reason` (and PVE's words, when it refused).
fn close_at_once(ws: WebSocket, reason: CloseReason, detail: Option<String>) -> Response {
    upgrade(ws).on_upgrade(move |socket| session::refuse(socket, reason, detail)).into_response()
}

/// `GET /proxmox/{vmid}/console/ws`: a person's own PVE guest, RFB for noVNC.
#[handler]
pub async fn pve_vnc(req: &Request, Path(vmid): Path<u64>, Query(q): Query<WsQuery>) -> Response {
    open_pve_guest(req, vmid, q, ConsoleKind::Vnc).await.unwrap_or_else(|e| e)
}

/// `GET /proxmox/{vmid}/terminal/ws`: a person's own PVE guest, termproxy for xterm.js.
#[handler]
pub async fn pve_terminal(req: &Request, Path(vmid): Path<u64>, Query(q): Query<WsQuery>) -> Response {
    open_pve_guest(req, vmid, q, ConsoleKind::Terminal).await.unwrap_or_else(|e| e)
}

async fn open_pve_guest(req: &Request, vmid: u64, q: WsQuery, kind: ConsoleKind) -> Result<Response, Response> {
    let st = req.data::<AppState>().expect("AppState attached").clone();
    if !auth::same_origin(req, st.settings.public_origin()) {
        return Err(refuse(StatusCode::FORBIDDEN, "cross-origin console request refused"));
    }
    let ws = WebSocket::from_request(req, &mut RequestBody::new(Body::empty()))
        .await
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "a websocket upgrade is expected here"))?;
    let actor = match q.token.as_deref() {
        Some(token) => services::pve_guests::redeem_console_url(&st.db, token, vmid, kind)
            .await
            .map_err(internal)?
            .ok_or_else(|| refuse(StatusCode::UNAUTHORIZED, "this console URL is unknown, used or expired"))?,
        None => {
            let unauthorized = || refuse(StatusCode::UNAUTHORIZED, "log in first");
            let cookie = req.cookie().get(auth::SESSION_COOKIE).ok_or_else(unauthorized)?;
            services::auth::session_actor(&st.db, cookie.value_str())
                .await
                .map_err(internal)?
                .ok_or_else(unauthorized)?
        }
    };
    // The per-user cap, before anything is asked of PVE (even whether they may see the guest).
    let slot = match claim(&st, &actor, SessionSubject::PveGuest(vmid), kind, &q).await? {
        Ok(slot) => slot,
        Err(cap) => return Ok(close_at_once(ws, CloseReason::TooManyConsoles, Some(cap))),
    };
    // Asked of PVE now, for the person's own PVE user: a right withdrawn since the page was drawn counts.
    let g = match services::pve_guests::for_console(&st.db, st.pve.as_ref(), &st.pve_guests, &actor, vmid).await {
        Ok(g) => g,
        Err(ServiceError::NotFound) => return Err(refuse(StatusCode::NOT_FOUND, "no such guest")),
        Err(ServiceError::Forbidden) => {
            return Err(refuse(StatusCode::FORBIDDEN, "Proxmox VE does not grant you this console"));
        }
        Err(ServiceError::Unavailable(e)) => {
            tracing::warn!(vmid, error = %e, "console of PVE guest not checked");
            return Ok(close_at_once(ws, CloseReason::PveUnreachable, None));
        }
        Err(e) => return Err(internal(e)),
    };
    let pve = st.pve.clone().expect("checked by for_console");
    if g.status != "running" {
        return Ok(close_at_once(ws, CloseReason::MachineStopped, None));
    }
    if kind == ConsoleKind::Terminal
        && !services::consoles::guest_has_terminal(&pve, &g.node, g.kind, vmid).await.unwrap_or(true)
    {
        return Ok(close_at_once(ws, CloseReason::NoTerminal, None));
    }
    let upstream = match session::open(&pve, &g.node, g.kind, vmid, kind).await {
        Ok(upstream) => upstream,
        Err(e) => {
            tracing::warn!(vmid, error = %e, "console of PVE guest could not be opened");
            return Ok(close_at_once(ws, e.close_reason(), e.pve_detail()));
        }
    };
    services::pve_guests::audit_console(&st.db, &actor, &g, kind, q.token.is_some()).await.map_err(internal)?;
    let ctx = session::Serve {
        db: st.db.clone(),
        pve,
        registry: st.consoles.clone(),
        limits: st.console_limits,
        actor,
        subject: session::Subject::PveGuest(g),
        slot,
    };
    Ok(upgrade(ws).on_upgrade(move |socket| session::serve(ctx, upstream, socket)).into_response())
}
