//! Login and logout.

use minijinja::context;
use poem::web::Query;
use poem::{Response, handler, http::StatusCode};
use serde::Deserialize;

use super::ctx::{Ctx, Form, redirect};
use crate::http::auth::{SESSION_COOKIE, make_cookie};
use crate::secrets::Secret;
use crate::services::{self, ServiceError};

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only local paths, so the login page cannot be used to bounce people elsewhere.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') { next } else { "/" }
}

#[handler]
pub fn login_form(ctx: Ctx, Query(q): Query<Next>) -> Response {
    if ctx.actor.is_some() {
        return redirect("/");
    }
    // No `next`: the landing page depends on who logs in (admins start at their workspace).
    ctx.render("auth/login.html", context! { next => q.next.as_deref().map(safe_next).unwrap_or("") })
}

#[tracing::instrument(skip_all)]
#[handler]
pub async fn login(ctx: Ctx, form: Form) -> Response {
    let username = form.get("username");
    let password = Secret::new(form.get("password").to_owned());
    let next = form.get("next").to_owned();
    let hours = ctx.state.settings.session_hours;
    match services::auth::login(&ctx.state.db, username, &password, &ctx.client_addr, hours).await {
        Ok(session) => {
            ctx.jar.add(make_cookie(SESSION_COOKIE, session.token.expose(), hours * 3600, ctx.secure));
            match next.as_str() {
                "" if session.actor.is_admin() => redirect("/admin"),
                "" => redirect("/"),
                next => redirect(safe_next(next)),
            }
        }
        Err(e @ (ServiceError::Unauthenticated | ServiceError::Throttled { .. })) => {
            let (status, key) = match e {
                ServiceError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "login.throttled"),
                _ => (StatusCode::UNAUTHORIZED, "login.failed"),
            };
            ctx.render_status(
                status,
                "auth/login.html",
                context! { error => ctx.t(key), username => username, next => next },
            )
        }
        Err(e) => ctx.service_error(&e),
    }
}

#[handler]
pub async fn logout(ctx: Ctx, _form: Form) -> Response {
    if let Some(c) = ctx.jar.get(SESSION_COOKIE) {
        if let Err(e) = services::auth::logout(&ctx.state.db, c.value_str()).await {
            return ctx.service_error(&e);
        }
        ctx.jar.add(make_cookie(SESSION_COOKIE, "", 0, ctx.secure));
    }
    redirect("/login")
}
