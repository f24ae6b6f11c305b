//! The catalog: the templates people may request from, with their limits; new and edited entries keep
//! what was typed when refused.

use std::collections::BTreeMap;

use minijinja::context;
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};

use crate::domain::FieldErrors;
use crate::http::pages::ctx::{Ctx, Form, PageResult, number, redirect, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::services::{self, ServiceError, catalog::TemplateInput};

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
            templates => list.iter().cloned().map(|t| context! { id => t.id, name => t.name, kind => "lxc", node => t.node, vmid => t.vmid, enabled => t.enabled,
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
