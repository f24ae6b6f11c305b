//! Groups (admin): the list with a new-group form, and each group's page with its members (add by
//! username, remove), its name and description, and its deletion (refused while an entry's stage uses it).

use std::collections::BTreeMap;

use minijinja::context;
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};

use crate::domain::{FieldError, FieldErrors};
use crate::http::pages::ctx::{Ctx, Form, PageResult, redirect, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::services::{self, ServiceError, groups::GroupInput};

fn input(form: &Form) -> GroupInput {
    GroupInput { name: form.get("name").to_owned(), description: form.get("description").to_owned() }
}

#[handler]
pub async fn list(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    respond(list_page(&ctx, &q, BTreeMap::new(), FieldErrors::default()).await)
}

async fn list_page(ctx: &Ctx, q: &Flash, form: BTreeMap<String, String>, errors: FieldErrors) -> PageResult {
    let admin = ctx.admin()?;
    let groups = services::groups::list(&ctx.state.db, admin).await.map_err(|e| ctx.service_error(&e))?;
    let rows: Vec<_> = groups
        .iter()
        .map(|g| {
            context! {
                id => g.group.id, name => g.group.name.clone(), description => g.group.description.clone(),
                members => g.members.len(), used_by => g.used_by.clone(),
            }
        })
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render_status(
        status,
        "admin/groups.html",
        context! { flash => flash(ctx, q), groups => rows, form => form, errors => ctx.field_errors(&errors) },
    ))
}

#[tracing::instrument(skip_all)]
#[handler]
pub async fn create(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            match services::groups::create(&ctx.state.db, admin, input(&form)).await {
                Ok(g) => Ok(redirect(&format!("/admin/groups/{}?done=group_created", g.id))),
                Err(ServiceError::Invalid(errors)) => list_page(&ctx, &Flash::default(), form.values(), errors).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[handler]
pub async fn show(ctx: Ctx, Path(id): Path<i64>, Query(q): Query<Flash>) -> Response {
    respond(group_page(&ctx, id, &q, None, None).await)
}

/// What a refused form on a group's page brings back: the form's name, what was typed, its errors.
struct Refused {
    form: &'static str,
    values: BTreeMap<String, String>,
    errors: FieldErrors,
}

async fn group_page(
    ctx: &Ctx,
    id: i64,
    q: &Flash,
    refused: Option<Refused>,
    problem: Option<(StatusCode, String)>,
) -> PageResult {
    let admin = ctx.admin()?;
    let g = services::groups::get(&ctx.state.db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
    let mut status = problem.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let (mut edit, mut edit_errors, mut add, mut add_errors) =
        (BTreeMap::new(), FieldErrors::default(), BTreeMap::new(), FieldErrors::default());
    edit.insert("name".to_owned(), g.group.name.clone());
    edit.insert("description".to_owned(), g.group.description.clone());
    if let Some(r) = refused {
        status = StatusCode::UNPROCESSABLE_ENTITY;
        if r.form == "edit" {
            (edit, edit_errors) = (r.values, r.errors);
        } else {
            (add, add_errors) = (r.values, r.errors);
        }
    }
    Ok(ctx.render_status(
        status,
        "admin/group.html",
        context! {
            flash => flash(ctx, q),
            problem => problem.map(|(_, m)| m),
            group => context! { id => g.group.id, name => g.group.name.clone(), description => g.group.description.clone(), used_by => g.used_by.clone() },
            members => g.members.iter().map(|(id, name)| context! { id => id, username => name }).collect::<Vec<_>>(),
            edit => edit, edit_errors => ctx.field_errors(&edit_errors),
            add => add, add_errors => ctx.field_errors(&add_errors),
        },
    ))
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn update(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            match services::groups::update(&ctx.state.db, admin, id, input(&form)).await {
                Ok(_) => Ok(redirect(&format!("/admin/groups/{id}?done=group_saved"))),
                Err(ServiceError::Invalid(errors)) => {
                    let refused = Refused { form: "edit", values: form.values(), errors };
                    group_page(&ctx, id, &Flash::default(), Some(refused), None).await
                }
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn delete(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            if !form.confirmed() {
                let g = services::groups::get(&ctx.state.db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
                let question = ctx.tp("groups.delete_confirm", &[("name", g.group.name.as_str())]);
                let back = format!("/admin/groups/{id}");
                return Ok(ctx.confirm_page(&question, &format!("/admin/groups/{id}/delete"), &form, &back));
            }
            match services::groups::delete(&ctx.state.db, admin, id).await {
                Ok(()) => Ok(redirect("/admin/groups?done=group_deleted")),
                Err(e @ ServiceError::Conflict(_)) => {
                    let problem = (StatusCode::CONFLICT, format!("{} {e}", ctx.t("groups.in_use")));
                    group_page(&ctx, id, &Flash::default(), None, Some(problem)).await
                }
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn add_member(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let db = &ctx.state.db;
            let name = form.get("username").trim();
            let refuse = |code: &'static str| Refused {
                form: "add",
                values: form.values(),
                errors: FieldErrors(vec![FieldError::new("username", code).with("name", name)]),
            };
            if name.is_empty() {
                return group_page(&ctx, id, &Flash::default(), Some(refuse("error.required")), None).await;
            }
            let Some(u) = services::users::find_by_name(db, name).await.map_err(|e| ctx.service_error(&e))? else {
                return group_page(&ctx, id, &Flash::default(), Some(refuse("error.user_unknown")), None).await;
            };
            match services::groups::add_member(db, admin, id, u.id).await {
                Ok(()) => Ok(redirect(&format!("/admin/groups/{id}?done=member_added"))),
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn remove_member(ctx: Ctx, Path((id, user_id)): Path<(i64, i64)>, _form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            match services::groups::remove_member(&ctx.state.db, admin, id, user_id).await {
                Ok(()) => Ok(redirect(&format!("/admin/groups/{id}?done=member_removed"))),
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}
