//! The profile: password, language, notification mails, API tokens.

use minijinja::{Value, context};
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};

use super::ctx::{Ctx, Form, PageResult, redirect, respond};
use super::requests::{Flash, flash};
use crate::domain::notification::EventKind;
use crate::domain::{FieldError, FieldErrors};
use crate::secrets::Secret;
use crate::services::{self, ServiceError};

#[handler]
pub async fn show(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    let notice = flash(&ctx, &q);
    respond(page(&ctx, notice, None, FieldErrors::default()).await)
}

async fn page(ctx: &Ctx, notice: Option<String>, new_token: Option<Value>, errors: FieldErrors) -> PageResult {
    let user = ctx.user()?;
    let db = &ctx.state.db;
    let err = |e| ctx.service_error(&e);
    let tokens = services::tokens::list(db, user).await.map_err(err)?;
    let account = services::users::get(db, user, user.id).await.map_err(err)?;
    let identities = services::identities::list_for_user(db, user, user.id).await.map_err(err)?;
    let off = services::notifications::prefs::opt_outs(db, user).await.map_err(err)?;
    let kinds: Vec<Value> = EventKind::ALL
        .into_iter()
        .map(|k| context! { kind => k.as_str(), label => ctx.t(&k.label_key()), on => off.wants(k) })
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render_status(
        status,
        "profile/profile.html",
        context! {
            flash => notice,
            new_token => new_token,
            language => user.language.clone(),
            languages => crate::http::i18n::LANGUAGES,
            tokens => tokens.iter().cloned().map(|t| context! { id => t.id, name => t.name, prefix => t.prefix, created_at => t.created_at.to_rfc3339(), last_used_at => t.last_used_at.map(|d| d.to_rfc3339()) }).collect::<Vec<_>>(),
            errors => ctx.field_errors(&errors),
            has_password => !account.password_hash.is_empty(),
            notify_kinds => kinds,
            email => account.email.clone().filter(|e| !e.trim().is_empty()),
            mail_configured => ctx.state.mail,
            identities => identities.iter().map(|i| context! {
                provider => &i.provider, subject => &i.subject, issuer => &i.issuer,
                last_sign_in_at => i.last_sign_in_at.map(|t| t.to_rfc3339()),
            }).collect::<Vec<_>>(),
        },
    ))
}

#[handler]
pub async fn change_password(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            if form.get("new_password") != form.get("confirm_password") {
                let errors = FieldErrors(vec![FieldError::new("confirm_password", "error.passwords_differ")]);
                return page(&ctx, None, None, errors).await;
            }
            let current = Secret::new(form.get("current_password").to_owned());
            let new = Secret::new(form.get("new_password").to_owned());
            let session = ctx.jar.get(crate::http::auth::SESSION_COOKIE).map(|c| c.value_str().to_owned());
            let origin = services::users::ChangeOrigin { client_addr: &ctx.client_addr, session: session.as_deref() };
            match services::users::change_own_password(&ctx.state.db, user, &current, &new, origin).await {
                Ok(()) => Ok(redirect("/profile?done=password_changed")),
                Err(ServiceError::Invalid(errors)) => page(&ctx, None, None, errors).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[handler]
pub async fn set_language(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            match services::users::set_language(&ctx.state.db, user, Some(form.get("language"))).await {
                Ok(()) => Ok(redirect("/profile?done=language_saved")),
                Err(ServiceError::Invalid(errors)) => page(&ctx, None, None, errors).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[handler]
pub async fn create_token(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            match services::tokens::create(&ctx.state.db, Some(user), user.id, form.get("name")).await {
                Ok((row, token)) => {
                    let shown = context! { name => row.name, token => token.expose().clone() };
                    page(&ctx, Some(ctx.t("flash.token_created")), Some(shown), FieldErrors::default()).await
                }
                Err(ServiceError::Invalid(errors)) => page(&ctx, None, None, errors).await,
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[handler]
pub async fn revoke_token(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            if !form.confirmed() {
                let question = ctx.t("profile.revoke_confirm_plain");
                return Ok(ctx.confirm_page(&question, &format!("/profile/tokens/{id}/revoke"), &form, "/profile"));
            }
            match services::tokens::revoke(&ctx.state.db, user, id).await {
                Ok(()) => Ok(redirect("/profile?done=token_revoked")),
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

/// Saves which kinds of notification mail the user gets: a ticked box is on, every other kind off.
#[handler]
pub async fn set_notifications(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            let on = form.all("kind");
            let off: Vec<EventKind> = EventKind::ALL.into_iter().filter(|k| !on.contains(&k.as_str())).collect();
            match services::notifications::prefs::set_opt_outs(&ctx.state.db, user, &off).await {
                Ok(_) => Ok(redirect("/profile?done=notifications_saved")),
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}
