//! The Guacamole sync page: what the sync does, "sync now", the last run in detail, and a history of the
//! runs that changed something or failed, quiet runs folded into one line each.

use minijinja::{Value, context};
use poem::http::StatusCode;
use poem::web::Query;
use poem::{Response, handler};

use crate::http::pages::ctx::{Ctx, Form, redirect, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::integrations::guacamole::notes::Severity;
use crate::integrations::guacamole::sync::Diagnostic;
use crate::services::guac_sync_runs::{self, HistoryLine};
use crate::workflows::guac_sync;

/// How many runs the history reads; quiet stretches fold, so this covers hours of a 5-minute cron.
const HISTORY_RUNS: u64 = 200;

fn run_view(r: &entities::guac_sync_run::Model) -> Value {
    context! {
        id => r.id,
        started_at => r.started_at.to_rfc3339(),
        seconds => (r.finished_at - r.started_at).num_milliseconds() as f64 / 1000.0,
        dry_run => r.dry_run,
        desired => r.desired, managed => r.managed,
        created => r.created, updated => r.updated, deleted => r.deleted,
        grants => r.grants_added + r.grants_removed,
        groups => r.groups_created + r.groups_deleted, users => r.users_created,
        errors => r.error_count, failure => r.failure.clone(),
    }
}

#[handler]
pub async fn guacamole(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    respond(
        async {
            ctx.admin()?;
            let runs = guac_sync_runs::recent(&ctx.state.db, HISTORY_RUNS).await.map_err(|e| ctx.service_error(&e))?;
            let configured = ctx.state.settings.raw.contains_key("guac_url");
            let last = runs.first().map(|r| {
                let diagnostics: Vec<Diagnostic> = serde_json::from_str(&r.diagnostics).unwrap_or_default();
                context! {
                    run => run_view(r),
                    diagnostics => diagnostics.iter().map(|d| context! {
                        vmid => d.vmid, line => d.line, column => d.column,
                        severity => match d.severity { Severity::Warning => "warning", Severity::Error => "error" },
                        message => d.message.clone(),
                    }).collect::<Vec<_>>(),
                }
            });
            let history: Vec<Value> = guac_sync_runs::history(runs)
                .iter()
                .map(|line| match line {
                    HistoryLine::Run(r) => context! { quiet => false, run => run_view(r) },
                    HistoryLine::Quiet { runs, from, to } => context! {
                        quiet => true, runs => runs, from => from.to_rfc3339(), to => to.to_rfc3339(),
                    },
                })
                .collect();
            Ok(ctx.render(
                "admin/guacamole.html",
                context! {
                    flash => flash(&ctx, &q), configured => configured, available => ctx.state.guac_sync,
                    history => history, last => last,
                },
            ))
        }
        .await,
    )
}

/// Queues a sync run now; the page shows it once the worker has recorded it.
#[tracing::instrument(skip_all)]
#[handler]
pub async fn sync_now(ctx: Ctx, _form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            if !ctx.state.guac_sync {
                return Ok(redirect("/admin/guacamole?done=guac_unavailable"));
            }
            guac_sync::request_now(&ctx.state.db, admin).await.map_err(|e| {
                tracing::error!(error = %e, "sync now failed");
                ctx.error_page(StatusCode::INTERNAL_SERVER_ERROR, "page.internal")
            })?;
            Ok(redirect("/admin/guacamole?done=guac_sync_queued"))
        }
        .await,
    )
}
