//! Quotas per role: what each account may hold unless its own page overrides it.

use std::collections::BTreeMap;

use minijinja::{Value, context};
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};

use crate::domain::FieldErrors;
use crate::domain::quota::Quota;
use crate::domain::roles::Role;
use crate::http::pages::ctx::{Ctx, Form, PageResult, number, redirect, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::services::{self, ServiceError};

#[handler]
pub async fn quotas(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    let notice = flash(&ctx, &q);
    respond(quotas_page(&ctx, notice, None).await)
}

/// The page; `refused` is the role whose form was refused, with what was typed and why.
async fn quotas_page(ctx: &Ctx, notice: Option<String>, refused: Option<(Role, &Form, FieldErrors)>) -> PageResult {
    ctx.admin()?;
    let list = services::quotas::role_quotas(&ctx.state.db).await.map_err(|e| ctx.service_error(&e))?;
    let status = if refused.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let roles: Vec<Value> = list
        .iter()
        .map(|(r, q)| {
            let (form, errors) = match &refused {
                Some((role, form, errors)) if role == r => (form.values(), ctx.field_errors(errors)),
                _ => (
                    BTreeMap::from([
                        ("max_machines".to_owned(), q.max_machines.to_string()),
                        ("max_cores".to_owned(), q.max_cores.to_string()),
                        ("max_memory_mib".to_owned(), q.max_memory_mib.to_string()),
                        ("max_disk_gib".to_owned(), q.max_disk_gib.to_string()),
                    ]),
                    BTreeMap::new(),
                ),
            };
            context! { role => r.as_str(), form => form, errors => errors }
        })
        .collect();
    Ok(ctx.render_status(status, "admin/quotas.html", context! { flash => notice, roles => roles }))
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
                Err(ServiceError::Invalid(errors)) => quotas_page(&ctx, None, Some((role, &form, errors))).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}
