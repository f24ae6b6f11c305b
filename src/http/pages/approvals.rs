//! Approvals: the requests waiting at a stage of a group the visitor is in, each with its approve and
//! reject forms. Members of those groups need not be admins; admins decide from the queue as well.

use std::collections::BTreeMap;

use minijinja::{Value, context};
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};
use serde::Deserialize;

use super::ctx::{Ctx, Form, PageResult, redirect, respond};
use super::requests::{Flash, flash};
use crate::domain::FieldErrors;
use crate::domain::request_status::RequestStatus;
use crate::services::{self, ServiceError, requests::RequestRow};

#[derive(Deserialize, Default)]
pub struct ApprovalsQuery {
    cursor: Option<i64>,
    done: Option<String>,
}

/// A refused decision: the row, what was typed, and the message or field errors.
struct Refused {
    id: i64,
    values: BTreeMap<String, String>,
    errors: FieldErrors,
    status: StatusCode,
    message: String,
}

#[handler]
pub async fn list(ctx: Ctx, Query(q): Query<ApprovalsQuery>) -> Response {
    respond(list_page(&ctx, &q, None).await)
}

/// A request waiting for the visitor, as the page shows it.
pub fn stage_view(ctx: &Ctx, r: &RequestRow) -> Option<Value> {
    let p = r.approval.as_ref()?;
    let waiting = p.waiting(&r.request.status).map(|s| s.group_name.clone());
    Some(context! {
        label => p.label(),
        waiting => waiting.clone(),
        who => waiting.map(|g| ctx.tp("stages.who", &[("group", g.as_str())])),
        approvals => p.approvals.iter().map(|a| context! {
            stage => a.stage + 1,
            group => p.stages.get(a.stage.max(0) as usize).map(|s| s.group_name.clone()),
            username => a.username.clone(),
            at => a.decided_at.to_rfc3339(),
        }).collect::<Vec<_>>(),
    })
}

async fn list_page(ctx: &Ctx, q: &ApprovalsQuery, refused: Option<Refused>) -> PageResult {
    let user = ctx.user()?;
    let page = services::requests::stages::awaiting(&ctx.state.db, user, q.cursor, Some(50))
        .await
        .map_err(|e| ctx.service_error(&e))?;
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|r| {
            let mine = refused.as_ref().filter(|f| f.id == r.request.id);
            context! {
                id => r.request.id, hostname => r.request.hostname.clone(), username => r.username.clone(),
                template => r.template_name.clone(), purpose => r.request.purpose.clone(),
                cores => r.request.cores, memory_mib => r.request.memory_mib, disk_gib => r.request.disk_gib,
                created_at => r.request.created_at.to_rfc3339(),
                stage => stage_view(ctx, r),
                form => mine.map(|f| f.values.clone()).unwrap_or_default(),
                errors => mine.map(|f| ctx.field_errors(&f.errors)).unwrap_or_default(),
            }
        })
        .collect();
    let status = refused.as_ref().map_or(StatusCode::OK, |f| f.status);
    Ok(ctx.render_status(
        status,
        "approvals/list.html",
        context! {
            flash => flash(ctx, &Flash { done: q.done.clone() }),
            problem => refused.map(|f| f.message),
            requests => rows,
            next => page.next_cursor.map(|c| format!("/approvals?cursor={c}")),
            first => q.cursor.map(|_| "/approvals".to_owned()),
        },
    ))
}

/// After a refused decision: a request the visitor may not see or decide is an error page; anything else
/// (someone decided first, a missing reason) shows the list again with the reason.
async fn refused(ctx: &Ctx, id: i64, form: &Form, e: ServiceError) -> PageResult {
    let (status, key) = crate::http::errors::page_status(&e);
    if matches!(e, ServiceError::NotFound | ServiceError::Forbidden) {
        return Err(ctx.error_page(status, key));
    }
    let errors = match e {
        ServiceError::Invalid(errors) => errors,
        _ => FieldErrors::default(),
    };
    let message = ctx.t(key);
    let refused = Refused { id, values: form.values(), errors, status, message };
    list_page(ctx, &ApprovalsQuery::default(), Some(refused)).await
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn approve(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            match services::requests::approve(&ctx.state.db, user, id, Default::default()).await {
                Ok(r) if RequestStatus::parse(&r.status) == Some(RequestStatus::Pending) => {
                    Ok(redirect("/approvals?done=stage_approved"))
                }
                Ok(_) => Ok(redirect("/approvals?done=approved")),
                Err(e) => refused(&ctx, id, &form, e).await,
            }
        }
        .await,
    )
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn reject(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            match services::requests::reject(&ctx.state.db, user, id, form.get("reason")).await {
                Ok(_) => Ok(redirect("/approvals?done=rejected")),
                Err(e) => refused(&ctx, id, &form, e).await,
            }
        }
        .await,
    )
}
