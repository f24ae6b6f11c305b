//! The admin home: what waits (pending approvals, failures, lost machines), the last Guacamole sync and
//! each node's capacity. PVE being down or absent costs the capacity card only, never the page.

use minijinja::{Value, context};
use poem::web::Query;
use poem::{Response, handler};

use super::age_secs;
use crate::http::pages::ctx::{Ctx, PageResult, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::services::overview::{self, Capacity};
use crate::services::requests::RequestRow;

#[handler]
pub async fn home(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    respond(home_page(&ctx, &q).await)
}

async fn home_page(ctx: &Ctx, q: &Flash) -> PageResult {
    let admin = ctx.admin()?;
    let db = &ctx.state.db;
    // The cluster read runs beside the database reads: a slow PVE delays the page by its own time only.
    let (o, capacity) = tokio::join!(overview::read(db, admin), overview::capacity(ctx.state.pve.as_ref()));
    let o = o.map_err(|e| ctx.service_error(&e))?;
    let sync = o.last_sync.as_ref().map(|r| {
        context! {
            at => r.started_at.to_rfc3339(),
            age => age_secs(r.finished_at),
            changes => r.created + r.updated + r.deleted + r.grants_added + r.grants_removed,
            created => r.created, updated => r.updated, deleted => r.deleted,
            problems => r.error_count, failure => r.failure.clone(),
        }
    });
    let jobs: Vec<Value> = o
        .recent_failed_jobs
        .iter()
        .map(|j| {
            context! {
                id => j.id, kind => j.kind.clone(), state => j.state.as_str(), error => j.last_error.clone(),
                at => j.updated_at.to_rfc3339(), request_id => j.payload.get("request_id").and_then(|v| v.as_i64()),
            }
        })
        .collect();
    let lost: Vec<Value> = o
        .lost_machines
        .iter()
        .map(|l| {
            let m = &l.machine;
            context! {
                request_id => m.request_id, hostname => m.hostname.clone(), owner => l.owner.clone(), node => m.node.clone(),
                vmid => m.vmid, reason => m.lost_reason.clone(), since => m.lost_at.map(|t| t.to_rfc3339()),
            }
        })
        .collect();
    Ok(ctx.render(
        "admin/home.html",
        context! {
            flash => flash(ctx, q),
            pending => o.pending,
            oldest_pending => o.oldest_pending.iter().map(request_view).collect::<Vec<_>>(),
            failed => o.failed,
            failed_requests => o.failed_requests.iter().map(request_view).collect::<Vec<_>>(),
            failed_jobs => o.failed_jobs,
            failed_jobs_days => overview::FAILED_JOBS_DAYS,
            jobs => jobs,
            lost => o.lost,
            lost_machines => lost,
            sync => sync,
            guac_configured => ctx.state.settings.raw.contains_key("guac_url"),
            capacity => capacity_view(&capacity),
        },
    ))
}

fn request_view(r: &RequestRow) -> Value {
    let q = &r.request;
    context! {
        id => q.id, hostname => q.hostname.clone(), username => r.username.clone(), template => r.template_name.clone(),
        cores => q.cores, memory_mib => q.memory_mib, disk_gib => q.disk_gib, reason => q.reason.clone(),
        age => age_secs(q.created_at), updated_age => age_secs(q.updated_at), created_at => q.created_at.to_rfc3339(),
    }
}

fn capacity_view(c: &Capacity) -> Value {
    match c {
        Capacity::NotConfigured => context! { state => "not_configured" },
        Capacity::Unreachable(reason) => context! { state => "unreachable", reason => reason },
        Capacity::NoFigures => context! { state => "no_figures" },
        Capacity::Nodes(nodes) => context! {
            state => "nodes",
            nodes => nodes.iter().map(|n| context! {
                node => n.node.clone(), online => n.online, cores => n.cores, cores_allocated => n.cores_allocated,
                cpu_percent => n.cpu_percent, memory_used_mib => n.memory_used_mib, memory_total_mib => n.memory_total_mib,
                disk_used_mib => n.disk_used_mib, disk_total_mib => n.disk_total_mib, guests => n.guests, running => n.running,
            }).collect::<Vec<_>>(),
        },
    }
}
