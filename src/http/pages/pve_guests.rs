//! "Machines you already have in Proxmox": the dashboard's section, power actions and the console
//! pages of the guests a person may use through their own PVE permissions. Every action asks PVE
//! (through the service) at the moment it is taken; the list only decides which buttons are drawn.

use minijinja::context;
use poem::web::Path;
use poem::{Response, handler, http::StatusCode};

use super::ctx::{Ctx, Form, PageResult, redirect, respond};
use crate::console::{CloseReason, ConsoleKind};
use crate::domain::console_caps::CapReached;
use crate::services::{self, Actor, ServiceError, machines::PowerAction};

/// The dashboard's section: `None` when there is nothing to show (no PVE identity, no guest).
pub async fn section(ctx: &Ctx, user: &Actor) -> Result<Option<minijinja::Value>, Response> {
    let st = &ctx.state;
    match services::pve_guests::list(&st.db, st.pve.as_ref(), &st.pve_guests, user).await {
        Ok(guests) if guests.is_empty() => Ok(None),
        Ok(guests) => {
            let rows: Vec<_> = guests
                .into_iter()
                .map(|g| {
                    context! {
                        vmid => g.vmid, name => g.name, node => g.node, kind => g.kind.as_str(), running => g.status == "running",
                        ipv4 => g.ipv4.map(|ip| ip.to_string()), may_power => g.may_power,
                        may_console => g.may_console, has_terminal => g.has_terminal, state => g.status,
                    }
                })
                .collect();
            Ok(Some(context! { guests => rows, unavailable => false }))
        }
        // PVE does not answer: the rest of the dashboard does not depend on it.
        Err(ServiceError::Unavailable(e)) => {
            tracing::warn!(error = %e, "guests of PVE user not listed");
            Ok(Some(context! { guests => Vec::<minijinja::Value>::new(), unavailable => true }))
        }
        Err(e) => Err(ctx.service_error(&e)),
    }
}

/// `POST /proxmox/{vmid}/action` (`action` = `start` | `shutdown` | `reboot`).
#[handler]
pub async fn action(ctx: Ctx, Path(vmid): Path<u64>, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            let Some(action) = PowerAction::parse(form.get("action")) else {
                return Err(ctx.error_page(StatusCode::BAD_REQUEST, "page.invalid"));
            };
            let st = &ctx.state;
            services::pve_guests::power(&st.db, st.pve.as_ref(), &st.pve_guests, user, vmid, action)
                .await
                .map_err(|e| refused(&ctx, &e))?;
            Ok(redirect(&format!("/?done=pve_guest_{}#pve-guests", action.as_str())))
        }
        .await,
    )
}

/// A refused action's page: PVE's own words about a busy guest help more than the bare statement.
fn refused(ctx: &Ctx, e: &ServiceError) -> Response {
    let (status, key) = crate::http::errors::page_status(e);
    let mut message = ctx.t(key);
    if let ServiceError::GuestRefused(services::GuestRefusal::Locked(said) | services::GuestRefusal::Other(said)) = e {
        message = format!("{message} ({said})");
    }
    if matches!(e, ServiceError::Forbidden) {
        message = ctx.t("pve_guests.refused");
    }
    ctx.render_status(status, "error.html", context! { message => message, status => status.as_u16() })
}

/// `GET /proxmox/{vmid}/console`.
#[handler]
pub async fn console(ctx: Ctx, Path(vmid): Path<u64>) -> Response {
    respond(page(&ctx, vmid, ConsoleKind::Vnc).await)
}

/// `GET /proxmox/{vmid}/terminal`.
#[handler]
pub async fn terminal(ctx: Ctx, Path(vmid): Path<u64>) -> Response {
    respond(page(&ctx, vmid, ConsoleKind::Terminal).await)
}

async fn page(ctx: &Ctx, vmid: u64, kind: ConsoleKind) -> PageResult {
    let user = ctx.user()?;
    let st = &ctx.state;
    let g = services::pve_guests::for_console(&st.db, st.pve.as_ref(), &st.pve_guests, user, vmid)
        .await
        .map_err(|e| refused(ctx, &e))?;
    let mut blocked = (g.status == "stopped").then_some("stopped");
    let subject = services::console_sessions::SessionSubject::PveGuest(vmid);
    let mut open = None;
    match services::console_sessions::room_for(&st.db, st.console_limits.caps, user, subject, kind).await {
        Err(ServiceError::ConsoleCap(CapReached::Sessions { open: n, cap })) => {
            (blocked, open) = (Some("too_many"), Some(context! { open => n, cap }));
        }
        Err(e) => return Err(ctx.service_error(&e)),
        Ok(()) => {}
    }
    if let (None, ConsoleKind::Terminal, Some(pve)) = (blocked, kind, st.pve.as_ref()) {
        // Unknown (PVE cannot be asked): the socket tells.
        let has = services::consoles::guest_has_terminal(pve, &g.node, g.kind, vmid).await.unwrap_or(true);
        blocked = (!has).then_some("no_terminal");
    }
    let assets_missing = !crate::http::assets::vendor_installed(&crate::http::assets::static_dir(&st.settings));
    let closes: Vec<minijinja::Value> = CloseReason::ALL
        .iter()
        .map(|r| context! { code => r.code(), text => ctx.t(&format!("console.close.{}", r.name())) })
        .collect();
    let name = if g.name.is_empty() { format!("{} {vmid}", g.kind.as_str()) } else { g.name.clone() };
    Ok(ctx.render(
        "machines/console.html",
        context! {
            kind => kind.segment(),
            assets_missing => assets_missing,
            blocked => blocked,
            open => open,
            closes => closes,
            machine => context! {
                id => vmid, hostname => name, scope => "proxmox", can_start => g.rights.power,
            },
        },
    ))
}
