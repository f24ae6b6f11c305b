//! Signing in and out: the sign-in page (a local password, a Proxmox VE realm, the directory, and the
//! OpenID Connect button), the second-factor step of PVE accounts, and the OpenID redirect.

pub mod openid;
pub mod second_factor;

use minijinja::context;
use poem::web::Query;
use poem::{Response, handler, http::StatusCode};
use serde::Deserialize;

use super::ctx::{Ctx, Form, redirect};
use crate::http::auth::{SESSION_COOKIE, make_cookie};
use crate::secrets::Secret;
use crate::services::auth::NewSession;
use crate::services::sign_in::{Outcome, PasswordMethod};
use crate::services::{self, ServiceError};

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only a path on this site, so the sign-in page cannot be used to bounce people elsewhere. Browsers
/// drop tabs and line breaks from a URL and read `\\` as `/`, so `/\t/evil.example` would become
/// `//evil.example`: anything but visible ASCII is refused outright, and what is left must parse, against
/// this site, to a path on this site.
pub fn safe_next(next: &str) -> &str {
    const HOME: &str = "/";
    let plain = next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if !plain || !next.starts_with('/') || next.starts_with("//") {
        return HOME;
    }
    let Ok(base) = url::Url::parse("https://proxdesk.invalid/") else { return HOME };
    match base.join(next) {
        Ok(u) if u.origin() == base.origin() && u.path().starts_with('/') && !u.path().starts_with("//") => next,
        _ => HOME,
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;
    use proptest::prelude::*;

    #[test]
    fn only_paths_on_this_site_pass() {
        for ok in ["/", "/requests/4", "/machines?state=running&name=a", "/admin/requests#x"] {
            assert_eq!(safe_next(ok), ok);
        }
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r//evil.example",
            "/ /evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "evil.example",
            "/\u{a0}/evil.example",
            "",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }

    proptest! {
        /// Whatever comes in, what goes out, read the way a browser reads a Location (tabs and line
        /// breaks dropped, `\\` as `/`), stays on this site.
        #[test]
        fn never_leaves_the_site(next in "\\PC{0,24}", prefix in prop::sample::select(vec!["", "/", "//", "/\t/", "/\\"])) {
            let input = format!("{prefix}{next}");
            let out = safe_next(&input);
            let browser: String = out.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).map(|c| if c == '\\' { '/' } else { c }).collect();
            let base = url::Url::parse("https://proxdesk.invalid/").unwrap();
            let resolved = base.join(&browser).unwrap();
            prop_assert_eq!(resolved.origin(), base.origin(), "{:?} -> {:?}", input, out);
        }
    }
}

/// What the sign-in form shows besides the fields: every way to sign in, and what was typed.
struct Typed<'a> {
    username: &'a str,
    method: &'a str,
    next: &'a str,
}

async fn page(ctx: &Ctx, status: StatusCode, error: Option<String>, typed: Typed<'_>) -> Response {
    let providers = &ctx.state.sign_in;
    let mut methods = providers.password_methods().await;
    // What was picked stays picked; else the default realm; else local accounts.
    if !typed.method.is_empty() {
        for m in &mut methods {
            m.default = m.value == typed.method;
        }
    }
    let openid = providers.openid.as_ref().map(|o| o.label().to_owned());
    ctx.render_status(
        status,
        "auth/login.html",
        context! {
            error => error,
            username => typed.username,
            next => typed.next,
            methods => methods
                .into_iter()
                .map(|m| context! { value => m.value, label => m.label, default => m.default })
                .collect::<Vec<_>>(),
            openid => openid,
        },
    )
}

#[handler]
pub async fn login_form(ctx: Ctx, Query(q): Query<Next>) -> Response {
    if ctx.actor.is_some() {
        return redirect("/");
    }
    // No `next`: the landing page depends on who signs in (admins start at their workspace).
    let next = q.next.as_deref().map(safe_next).unwrap_or("");
    page(&ctx, StatusCode::OK, None, Typed { username: "", method: "", next }).await
}

