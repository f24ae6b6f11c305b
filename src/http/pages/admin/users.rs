//! Admin pages for accounts, the catalog and quotas.

use std::collections::BTreeMap;

use minijinja::{Value, context};
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};
use serde::Deserialize;

use super::ctx::{Ctx, Form, PageResult, number, optional_number, redirect, respond};
use super::requests::{Flash, flash};
use crate::domain::FieldErrors;
use crate::domain::quota::{Quota, QuotaOverride};
use crate::domain::roles::Role;
use crate::secrets::Secret;
use crate::services::{self, ServiceError, catalog::TemplateInput};

#[derive(Deserialize, Default)]
pub struct UsersQuery {
    q: Option<String>,
    cursor: Option<i64>,
    done: Option<String>,
}

#[handler]
pub async fn users(ctx: Ctx, Query(q): Query<UsersQuery>) -> Response {
    let notice = flash(&ctx, &Flash { done: q.done.clone() });
    respond(users_page(&ctx, &q, notice, None, FieldErrors::default(), StatusCode::OK).await)
}

/// The users page; `secret` shows a password once (created account or reset), `form`/`errors` refill
/// the new-user form.
async fn users_page(
    ctx: &Ctx,
    q: &UsersQuery,
    notice: Option<String>,
    extra: Option<Value>,
    errors: FieldErrors,
    status: StatusCode,
) -> PageResult {
    let admin = ctx.admin()?;
    let db = &ctx.state.db;
    let page = services::users::list(db, admin, q.q.as_deref(), q.cursor, Some(50))
        .await
        .map_err(|e| ctx.service_error(&e))?;
    let mut rows = Vec::new();
    for u in page.items.iter().cloned() {
        let o = services::quotas::user_override(db, u.id).await.map_err(|e| ctx.service_error(&e))?;
        rows.push(context! {
            id => u.id, username => u.username, role => u.role, disabled => u.disabled, created_at => u.created_at.to_rfc3339(),
            o => context! { machines => o.max_machines, cores => o.max_cores, memory_mib => o.max_memory_mib, disk_gib => o.max_disk_gib },
        });
    }
    Ok(ctx.render_status(
        status,
        "admin/users.html",
        context! {
            flash => notice,
            users => rows,
            next => page.next_cursor.map(|c| format!("/admin/users?cursor={c}")),
            q => q.q.clone(),
            extra => extra,
            errors => ctx.field_errors(&errors),
        },
    ))
}

