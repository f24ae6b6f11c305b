//! Webhooks: the list with each one's latest delivery, a form to add one (its secret shown once), and
//! deletion.

use minijinja::{Value, context};
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};

use crate::domain::FieldErrors;
use crate::domain::notification::EventKind;
use crate::http::pages::ctx::{Ctx, Form, PageResult, redirect, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::services::notifications::webhooks;
use crate::services::{self, ServiceError};

#[handler]
pub async fn show(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    let notice = flash(&ctx, &q);
    respond(page(&ctx, notice, None, None).await)
}

/// The page; `refused` is a refused form (what was typed, why); `created` a new webhook's URL and secret.
async fn page(
    ctx: &Ctx,
    notice: Option<String>,
    refused: Option<(&Form, FieldErrors)>,
    created: Option<Value>,
) -> PageResult {
    let admin = ctx.admin()?;
    let list = webhooks::list(&ctx.state.db, admin).await.map_err(|e| ctx.service_error(&e))?;
    let rows: Vec<Value> = list
        .iter()
        .map(|w| {
            let kinds: Vec<String> = webhooks::kinds(w).into_iter().map(|k| ctx.t(&k.label_key())).collect();
            context! {
                id => w.id, url => &w.url, kinds => kinds, created_at => w.created_at.to_rfc3339(),
                status => &w.last_status, code => w.last_status_code, error => &w.last_error,
                at => w.last_attempt_at.map(|t| t.to_rfc3339()),
            }
        })
        .collect();
    let (form, errors, status) = match &refused {
        Some((form, errors)) => (form.values(), ctx.field_errors(errors), StatusCode::UNPROCESSABLE_ENTITY),
        None => (Default::default(), Default::default(), StatusCode::OK),
    };
    let ticked: Vec<&str> = refused.as_ref().map(|(f, _)| f.all("kind")).unwrap_or_default();
    let kinds: Vec<Value> = EventKind::ALL
        .into_iter()
        .map(|k| context! { kind => k.as_str(), label => ctx.t(&k.label_key()), on => ticked.contains(&k.as_str()) })
        .collect();
    Ok(ctx.render_status(
        status,
        "admin/webhooks.html",
        context! { flash => notice, webhooks => rows, kinds => kinds, form => form, errors => errors, created => created },
    ))
}

#[handler]
pub async fn create(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let ticked = form.all("kind");
            let kinds: Vec<EventKind> = EventKind::ALL.into_iter().filter(|k| ticked.contains(&k.as_str())).collect();
            let st = &ctx.state;
            match webhooks::create(&st.db, &st.settings.secret_key, admin, form.get("url"), &kinds, &st.webhook_hosts)
                .await
            {
                Ok((row, secret)) => {
                    let shown = context! { url => row.url, secret => secret.expose().clone() };
                    page(&ctx, Some(ctx.t("flash.webhook_created")), None, Some(shown)).await
                }
                Err(ServiceError::Invalid(errors)) => page(&ctx, None, Some((&form, errors)), None).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[handler]
pub async fn delete(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            if !form.confirmed() {
                let question = ctx.t("webhooks.delete_confirm");
                return Ok(ctx.confirm_page(
                    &question,
                    &format!("/admin/webhooks/{id}/delete"),
                    &form,
                    "/admin/webhooks",
                ));
            }
            match services::notifications::webhooks::delete(&ctx.state.db, admin, id).await {
                Ok(()) => Ok(redirect("/admin/webhooks?done=webhook_deleted")),
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}
