//! The Guacamole sync page for admins: the last runs with their time, counts and errors, and "sync now".

use minijinja::context;
use poem::http::StatusCode;
use poem::web::Query;
use poem::{Response, handler};

use super::ctx::{Ctx, Form, redirect, respond};
use super::requests::{Flash, flash};
use crate::integrations::guacamole::notes::Severity;
use crate::integrations::guacamole::sync::Diagnostic;
use crate::services::guac_sync_runs;
use crate::workflows::guac_sync;

#[handler]
pub async fn guacamole(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    respond(
        async {
            ctx.admin()?;
            let runs = guac_sync_runs::recent(&ctx.state.db, 20).await.map_err(|e| ctx.service_error(&e))?;
            let configured = ctx.state.settings.raw.contains_key("guac_url");
            let last = runs.first().map(|r| {
                let diagnostics: Vec<Diagnostic> = serde_json::from_str(&r.diagnostics).unwrap_or_default();
                context! {
                    diagnostics => diagnostics.iter().map(|d| context! {
                        vmid => d.vmid, line => d.line, column => d.column,
                        severity => match d.severity { Severity::Warning => "warning", Severity::Error => "error" },
                        message => d.message.clone(),
                    }).collect::<Vec<_>>(),
                    failure => r.failure.clone(),
                }
            });
            let rows: Vec<_> = runs
                .iter()
                .map(|r| {
                    context! {
                        started_at => r.started_at.to_rfc3339(),
                        seconds => (r.finished_at - r.started_at).num_milliseconds() as f64 / 1000.0,
                        dry_run => r.dry_run,
                        desired => r.desired, managed => r.managed,
                        created => r.created, updated => r.updated, deleted => r.deleted,
                        grants => r.grants_added + r.grants_removed,
                        errors => r.error_count, failed => r.failure.is_some(),
                    }
                })
                .collect();
            Ok(ctx.render(
                "admin/guacamole.html",
                context! {
                    flash => flash(&ctx, &q), configured => configured, available => ctx.state.guac_sync,
                    runs => rows, last => last,
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
