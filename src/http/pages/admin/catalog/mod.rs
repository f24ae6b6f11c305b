//! The catalog: the entries people may request machines from, of three kinds, with their limits and
//! the storages, bridges and ISOs they allow — picked from what PVE offers. A refused entry (a field
//! error, or a cluster that did not answer) comes back with everything that was typed or ticked.

mod form;

use minijinja::{Value, context};
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};

use crate::domain::FieldErrors;
use crate::http::pages::ctx::{Ctx, Form, PageResult, redirect, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::services::{self, ServiceError};
use form::Typed;

/// Why a form was not saved, beyond its field errors.
enum Refusal {
    None,
    Fields(FieldErrors),
    /// PVE did not answer (or is not configured): nothing was saved, the form is shown again.
    Unavailable,
}

/// What the cluster offers, or the message that says why the lists are empty.
async fn discovery(ctx: &Ctx) -> (Option<services::catalog::Discovery>, Option<String>) {
    let Some(pve) = ctx.state.pve.as_ref() else { return (None, Some(ctx.t("catalog.pve_not_configured"))) };
    match services::catalog::discover_cluster(pve).await {
        Ok(found) => (Some(found), None),
        Err(e) => {
            tracing::warn!(error = %e, "catalog discovery failed");
            (None, Some(ctx.t("catalog.pve_unreachable")))
        }
    }
}

/// The context of `_template_fields.html`: the values, the lists, the errors and the notices.
async fn fields(ctx: &Ctx, typed: &Typed, refusal: Refusal) -> (StatusCode, Value) {
    let (found, lists_problem) = discovery(ctx).await;
    let (status, errors, problem) = match refusal {
        Refusal::None => (StatusCode::OK, FieldErrors::default(), None),
        Refusal::Fields(e) => (StatusCode::UNPROCESSABLE_ENTITY, form::on_form_fields(typed.kind(), e), None),
        Refusal::Unavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, FieldErrors::default(), Some(ctx.t("catalog.save_unavailable")))
        }
    };
    let view = context! {
        form => typed.values.clone(),
        picked => typed.lists.clone(),
        offer => form::offers(ctx, found.as_ref(), typed),
        lists_problem => lists_problem,
        problem => problem,
        errors => ctx.field_errors(&errors),
    };
    (status, view)
}

#[handler]
pub async fn catalog(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    let notice = flash(&ctx, &q);
    respond(catalog_page(&ctx, notice, &Typed::defaults(), Refusal::None).await)
}

async fn catalog_page(ctx: &Ctx, notice: Option<String>, typed: &Typed, refusal: Refusal) -> PageResult {
    let admin = ctx.admin()?;
    let list = services::catalog::list(&ctx.state.db, admin, true).await.map_err(|e| ctx.service_error(&e))?;
    let (status, view) = fields(ctx, typed, refusal).await;
    let templates: Vec<Value> = list
        .iter()
        .map(|t| {
            let kind = services::catalog::kind_of(t);
            let nodes = if kind.is_cloned() { t.node.clone() } else { t.nodes.replace(',', ", ") };
            context! { id => t.id, name => t.name.clone(), kind => kind.as_str(), nodes => nodes,
            vmid => kind.is_cloned().then_some(t.vmid), enabled => t.enabled,
            max_cores => t.max_cores, max_memory_mib => t.max_memory_mib, max_disk_gib => t.max_disk_gib }
        })
        .collect();
    Ok(ctx.render_status(status, "admin/catalog.html", context! { flash => notice, templates => templates, ..view }))
}

/// Saves the post through `save`; a refusal shows the form again through `again`.
async fn save<S, A>(ctx: &Ctx, form: &Form, save: S, again: A) -> PageResult
where
    S: AsyncFnOnce(services::catalog::TemplateInput) -> Result<entities::template::Model, ServiceError>,
    A: AsyncFnOnce(Typed, Refusal) -> PageResult,
{
    let typed = Typed::posted(form);
    let mut errors = FieldErrors::default();
    let input = form::input(form, &typed, &mut errors);
    let res = if errors.is_empty() { save(input).await } else { Err(errors.into()) };
    match res {
        Ok(_) => Ok(redirect("/admin/catalog?done=template_saved")),
        Err(ServiceError::Invalid(errors)) => again(typed, Refusal::Fields(errors)).await,
        Err(ServiceError::Unavailable(msg)) => {
            tracing::warn!(error = %msg, "catalog entry not saved");
            again(typed, Refusal::Unavailable).await
        }
        Err(e) => Err(ctx.service_error(&e)),
    }
}

#[handler]
pub async fn create_template(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let (db, pve) = (&ctx.state.db, ctx.state.pve.as_ref());
            save(
                &ctx,
                &form,
                async |input| services::catalog::create(db, pve, Some(admin), input).await,
                async |typed, refusal| catalog_page(&ctx, None, &typed, refusal).await,
            )
            .await
        }
        .await,
    )
}

async fn edit_page(ctx: &Ctx, id: i64, typed: &Typed, refusal: Refusal) -> PageResult {
    let (status, view) = fields(ctx, typed, refusal).await;
    Ok(ctx.render_status(status, "admin/template_form.html", context! { id => id, ..view }))
}

#[handler]
pub async fn edit_template(ctx: Ctx, Path(id): Path<i64>) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let db = &ctx.state.db;
            let t = services::catalog::get(db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
            let stages =
                services::requests::stages::stages_of(db, Some(id)).await.map_err(|e| ctx.service_error(&e))?;
            let mut typed = Typed::of(&t);
            typed.values.insert("approval_stages".into(), services::requests::stages::names(&stages).join(", "));
            edit_page(&ctx, id, &typed, Refusal::None).await
        }
        .await,
    )
}

#[handler]
pub async fn update_template(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let (db, pve) = (&ctx.state.db, ctx.state.pve.as_ref());
            save(
                &ctx,
                &form,
                async |input| services::catalog::update(db, pve, admin, id, input).await,
                async |typed, refusal| edit_page(&ctx, id, &typed, refusal).await,
            )
            .await
        }
        .await,
    )
}
