//! The console page (noVNC) and the terminal page (xterm.js) of a machine. Both only load the
//! browser library and point it at the relay's websocket; no PVE detail is on the page.

use minijinja::context;
use poem::web::Path;
use poem::{Response, handler, http::StatusCode};

use super::ctx::{Ctx, PageResult, respond};
use crate::console::ConsoleKind;
use crate::services::{self, ServiceError};

#[handler]
pub async fn console(ctx: Ctx, Path(id): Path<i64>) -> Response {
    respond(page(&ctx, id, ConsoleKind::Vnc).await)
}

#[handler]
pub async fn terminal(ctx: Ctx, Path(id): Path<i64>) -> Response {
    respond(page(&ctx, id, ConsoleKind::Terminal).await)
}

async fn page(ctx: &Ctx, id: i64, kind: ConsoleKind) -> PageResult {
    let user = ctx.user()?;
    let m = match services::consoles::machine_for_console(&ctx.state.db, user, id).await {
        Ok(m) => m,
        Err(ServiceError::Conflict(_)) => return Err(ctx.error_page(StatusCode::CONFLICT, "console.failed")),
        Err(e) => return Err(ctx.service_error(&e)),
    };
    let assets_missing = !crate::http::assets::vendor_installed(&crate::http::assets::static_dir(&ctx.state.settings));
    Ok(ctx.render(
        "machines/console.html",
        context! {
            kind => kind.segment(),
            assets_missing => assets_missing,
            machine => context! { id => m.id, hostname => m.hostname, request_id => m.request_id },
        },
    ))
}