#[tracing::instrument(skip_all)]
#[handler]
pub async fn login(ctx: Ctx, form: Form) -> Response {
    let username = form.get("username");
    let method_value = form.get("method");
    let password = Secret::new(form.get("password").to_owned());
    let next = form.get("next").to_owned();
    let typed = Typed { username, method: method_value, next: &next };
    let Some(method) = PasswordMethod::parse(method_value) else {
        return page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, Some(ctx.t("login.method_unknown")), typed).await;
    };
    let hours = ctx.state.settings.session_hours;
    let providers = ctx.state.sign_in.clone();
    let key = &ctx.state.settings.secret_key;
    let outcome =
        providers.with_password(&ctx.state.db, key, &method, username, &password, &ctx.client_addr, hours).await;
    match outcome {
        Ok(Outcome::Signed(session)) => signed_in(&ctx, session, &next),
        Ok(Outcome::SecondFactor { pending }) => second_factor::ask(&ctx, &pending, &next, None),
        Err(e) => refused(&ctx, &e, typed).await,
    }
}

/// The sign-in page again after a refusal, with what was typed; a throttled attempt also says how long
/// to wait (`Retry-After`). Errors that are not the person's doing get the error page.
async fn refused(ctx: &Ctx, e: &ServiceError, typed: Typed<'_>) -> Response {
    let Some((status, message)) = sign_in_error(ctx, e) else {
        return ctx.service_error(e);
    };
    let mut resp = page(ctx, status, Some(message), typed).await;
    if let ServiceError::Throttled { retry_after_secs } = e {
        resp.headers_mut().insert(poem::http::header::RETRY_AFTER, (*retry_after_secs).into());
    }
    resp
}

/// Sets the session cookie and sends the person where they were going (admins: their workspace).
pub fn signed_in(ctx: &Ctx, session: NewSession, next: &str) -> Response {
    let hours = ctx.state.settings.session_hours;
    ctx.jar.add(make_cookie(SESSION_COOKIE, session.token.expose(), hours * 3600, ctx.secure));
    match next {
        "" if session.actor.is_admin() => redirect("/admin"),
        "" => redirect("/"),
        next => redirect(safe_next(next)),
    }
}

/// The status and words of a refused sign-in shown on the sign-in page; `None` for errors that are not
/// the person's doing (they get the error page).
pub fn sign_in_error(ctx: &Ctx, e: &ServiceError) -> Option<(StatusCode, String)> {
    Some(match e {
        ServiceError::Unauthenticated => (StatusCode::UNAUTHORIZED, ctx.t("login.failed")),
        ServiceError::Throttled { retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, ctx.tp("login.throttled", &[("seconds", &retry_after_secs.to_string())]))
        }
        ServiceError::Forbidden => (StatusCode::FORBIDDEN, ctx.t("login.password_off")),
        // A realm or directory that is not offered here.
        ServiceError::NotFound => (StatusCode::UNPROCESSABLE_ENTITY, ctx.t("login.method_unknown")),
        // PVE or the directory did not answer: say so, keep what was typed.
        ServiceError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ctx.t("login.provider_down")),
        // The provider vouched for them, but their name is a system account's: no account is made.
        ServiceError::ReservedName(crate::domain::login_name::LoginNameError::Reserved { name }) => {
            (StatusCode::FORBIDDEN, ctx.tp("login.name_reserved", &[("name", name.as_str())]))
        }
        _ => return None,
    })
}

#[handler]
pub async fn logout(ctx: Ctx, _form: Form) -> Response {
    if let Some(c) = ctx.jar.get(SESSION_COOKIE) {
        if let Err(e) = services::auth::logout(&ctx.state.db, c.value_str()).await {
            return ctx.service_error(&e);
        }
        ctx.jar.add(make_cookie(SESSION_COOKIE, "", 0, ctx.secure));
        if let Some(provider_sign_out) = openid::sign_out_at_provider(&ctx, c.value_str()).await {
            return provider_sign_out;
        }
    }
    redirect("/login")
}
