//! A machine's details page, `/machines/:id`: its live status and usage, charts of the last hour or
//! day, power actions and console links, its snapshots and its timeline. `/machines/:id/live` is the
//! status block and charts alone, for `static/machine-live.js` to refresh every few seconds while the
//! tab is visible; without JavaScript the page has a plain "Refresh" link. Owner or admin only: anyone
//! else gets the not-found page, from both.

use minijinja::{Value, context};
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};
use serde::Deserialize;

use super::details_view::{charts_view, live_view};
use crate::domain::guest::GuestType;
use crate::http::pages::ctx::{Ctx, PageResult, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::services::{self, machines::MachineDetails, machines::MetricsRange};

/// `?range=hour|day` (anything else: the hour) and the `?done=` flash.
#[derive(Deserialize, Default)]
pub struct Params {
    range: Option<String>,
    done: Option<String>,
}

impl Params {
    fn range(&self) -> MetricsRange {
        self.range.as_deref().and_then(MetricsRange::parse).unwrap_or_default()
    }
}

async fn read(ctx: &Ctx, id: i64, range: MetricsRange) -> Result<MachineDetails, Response> {
    let user = ctx.user()?;
    let bound = services::machines::live_timeout(&ctx.state.settings.raw);
    services::machines::details(&ctx.state.db, ctx.state.pve.as_ref(), user, id, Some(range), bound)
        .await
        .map_err(|e| ctx.service_error(&e))
}

/// The values `machines/_live.html` needs.
fn live_block(ctx: &Ctx, d: &MachineDetails, range: MetricsRange) -> Value {
    let now = chrono::Utc::now().timestamp();
    context! {
        id => d.machine.id,
        range => range.as_str(),
        live => live_view(ctx, d),
        charts => charts_view(ctx, d, range, now),
        node => d.machine.node.clone(), vmid => d.machine.vmid, ipv4 => d.machine.ipv4.clone(),
        kind => d.kind.as_str(),
    }
}

/// `GET /machines/:id`.
#[handler]
pub async fn show(ctx: Ctx, Path(id): Path<i64>, Query(p): Query<Params>) -> Response {
    respond(page(&ctx, id, &p).await)
}

#[tracing::instrument(skip(ctx, p), fields(user = ctx.actor.as_ref().map(|a| a.id)))]
async fn page(ctx: &Ctx, id: i64, p: &Params) -> PageResult {
    let range = p.range();
    let d = read(ctx, id, range).await?;
    let user = ctx.user()?;
    let db = &ctx.state.db;
    let m = &d.machine;
    let request = services::requests::get(db, user, m.request_id).await.map_err(|e| ctx.service_error(&e))?;
    let gone = m.deleted_at.is_some() || m.lost_at.is_some();
    let ready = request.status == "ready" && !gone;
    let state = d.live.as_ref().map_or("unknown", |l| l.state.as_str()).to_owned();
    let running = state == "running";
    // A VM offers a terminal only with a serial port: its config is read while it runs (the button shows).
    let terminal = match (d.kind, running, ctx.state.pve.as_ref()) {
        (GuestType::Lxc, ..) => true,
        (GuestType::Qemu, true, Some(pve)) if ready => services::consoles::has_terminal(pve, m).await.unwrap_or(false),
        _ => false,
    };
    let snapshots = if ready { super::snapshots::section(ctx, m).await } else { Value::UNDEFINED };
    let lease = if ready { super::lease::section(ctx, m).await } else { Value::UNDEFINED };
    let timeline =
        services::audit::request_timeline(db, m.request_id, Some(m.id)).await.map_err(|e| ctx.service_error(&e))?;
    let password = services::machines::password_for(user, m, &ctx.state.settings.secret_key)
        .map_err(|e| ctx.service_error(&e))?
        .map(|p| p.expose().clone());
    let q = Flash { done: p.done.clone() };
    Ok(ctx.render_status(
        StatusCode::OK,
        "machines/details.html",
        context! {
            flash => flash(ctx, &q),
            machine => context! {
                id => m.id, hostname => m.hostname.clone(), state => state, kind => d.kind.as_str(),
                terminal => terminal, can_detach => services::machines::can_detach(m),
                login_user => m.login_user.clone(), password => password, request_id => m.request_id,
            },
            ready => ready,
            deleting => request.status == "deleting",
            gone => gone,
            block => live_block(ctx, &d, range),
            snapshots => snapshots,
            lease => lease,
            timeline => timeline.iter().cloned().map(|e| context! { at => e.at.to_rfc3339(), actor => e.actor_id.map(|_| e.actor_name), action => e.action }).collect::<Vec<_>>(),
        },
    ))
}

/// `GET /machines/:id/live`: the status block and charts as an HTML fragment.
#[handler]
pub async fn live(ctx: Ctx, Path(id): Path<i64>, Query(p): Query<Params>) -> Response {
    respond(
        async {
            let range = p.range();
            let d = read(&ctx, id, range).await?;
            let mut r = ctx.render("machines/_live.html", context! { block => live_block(&ctx, &d, range) });
            r.headers_mut().insert("Cache-Control", "no-store".parse().expect("header value"));
            Ok(r)
        }
        .await,
    )
}
