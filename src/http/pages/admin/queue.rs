//! The admin queue (filters, decisions, bulk decisions) and the audit log.

use minijinja::context;
use poem::web::{Path, Query};
use poem::{Response, handler};
use serde::Deserialize;

use super::ctx::{Ctx, Form, PageResult, optional_number, redirect, respond, urlencode};
use super::requests::{Flash, flash, refused, row_view};
use crate::domain::FieldErrors;
use crate::domain::request_status::RequestStatus;
use crate::services::{
    self,
    requests::{Adjustments, RequestFilter},
};

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    /// A status name, or `all`; default `pending`.
    status: Option<String>,
    user: Option<String>,
    template_id: Option<i64>,
    q: Option<String>,
    cursor: Option<i64>,
    done: Option<String>,
}

#[handler]
pub async fn queue(ctx: Ctx, Query(q): Query<QueueQuery>) -> Response {
    respond(queue_page(&ctx, q).await)
}

async fn queue_page(ctx: &Ctx, q: QueueQuery) -> PageResult {
    let admin = ctx.admin()?;
    let db = &ctx.state.db;
    let err = |e| ctx.service_error(&e);
    let status_name = q.status.clone().unwrap_or_else(|| "pending".into());
    let status = RequestStatus::parse(&status_name);
    let user_id = match q.user.as_deref().filter(|u| !u.is_empty()) {
        Some(name) => Some(services::users::find_by_name(db, name).await.map_err(err)?.map(|u| u.id).unwrap_or(-1)),
        None => None,
    };
    let filter = RequestFilter {
        status,
        user_id,
        template_id: q.template_id,
        search: q.q.clone(),
        oldest_first: true,
        cursor: q.cursor,
        limit: Some(50),
    };
    let page = services::requests::list(db, admin, filter).await.map_err(err)?;
    let templates = services::catalog::list(db, admin, true).await.map_err(err)?;
    let keep = format!(
        "status={}&user={}&template_id={}&q={}",
        urlencode(&status_name),
        urlencode(q.user.as_deref().unwrap_or("")),
        q.template_id.map(|t| t.to_string()).unwrap_or_default(),
        urlencode(q.q.as_deref().unwrap_or("")),
    );
    Ok(ctx.render(
        "admin/queue.html",
        context! {
            flash => flash(ctx, &Flash { done: q.done.clone() }),
            requests => page.items.iter().map(row_view).collect::<Vec<_>>(),
            next => page.next_cursor.map(|c| format!("/admin/requests?{keep}&cursor={c}")),
            statuses => RequestStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            templates => templates.iter().cloned().map(|t| context! { id => t.id, name => t.name }).collect::<Vec<_>>(),
            filter => context! { status => status_name, user => q.user, template_id => q.template_id, q => q.q },
        },
    ))
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn approve(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let mut errors = FieldErrors::default();
            let adj = Adjustments {
                cores: optional_number(&mut errors, "cores", form.get("cores")),
                memory_mib: optional_number(&mut errors, "memory_mib", form.get("memory_mib")),
                disk_gib: optional_number(&mut errors, "disk_gib", form.get("disk_gib")),
            };
            if !errors.is_empty() {
                return refused(&ctx, id, &errors.into()).await;
            }
            match services::requests::approve(&ctx.state.db, admin, id, adj).await {
                Ok(_) => Ok(redirect(&format!("/requests/{id}?done=approved"))),
                Err(e) => refused(&ctx, id, &e).await,
            }
        }
        .await,
    )
}

#[handler]
pub async fn reject(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            match services::requests::reject(&ctx.state.db, admin, id, form.get("reason")).await {
                Ok(_) => Ok(redirect(&format!("/requests/{id}?done=rejected"))),
                Err(e) => refused(&ctx, id, &e).await,
            }
        }
        .await,
    )
}

#[handler]
pub async fn retry(ctx: Ctx, Path(id): Path<i64>, _form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            match services::requests::retry(&ctx.state.db, admin, id).await {
                Ok(_) => Ok(redirect(&format!("/requests/{id}?done=retried"))),
                Err(e) => refused(&ctx, id, &e).await,
            }
        }
        .await,
    )
}

/// Approves or rejects every ticked request; each is decided on its own, and the page says how many
/// succeeded.
#[handler]
pub async fn bulk(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let db = &ctx.state.db;
            let ids: Vec<i64> = form.all("ids").iter().filter_map(|s| s.parse().ok()).take(500).collect();
            let rejecting = form.get("action") == "reject";
            let mut done = 0;
            for id in &ids {
                let res = if rejecting {
                    services::requests::reject(db, admin, *id, form.get("reason")).await
                } else {
                    services::requests::approve(db, admin, *id, Adjustments::default()).await
                };
                done += res.is_ok() as usize;
            }
            let what = if rejecting { "bulk_rejected" } else { "bulk_approved" };
            let partial = if done == ids.len() { "" } else { "_partial" };
            Ok(redirect(&format!("/admin/requests?done={what}{partial}")))
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    subject_type: Option<String>,
    subject_id: Option<i64>,
    cursor: Option<i64>,
}

#[handler]
pub async fn audit(ctx: Ctx, Query(q): Query<AuditQuery>) -> Response {
    respond(async {
        let admin = ctx.admin()?;
        let f = services::audit::AuditFilter {
            actor: q.actor.clone(),
            action: q.action.clone(),
            subject_type: q.subject_type.clone(),
            subject_id: q.subject_id,
            cursor: q.cursor,
            limit: Some(50),
        };
        let page = services::audit::list(&ctx.state.db, admin, f).await.map_err(|e| ctx.service_error(&e))?;
        let keep = format!(
            "actor={}&action={}&subject_type={}&subject_id={}",
            urlencode(q.actor.as_deref().unwrap_or("")),
            urlencode(q.action.as_deref().unwrap_or("")),
            urlencode(q.subject_type.as_deref().unwrap_or("")),
            q.subject_id.map(|s| s.to_string()).unwrap_or_default()
        );
        Ok(ctx.render(
            "admin/audit.html",
            context! {
                entries => page.items.iter().cloned().map(|e| context! { id => e.id, at => e.at.to_rfc3339(), actor => e.actor_name, action => e.action, subject_type => e.subject_type, subject_id => e.subject_id, details => e.details }).collect::<Vec<_>>(),
                next => page.next_cursor.map(|c| format!("/admin/audit?{keep}&cursor={c}")),
                filter => context! { actor => q.actor, action => q.action, subject_type => q.subject_type, subject_id => q.subject_id },
            },
        ))
    }.await)
}
