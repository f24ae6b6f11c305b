//! Automatic approval rules: the list (with how many requests each approved, linked to the queue
//! filtered on it), a form for a new rule, an edit form per rule, and deletion. A refused form comes back
//! with what was typed and every error marked.

use std::collections::BTreeMap;

use minijinja::{Value, context};
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};

use crate::domain::roles::Role;
use crate::domain::{FieldError, FieldErrors};
use crate::http::pages::ctx::{Ctx, Form, PageResult, optional_number, redirect, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::services::approval_rules::{RuleInput, RuleView};
use crate::services::{self, ServiceError};

const RULES: &str = "/admin/approval-rules";

#[handler]
pub async fn list(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    let notice = flash(&ctx, &q);
    respond(list_page(&ctx, notice, None).await)
}

async fn list_page(ctx: &Ctx, notice: Option<String>, refused: Option<(&Form, FieldErrors)>) -> PageResult {
    let admin = ctx.admin()?;
    let db = &ctx.state.db;
    let rules = services::approval_rules::list(db, admin).await.map_err(|e| ctx.service_error(&e))?;
    let (form, errors, status) = match refused {
        Some((form, errors)) => (form.values(), ctx.field_errors(&errors), StatusCode::UNPROCESSABLE_ENTITY),
        None => (BTreeMap::from([("enabled".to_owned(), "on".to_owned())]), BTreeMap::new(), StatusCode::OK),
    };
    let extra = context! {
        flash => notice,
        rules => rules.iter().map(|r| summary(ctx, r)).collect::<Vec<_>>(),
        form => form, errors => errors,
        options => options(ctx).await?,
    };
    Ok(ctx.render_status(status, "admin/approval_rules.html", extra))
}

#[handler]
pub async fn edit(ctx: Ctx, Path(id): Path<i64>) -> Response {
    respond(edit_page(&ctx, id, None).await)
}

async fn edit_page(ctx: &Ctx, id: i64, refused: Option<(&Form, FieldErrors)>) -> PageResult {
    let admin = ctx.admin()?;
    let rule = services::approval_rules::get(&ctx.state.db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
    let (form, errors, status) = match refused {
        Some((form, errors)) => (form.values(), ctx.field_errors(&errors), StatusCode::UNPROCESSABLE_ENTITY),
        None => (typed(&rule), BTreeMap::new(), StatusCode::OK),
    };
    let extra =
        context! { rule => summary(ctx, &rule), form => form, errors => errors, options => options(ctx).await? };
    Ok(ctx.render_status(status, "admin/approval_rule_edit.html", extra))
}

#[handler]
pub async fn create(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let res = match read(&ctx, &form).await? {
                Ok(input) => services::approval_rules::create(&ctx.state.db, admin, input).await.map(|_| ()),
                Err(errors) => Err(ServiceError::Invalid(errors)),
            };
            match res {
                Ok(()) => Ok(redirect(&format!("{RULES}?done=rule_saved"))),
                Err(ServiceError::Invalid(errors)) => list_page(&ctx, None, Some((&form, errors))).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[handler]
pub async fn update(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let res = match read(&ctx, &form).await? {
                Ok(input) => services::approval_rules::update(&ctx.state.db, admin, id, input).await.map(|_| ()),
                Err(errors) => Err(ServiceError::Invalid(errors)),
            };
            match res {
                Ok(()) => Ok(redirect(&format!("{RULES}?done=rule_saved"))),
                Err(ServiceError::Invalid(errors)) => edit_page(&ctx, id, Some((&form, errors))).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

/// The form carries nothing but its CSRF token, which the `Form` extractor checks.
#[handler]
pub async fn delete(ctx: Ctx, Path(id): Path<i64>, _form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            services::approval_rules::delete(&ctx.state.db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
            Ok(redirect(&format!("{RULES}?done=rule_deleted")))
        }
        .await,
    )
}

/// Reads the form: numbers, the role, and the comma list of usernames turned into ids (an unknown
/// name is the `users` field's error).
async fn read(ctx: &Ctx, form: &Form) -> Result<Result<RuleInput, FieldErrors>, Response> {
    let mut errors = FieldErrors::default();
    let template_id = optional_number(&mut errors, "template_id", form.get("template_id"));
    let role = match form.get("role") {
        "" => None,
        raw => {
            let role = Role::parse(raw);
            if role.is_none() {
                errors.push(FieldError::new("role", "error.invalid"));
            }
            role
        }
    };
    let mut user_ids = Vec::new();
    for name in form.get("users").split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match services::users::find_by_name(&ctx.state.db, name).await.map_err(|e| ctx.service_error(&e))? {
            Some(u) => user_ids.push(u.id),
            None => errors.push(FieldError::new("users", "error.rule_unknown_user").with("name", name)),
        }
    }
    let names: Vec<String> =
        form.get("groups").split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
    let group_ids = match services::groups::by_names(&ctx.state.db, "groups", &names).await {
        Ok(groups) => groups.into_iter().map(|g| g.id).collect(),
        Err(ServiceError::Invalid(e)) => {
            errors.0.extend(e.0);
            Vec::new()
        }
        Err(e) => return Err(ctx.service_error(&e)),
    };
    let input = RuleInput {
        name: form.get("name").to_owned(),
        enabled: form.checked("enabled"),
        template_id,
        role,
        max_cores: optional_number(&mut errors, "max_cores", form.get("max_cores")),
        max_memory_mib: optional_number(&mut errors, "max_memory_mib", form.get("max_memory_mib")),
        max_disk_gib: optional_number(&mut errors, "max_disk_gib", form.get("max_disk_gib")),
        max_machines: optional_number(&mut errors, "max_machines", form.get("max_machines")),
        user_ids,
        group_ids,
    };
    Ok(if errors.is_empty() { Ok(input) } else { Err(errors) })
}

/// A rule's values as the edit form shows them.
fn typed(v: &RuleView) -> BTreeMap<String, String> {
    let r = &v.rule;
    let n = |x: Option<i32>| x.map(|x| x.to_string()).unwrap_or_default();
    let mut form = BTreeMap::from([
        ("name".to_owned(), r.name.clone()),
        ("template_id".to_owned(), r.template_id.map(|t| t.to_string()).unwrap_or_default()),
        ("role".to_owned(), r.role.map(|r| r.as_str().to_owned()).unwrap_or_default()),
        ("max_cores".to_owned(), n(r.max_cores)),
        ("max_memory_mib".to_owned(), n(r.max_memory_mib)),
        ("max_disk_gib".to_owned(), n(r.max_disk_gib)),
        ("max_machines".to_owned(), n(r.max_machines)),
        ("users".to_owned(), v.usernames.join(", ")),
        ("groups".to_owned(), v.group_names.join(", ")),
    ]);
    if r.enabled {
        form.insert("enabled".to_owned(), "on".to_owned());
    }
    form
}

fn summary(ctx: &Ctx, v: &RuleView) -> Value {
    let r = &v.rule;
    context! {
        id => r.id, name => r.name.clone(), enabled => r.enabled,
        entry => v.template_name.clone().unwrap_or_else(|| ctx.t("rules.any_entry")),
        role => r.role.map(|r| ctx.t(&format!("role.{}", r.as_str()))).unwrap_or_else(|| ctx.t("rules.any_role")),
        max_cores => r.max_cores, max_memory_mib => r.max_memory_mib, max_disk_gib => r.max_disk_gib,
        max_machines => r.max_machines, users => v.usernames.join(", "), groups => v.group_names.join(", "),
        approved => v.approved,
    }
}

/// The choices of the entry and role selects.
async fn options(ctx: &Ctx) -> Result<Value, Response> {
    let admin = ctx.admin()?;
    let entries = services::catalog::list(&ctx.state.db, admin, true).await.map_err(|e| ctx.service_error(&e))?;
    let mut templates = vec![context! { value => "", text => ctx.t("rules.any_entry") }];
    templates.extend(entries.iter().map(|t| context! { value => t.id.to_string(), text => t.name.clone() }));
    let mut roles = vec![context! { value => "", text => ctx.t("rules.any_role") }];
    roles.extend(
        Role::ALL.iter().map(|r| context! { value => r.as_str(), text => ctx.t(&format!("role.{}", r.as_str())) }),
    );
    Ok(context! { templates => templates, roles => roles })
}
