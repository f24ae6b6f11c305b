//! The console page (noVNC) and the terminal page (xterm.js) of a machine. Both only load the
//! browser library and point it at the relay's websocket; no PVE detail is on the page. A machine
//! known to be stopped, or without its guest (or a VM without a serial port, on the terminal page), gets
//! the reason and a way back instead.

use minijinja::context;
use poem::web::Path;
use poem::{Response, handler};

use super::ctx::{Ctx, PageResult, respond};
use crate::console::{CloseReason, ConsoleKind};
use crate::domain::console_caps::CapReached;
use crate::services::console_sessions::SessionSubject;
use crate::services::{self, ServiceError};

#[handler]
pub async fn console(ctx: Ctx, Path(id): Path<i64>) -> Response {
    respond(page(&ctx, id, ConsoleKind::Vnc).await)
}

#[handler]
pub async fn terminal(ctx: Ctx, Path(id): Path<i64>) -> Response {
    respond(page(&ctx, id, ConsoleKind::Terminal).await)
}

/// Why the page offers no console at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    Stopped,
    Unavailable,
    /// The person already has as many consoles open as the per-user cap allows.
    TooMany,
    /// A VM without a serial port has no terminal, only its screen.
    NoTerminal,
}

impl Blocked {
    fn as_str(self) -> &'static str {
        match self {
            Blocked::Stopped => "stopped",
            Blocked::Unavailable => "unavailable",
            Blocked::TooMany => "too_many",
            Blocked::NoTerminal => "no_terminal",
        }
    }
}

async fn page(ctx: &Ctx, id: i64, kind: ConsoleKind) -> PageResult {
    let user = ctx.user()?;
    let db = &ctx.state.db;
    let (m, blocked) = match services::consoles::machine_for_console(db, user, id).await {
        Ok(m) => {
            // At the cap, the socket would be refused: say so first, without asking PVE anything.
            let subject = SessionSubject::Machine(m.id);
            match services::console_sessions::room_for(db, ctx.state.console_limits.caps, user, subject, kind).await {
                Err(ServiceError::ConsoleCap(CapReached::Sessions { open, cap })) => {
                    return render(ctx, &m, kind, Some(Blocked::TooMany), Some(context! { open, cap }));
                }
                Err(e) => return Err(ctx.service_error(&e)),
                Ok(()) => {}
            }
            // Only a machine PVE reports stopped is blocked: when PVE cannot tell, the socket will.
            let pve = ctx.state.pve.as_ref();
            let live = services::machines::live_status(pve, &m).await;
            let mut blocked = (live.state == "stopped").then_some(Blocked::Stopped);
            if let (None, ConsoleKind::Terminal, Some(pve)) = (blocked, kind, pve) {
                // Unknown (PVE cannot be asked): the socket tells.
                let has = services::consoles::has_terminal(pve, &m).await.unwrap_or(true);
                blocked = (!has).then_some(Blocked::NoTerminal);
            }
            (m, blocked)
        }
        Err(ServiceError::Conflict(_) | ServiceError::MachineLost { .. } | ServiceError::GuestRefused(_)) => {
            let m = services::machines::get(db, user, id).await.map_err(|e| ctx.service_error(&e))?;
            (m, Some(Blocked::Unavailable))
        }
        Err(e) => return Err(ctx.service_error(&e)),
    };
    render(ctx, &m, kind, blocked, None)
}

fn render(
    ctx: &Ctx,
    m: &entities::machine::Model,
    kind: ConsoleKind,
    blocked: Option<Blocked>,
    // For `TooMany`: how many are open, and the cap.
    open: Option<minijinja::Value>,
) -> PageResult {
    let assets_missing = !crate::http::assets::vendor_installed(&crate::http::assets::static_dir(&ctx.state.settings));
    // Each close code's translated message, for the page's `data-close-<code>` attributes.
    let closes: Vec<minijinja::Value> = CloseReason::ALL
        .iter()
        .map(|r| context! { code => r.code(), text => ctx.t(&format!("console.close.{}", r.name())) })
        .collect();
    Ok(ctx.render(
        "machines/console.html",
        context! {
            kind => kind.segment(),
            assets_missing => assets_missing,
            blocked => blocked.map(Blocked::as_str),
            open => open,
            closes => closes,
            machine => context! {
                id => m.id, hostname => &m.hostname, request_id => m.request_id,
                scope => "machines", can_start => true,
            },
        },
    ))
}
