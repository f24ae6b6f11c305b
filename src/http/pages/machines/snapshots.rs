//! A machine's snapshots: the card on its details page, and taking, rolling back and deleting them.
//!
//! A POST that worked redirects to `/machines/:id` with a `?done=snapshot_…` flash. One that did not
//! answers a page of its own with the right status, so the details page carries no form state: a take
//! re-shows its form (`machines/snapshot_form.html`) with the errors or the refusal and what was typed;
//! a refused rollback or delete shows the refusal with PVE's words and a way back.

use minijinja::{Value, context};
use poem::web::Path;
use poem::{Response, handler, http::StatusCode};

use crate::domain::snapshot::{SNAPSHOT_DESCRIPTION_MAX, SNAPSHOT_NAME_MAX};
use crate::http::pages::ctx::{Ctx, Form, PageResult, redirect, respond, urlencode};
use crate::services::snapshots::{self, NewSnapshot, Outcome, RollbackTarget, SnapshotCtx, SnapshotNode};
use crate::services::{GuestRefusal, ServiceError};

/// The service context of a page request.
fn service(ctx: &Ctx) -> Result<SnapshotCtx<'_>, Response> {
    let default_limit = snapshots::default_limit(&ctx.state.settings.raw).map_err(|e| {
        tracing::error!(error = %e, "bad snapshot_limit_default");
        ctx.error_page(StatusCode::INTERNAL_SERVER_ERROR, "page.internal")
    })?;
    Ok(SnapshotCtx { db: &ctx.state.db, pve: ctx.state.pve.as_ref(), default_limit, wait: snapshots::WAIT })
}

fn node_view(n: &SnapshotNode) -> Value {
    context! {
        name => n.name.clone(), description => n.description.clone(),
        taken_at => n.taken_at.and_then(|t| chrono::DateTime::from_timestamp(t, 0)).map(|d| d.to_rfc3339()),
        with_ram => n.with_ram, current => n.is_current_parent,
        children => n.children.iter().map(node_view).collect::<Vec<_>>(),
    }
}

/// The `snapshots` value of `machines/_snapshots.html` for `m` (a machine neither deleted nor lost):
/// its snapshot tree with `current` marked, the limit, and what the actor may do. `error` is set
/// instead of the tree when PVE cannot be asked or refuses (the template then says so).
pub async fn section(ctx: &Ctx, m: &entities::machine::Model) -> Value {
    let Ok(actor) = ctx.user() else { return Value::UNDEFINED };
    let cx = match service(ctx) {
        Ok(cx) => cx,
        Err(_) => return context! { error => ctx.t("page.internal") },
    };
    match snapshots::list(&cx, actor, m.id).await {
        Ok(tree) => context! {
            roots => tree.roots.iter().map(node_view).collect::<Vec<_>>(),
            count => tree.count,
            limit => tree.limit,
            full => tree.count as u32 >= tree.limit,
            current_parent => tree.current_parent,
            newest => tree.newest,
            kind => tree.kind.as_str(),
            running => tree.running,
            name_max => SNAPSHOT_NAME_MAX,
            description_max => SNAPSHOT_DESCRIPTION_MAX,
        },
        Err(e) => context! { error => problem_text(ctx, &e) },
    }
}

/// The words for a refusal, with PVE's own where it gave some.
fn problem_text(ctx: &Ctx, e: &ServiceError) -> String {
    let (_, key) = crate::http::errors::page_status(e);
    let mut text = match e {
        ServiceError::SnapshotLimit { limit } => ctx.tp("snapshot.limit_reached", &[("limit", &limit.to_string())]),
        _ => ctx.t(key),
    };
    if let ServiceError::GuestRefused(GuestRefusal::Locked(said) | GuestRefusal::Other(said)) = e {
        text = format!("{text} ({said})");
    }
    text
}

fn back(id: i64) -> String {
    format!("/machines/{id}")
}

