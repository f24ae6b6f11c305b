//! How people sign in: the providers this instance offers, and the policy an admin sets for proxdesk
//! passwords (everyone, or only the break-glass admin).

use std::collections::BTreeMap;

use minijinja::context;
use poem::web::Query;
use poem::{Response, handler, http::StatusCode};

use crate::domain::FieldErrors;
use crate::domain::identity::PasswordSignIn;
use crate::http::pages::ctx::{Ctx, Form, PageResult, redirect, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::services::{self, ServiceError};

#[handler]
pub async fn show(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    let notice = flash(&ctx, &q);
    respond(page(&ctx, notice, None, FieldErrors::default()).await)
}

async fn page(
    ctx: &Ctx,
    notice: Option<String>,
    typed: Option<BTreeMap<String, String>>,
    errors: FieldErrors,
) -> PageResult {
    ctx.admin()?;
    let policy = services::sign_in_policy::get(&ctx.state.db).await.map_err(|e| ctx.service_error(&e))?;
    let form = typed.unwrap_or_else(|| {
        let (mode, admin) = match &policy {
            PasswordSignIn::Everyone => ("everyone", String::new()),
            PasswordSignIn::BreakGlassOnly { admin } => ("break_glass_only", admin.clone()),
        };
        BTreeMap::from([("password_sign_in".to_owned(), mode.to_owned()), ("break_glass_admin".to_owned(), admin)])
    });
    let providers = &ctx.state.sign_in;
    let methods = providers.password_methods().await;
    let realms: Vec<String> =
        methods.iter().filter(|m| m.value.starts_with("pve:")).filter_map(|m| m.label.clone()).collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render_status(
        status,
        "admin/sign_in.html",
        context! {
            flash => notice,
            form => form,
            errors => ctx.field_errors(&errors),
            pve => providers.pve.is_some(),
            realms => realms,
            directory => providers.directory.as_ref().map(|d| d.label().to_owned()),
            openid => providers.openid.as_ref().map(|o| o.label().to_owned()),
        },
    ))
}

#[tracing::instrument(skip_all)]
#[handler]
pub async fn save(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let policy = match form.get("password_sign_in") {
                "break_glass_only" => {
                    PasswordSignIn::BreakGlassOnly { admin: form.get("break_glass_admin").trim().to_owned() }
                }
                _ => PasswordSignIn::Everyone,
            };
            match services::sign_in_policy::set(&ctx.state.db, admin, policy).await {
                Ok(()) => Ok(redirect("/admin/users/sign-in?done=sign_in_saved")),
                Err(ServiceError::Invalid(errors)) => page(&ctx, None, Some(form.values()), errors).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}