#[handler]
pub async fn create_user(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let role = if form.get("role") == "admin" { Role::Admin } else { Role::User };
            let password = Some(form.get("password")).filter(|p| !p.is_empty()).map(|p| Secret::new(p.to_owned()));
            let new = services::users::NewUser { username: form.get("username").to_owned(), role, password };
            let q = UsersQuery::default();
            match services::users::create(&ctx.state.db, Some(admin), new).await {
                Ok((user, generated)) => {
                    let extra =
                        context! { created => user.username, password => generated.map(|p| p.expose().clone()) };
                    users_page(
                        &ctx,
                        &q,
                        Some(ctx.t("flash.user_created")),
                        Some(extra),
                        FieldErrors::default(),
                        StatusCode::OK,
                    )
                    .await
                }
                Err(ServiceError::Invalid(errors)) => {
                    let extra = context! { form => form.values() };
                    users_page(&ctx, &q, None, Some(extra), errors, StatusCode::UNPROCESSABLE_ENTITY).await
                }
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

async fn set_disabled(ctx: &Ctx, id: i64, disabled: bool) -> PageResult {
    let admin = ctx.admin()?;
    match services::users::set_disabled(&ctx.state.db, admin, id, disabled).await {
        Ok(()) => {
            Ok(redirect(if disabled { "/admin/users?done=user_disabled" } else { "/admin/users?done=user_enabled" }))
        }
        Err(e) => Err(ctx.service_error(&e)),
    }
}

#[handler]
pub async fn disable_user(ctx: Ctx, Path(id): Path<i64>, _form: Form) -> Response {
    respond(set_disabled(&ctx, id, true).await)
}

#[handler]
pub async fn enable_user(ctx: Ctx, Path(id): Path<i64>, _form: Form) -> Response {
    respond(set_disabled(&ctx, id, false).await)
}

#[handler]
pub async fn reset_password(ctx: Ctx, Path(id): Path<i64>, _form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let db = &ctx.state.db;
            let user = services::users::get(db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
            let pw = services::users::reset_password(db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
            let extra = context! { reset => user.username, password => pw.expose().clone() };
            users_page(
                &ctx,
                &UsersQuery::default(),
                Some(ctx.t("flash.password_reset")),
                Some(extra),
                FieldErrors::default(),
                StatusCode::OK,
            )
            .await
        }
        .await,
    )
}

#[handler]
pub async fn set_user_quota(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let mut errors = FieldErrors::default();
            let o = QuotaOverride {
                max_machines: optional_number(&mut errors, "max_machines", form.get("max_machines")),
                max_cores: optional_number(&mut errors, "max_cores", form.get("max_cores")),
                max_memory_mib: optional_number(&mut errors, "max_memory_mib", form.get("max_memory_mib")),
                max_disk_gib: optional_number(&mut errors, "max_disk_gib", form.get("max_disk_gib")),
            };
            let res = if errors.is_empty() {
                services::quotas::set_user_override(&ctx.state.db, admin, id, o).await
            } else {
                Err(errors.into())
            };
            match res {
                Ok(()) => Ok(redirect("/admin/users?done=quota_saved")),
                Err(ServiceError::Invalid(errors)) => {
                    users_page(&ctx, &UsersQuery::default(), None, None, errors, StatusCode::UNPROCESSABLE_ENTITY).await
                }
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

fn template_values(t: &entities::template::Model) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    for (k, val) in [
        ("name", t.name.clone()),
        ("description", t.description.clone()),
        ("node", t.node.clone()),
        ("vmid", t.vmid.to_string()),
        ("default_cores", t.default_cores.to_string()),
        ("max_cores", t.max_cores.to_string()),
        ("default_memory_mib", t.default_memory_mib.to_string()),
        ("max_memory_mib", t.max_memory_mib.to_string()),
        ("default_disk_gib", t.default_disk_gib.to_string()),
        ("max_disk_gib", t.max_disk_gib.to_string()),
        ("net0", t.net0.clone()),
        ("storage", t.storage.clone().unwrap_or_default()),
        ("finish_mode", t.finish_mode.clone()),
    ] {
        v.insert(k.to_owned(), val);
    }
    if t.full_clone {
        v.insert("full_clone".into(), "on".into());
    }
    if t.enabled {
        v.insert("enabled".into(), "on".into());
    }
    v
}

fn template_input(form: &Form, errors: &mut FieldErrors) -> TemplateInput {
    TemplateInput {
        name: form.get("name").to_owned(),
        description: form.get("description").to_owned(),
        node: form.get("node").to_owned(),
        vmid: number(errors, "vmid", form.get("vmid")),
        default_cores: number(errors, "default_cores", form.get("default_cores")),
        max_cores: number(errors, "max_cores", form.get("max_cores")),
        default_memory_mib: number(errors, "default_memory_mib", form.get("default_memory_mib")),
        max_memory_mib: number(errors, "max_memory_mib", form.get("max_memory_mib")),
        default_disk_gib: number(errors, "default_disk_gib", form.get("default_disk_gib")),
        max_disk_gib: number(errors, "max_disk_gib", form.get("max_disk_gib")),
        full_clone: form.checked("full_clone"),
        enabled: form.checked("enabled"),
        net0: form.get("net0").to_owned(),
        storage: Some(form.get("storage").trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        finish_mode: form.get("finish_mode").to_owned(),
    }
}

#[handler]
pub async fn catalog(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    let mut defaults = BTreeMap::new();
    for (k, v) in [
        ("default_cores", "1"),
        ("max_cores", "4"),
        ("default_memory_mib", "1024"),
        ("max_memory_mib", "8192"),
        ("default_disk_gib", "8"),
        ("max_disk_gib", "64"),
        ("full_clone", "on"),
        ("enabled", "on"),
    ] {
        defaults.insert(k.to_owned(), v.to_owned());
    }
    let notice = flash(&ctx, &q);
    respond(catalog_page(&ctx, notice, defaults, FieldErrors::default()).await)
}

async fn catalog_page(
    ctx: &Ctx,
    notice: Option<String>,
    form: BTreeMap<String, String>,
    errors: FieldErrors,
) -> PageResult {
    let admin = ctx.admin()?;
    let list = services::catalog::list(&ctx.state.db, admin, true).await.map_err(|e| ctx.service_error(&e))?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render_status(
        status,
        "admin/catalog.html",
        context! {
            flash => notice,
            templates => list.iter().cloned().map(|t| context! { id => t.id, name => t.name, node => t.node, vmid => t.vmid, enabled => t.enabled,
                max_cores => t.max_cores, max_memory_mib => t.max_memory_mib, max_disk_gib => t.max_disk_gib, full_clone => t.full_clone }).collect::<Vec<_>>(),
            form => form,
            errors => ctx.field_errors(&errors),
        },
    ))
}

#[handler]
pub async fn create_template(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let mut errors = FieldErrors::default();
            let input = template_input(&form, &mut errors);
            let res = if errors.is_empty() {
                services::catalog::create(&ctx.state.db, Some(admin), input).await
            } else {
                Err(errors.into())
            };
            match res {
                Ok(_) => Ok(redirect("/admin/catalog?done=template_saved")),
                Err(ServiceError::Invalid(errors)) => catalog_page(&ctx, None, form.values(), errors).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[handler]
pub async fn edit_template(ctx: Ctx, Path(id): Path<i64>) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let t = services::catalog::get(&ctx.state.db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
            Ok(ctx.render(
                "admin/template_form.html",
                context! { id => id, form => template_values(&t), errors => BTreeMap::<String, String>::new() },
            ))
        }
        .await,
    )
}

#[handler]
pub async fn update_template(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let mut errors = FieldErrors::default();
            let input = template_input(&form, &mut errors);
            let res = if errors.is_empty() {
                services::catalog::update(&ctx.state.db, admin, id, input).await
            } else {
                Err(errors.into())
            };
            match res {
                Ok(_) => Ok(redirect("/admin/catalog?done=template_saved")),
                Err(ServiceError::Invalid(errors)) => Ok(ctx.render_status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "admin/template_form.html",
                    context! { id => id, form => form.values(), errors => ctx.field_errors(&errors) },
                )),
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[handler]
pub async fn quotas(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    let notice = flash(&ctx, &q);
    respond(quotas_page(&ctx, notice, FieldErrors::default()).await)
}

async fn quotas_page(ctx: &Ctx, notice: Option<String>, errors: FieldErrors) -> PageResult {
    ctx.admin()?;
    let list = services::quotas::role_quotas(&ctx.state.db).await.map_err(|e| ctx.service_error(&e))?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render_status(
        status,
        "admin/quotas.html",
        context! {
            flash => notice,
            roles => list.iter().cloned().map(|(r, q)| context! { role => r.as_str(), machines => q.max_machines, cores => q.max_cores, memory_mib => q.max_memory_mib, disk_gib => q.max_disk_gib }).collect::<Vec<_>>(),
            errors => ctx.field_errors(&errors),
        },
    ))
}

#[handler]
pub async fn set_role_quota(ctx: Ctx, Path(role): Path<String>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let role = Role::parse(&role).ok_or_else(|| ctx.error_page(StatusCode::NOT_FOUND, "page.not_found"))?;
            let mut errors = FieldErrors::default();
            let q = Quota {
                max_machines: number(&mut errors, "max_machines", form.get("max_machines")),
                max_cores: number(&mut errors, "max_cores", form.get("max_cores")),
                max_memory_mib: number(&mut errors, "max_memory_mib", form.get("max_memory_mib")),
                max_disk_gib: number(&mut errors, "max_disk_gib", form.get("max_disk_gib")),
            };
            let res = if errors.is_empty() {
                services::quotas::set_role_quota(&ctx.state.db, admin, role, q).await
            } else {
                Err(errors.into())
            };
            match res {
                Ok(()) => Ok(redirect("/admin/quotas?done=quota_saved")),
                Err(ServiceError::Invalid(errors)) => quotas_page(&ctx, None, errors).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}