/// Where a POST lands: the details page with what happened.
fn after(ctx: &Ctx, id: i64, what: &str, result: Result<Outcome, ServiceError>) -> PageResult {
    match result {
        Ok(Outcome::Done) => Ok(redirect(&format!("{}?done=snapshot_{what}", back(id)))),
        Ok(Outcome::StillRunning { .. }) => Ok(redirect(&format!("{}?done=snapshot_running", back(id)))),
        Err(e @ (ServiceError::NotFound | ServiceError::Forbidden)) => Err(ctx.service_error(&e)),
        Err(e) => {
            let (status, _) = crate::http::errors::page_status(&e);
            let message = problem_text(ctx, &e);
            Ok(ctx.render_status(status, "error.html", context! { message => message, status => status.as_u16() }))
        }
    }
}

/// The take form again, with field errors or a refusal, and what was typed.
fn form_again(ctx: &Ctx, id: i64, form: &Form, e: &ServiceError) -> Response {
    let (status, _) = crate::http::errors::page_status(e);
    let (errors, problem) = match e {
        ServiceError::Invalid(errors) => (ctx.field_errors(errors), None),
        other => (Default::default(), Some(problem_text(ctx, other))),
    };
    ctx.render_status(
        status,
        "machines/snapshot_form.html",
        context! {
            machine_id => id, form => form.values(), errors => errors, problem => problem,
            name_max => SNAPSHOT_NAME_MAX, description_max => SNAPSHOT_DESCRIPTION_MAX,
        },
    )
}

/// `POST /machines/:id/snapshots`: take one.
#[handler]
pub async fn take(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let actor = ctx.user()?;
            let cx = service(&ctx)?;
            let input = NewSnapshot {
                name: form.get("snapshot_name").to_owned(),
                description: form.get("snapshot_description").to_owned(),
                with_ram: form.checked("with_ram"),
            };
            match snapshots::take(&cx, actor, id, input).await {
                Err(e @ (ServiceError::NotFound | ServiceError::Forbidden)) => Err(ctx.service_error(&e)),
                Err(e) => Ok(form_again(&ctx, id, &form, &e)),
                result => after(&ctx, id, "taken", result),
            }
        }
        .await,
    )
}

/// Asks first, without JavaScript: the confirmation page posts the same fields again, confirmed.
fn confirm(ctx: &Ctx, id: i64, key: &str, name: &str, action: &str, form: &Form) -> Response {
    ctx.confirm_page(&ctx.tp(key, &[("name", name)]), action, form, &back(id))
}

/// `POST /machines/:id/snapshots/:name/rollback`.
#[handler]
pub async fn rollback(ctx: Ctx, Path((id, name)): Path<(i64, String)>, form: Form) -> Response {
    respond(
        async {
            let actor = ctx.user()?;
            let cx = service(&ctx)?;
            if !form.confirmed() {
                let action = format!("/machines/{id}/snapshots/{}/rollback", urlencode(&name));
                return Ok(confirm(&ctx, id, "snapshot.rollback_confirm", &name, &action, &form));
            }
            let result = snapshots::roll_back(&cx, actor, id, RollbackTarget::Named(name)).await;
            after(&ctx, id, "rolled_back", result)
        }
        .await,
    )
}

/// `POST /machines/:id/snapshots/rollback-newest`.
#[handler]
pub async fn rollback_newest(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let actor = ctx.user()?;
            let cx = service(&ctx)?;
            if !form.confirmed() {
                let question = ctx.t("snapshot.rollback_newest_confirm");
                let action = format!("/machines/{id}/snapshots/rollback-newest");
                return Ok(ctx.confirm_page(&question, &action, &form, &back(id)));
            }
            let result = snapshots::roll_back(&cx, actor, id, RollbackTarget::Newest).await;
            after(&ctx, id, "rolled_back", result)
        }
        .await,
    )
}

/// `POST /machines/:id/snapshots/:name/delete`.
#[handler]
pub async fn delete(ctx: Ctx, Path((id, name)): Path<(i64, String)>, form: Form) -> Response {
    respond(
        async {
            let actor = ctx.user()?;
            let cx = service(&ctx)?;
            if !form.confirmed() {
                let action = format!("/machines/{id}/snapshots/{}/delete", urlencode(&name));
                return Ok(confirm(&ctx, id, "snapshot.delete_confirm", &name, &action, &form));
            }
            let result = snapshots::delete(&cx, actor, id, &name).await;
            after(&ctx, id, "deleted", result)
        }
        .await,
    )
}
