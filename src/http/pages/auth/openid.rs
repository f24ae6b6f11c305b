//! Signing in through the OpenID Connect provider: the redirect there, and the way back.
//!
//! The `state` sent to the provider is also kept in a short-lived cookie of this browser, so a
//! callback only completes in the browser that started the sign-in (a link with someone else's code
//! and state signs nobody in).

use poem::web::Query;
use poem::web::cookie::{Cookie, SameSite};
use poem::{Response, handler, http::StatusCode};
use serde::Deserialize;

use super::super::ctx::{Ctx, redirect};
use super::{Next, Typed, page, safe_next, signed_in};
use crate::services::ServiceError;
use crate::services::sign_in::openid::FLOW_MINUTES;

/// Holds the `state` of the sign-in this browser started.
const STATE_COOKIE: &str = "proxdesk_oidc_state";
const STATE_PATH: &str = "/login/oidc";
/// Holds the sealed ID token of an OpenID session, for signing out at the provider too.
pub const LOGOUT_COOKIE: &str = "proxdesk_oidc_logout";

fn cookie(name: &str, value: &str, path: &str, max_age_secs: i64, secure: bool) -> Cookie {
    let mut c = Cookie::new_with_str(name, value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path(path);
    c.set_secure(secure);
    c.set_max_age(std::time::Duration::from_secs(max_age_secs.max(0) as u64));
    c
}

async fn refused(ctx: &Ctx, status: StatusCode, key: &str) -> Response {
    page(ctx, status, Some(ctx.t(key)), Typed { username: "", method: "", next: "" }).await
}

/// Starts the authorization code flow: redirects to the provider.
#[tracing::instrument(skip_all)]
#[handler]
pub async fn begin(ctx: Ctx, Query(q): Query<Next>) -> Response {
    let Some(openid) = ctx.state.sign_in.openid.as_ref() else {
        return refused(&ctx, StatusCode::NOT_FOUND, "login.method_unknown").await;
    };
    let next = q.next.as_deref().map(safe_next).unwrap_or("");
    match openid.begin(&ctx.state.db, &ctx.state.settings.secret_key, next).await {
        Ok(started) => {
            let state = cookie(STATE_COOKIE, started.state.expose(), STATE_PATH, FLOW_MINUTES * 60, ctx.secure);
            ctx.jar.add(state);
            redirect(&started.redirect_to)
        }
        Err(ServiceError::Unavailable(_)) => {
            refused(&ctx, StatusCode::SERVICE_UNAVAILABLE, "login.provider_down").await
        }
        Err(e) => ctx.service_error(&e),
    }
}

#[derive(Deserialize)]
pub struct Back {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The provider sends the browser back here with `code` and `state` (or `error`).
#[tracing::instrument(skip_all)]
#[handler]
pub async fn callback(ctx: Ctx, Query(q): Query<Back>) -> Response {
    let Some(openid) = ctx.state.sign_in.openid.as_ref() else {
        return refused(&ctx, StatusCode::NOT_FOUND, "login.method_unknown").await;
    };
    let (db, key) = (&ctx.state.db, &ctx.state.settings.secret_key);
    let state = q.state.as_deref().unwrap_or("");
    let ours = ctx.jar.get(STATE_COOKIE).map(|c| c.value_str().to_owned());
    ctx.jar.add(cookie(STATE_COOKIE, "", STATE_PATH, 0, ctx.secure));
    if !same(ours.as_deref(), state) {
        tracing::info!(cookie = ours.is_some(), "OpenID sign-in refused: the state is not this browser's");
        return refused(&ctx, StatusCode::BAD_REQUEST, "login.oidc_other_browser").await;
    }
    if let Some(error) = q.error.as_deref() {
        if let Err(e) = openid.abandon(db, key, state).await {
            return ctx.service_error(&e);
        }
        // The provider's error code is one of a fixed list; only that much is logged.
        let error: String = error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
        tracing::info!(%error, "OpenID sign-in ended at the provider");
        let key = if error == "access_denied" { "login.oidc_cancelled" } else { "login.oidc_refused" };
        return refused(&ctx, StatusCode::UNAUTHORIZED, key).await;
    }
    let code = q.code.as_deref().unwrap_or("");
    let hours = ctx.state.settings.session_hours;
    match openid.finish(db, key, state, code, hours).await {
        Ok(done) => {
            ctx.jar.add(cookie(LOGOUT_COOKIE, &done.logout_hint, "/", hours * 3600, ctx.secure));
            signed_in(&ctx, done.session, &done.next)
        }
        Err(ServiceError::Invalid(_)) => refused(&ctx, StatusCode::BAD_REQUEST, "login.oidc_expired").await,
        Err(e @ ServiceError::ReservedName(_)) => {
            let (status, message) = super::sign_in_error(&ctx, &e).expect("a sign-in refusal");
            page(&ctx, status, Some(message), Typed { username: "", method: "", next: "" }).await
        }
        Err(ServiceError::Unauthenticated) => refused(&ctx, StatusCode::UNAUTHORIZED, "login.oidc_refused").await,
        Err(ServiceError::Unavailable(_)) => {
            refused(&ctx, StatusCode::SERVICE_UNAVAILABLE, "login.provider_down").await
        }
        Err(e) => ctx.service_error(&e),
    }
}

/// After `logout` ended the session `session_token`: the redirect that signs out at the provider too,
/// when this was an OpenID session and the provider offers it. Forgets the logout cookie either way.
pub async fn sign_out_at_provider(ctx: &Ctx, session_token: &str) -> Option<Response> {
    let hint = ctx.jar.get(LOGOUT_COOKIE)?.value_str().to_owned();
    ctx.jar.add(cookie(LOGOUT_COOKIE, "", "/", 0, ctx.secure));
    let openid = ctx.state.sign_in.openid.as_ref()?;
    let url = openid.logout_redirect(&ctx.state.settings.secret_key, &hint, session_token).await?;
    Some(redirect(&url))
}

/// Whether the browser's state cookie holds `state`, compared in constant time.
fn same(cookie: Option<&str>, state: &str) -> bool {
    let Some(cookie) = cookie else { return false };
    if cookie.is_empty() || cookie.len() != state.len() {
        return false;
    }
    cookie.bytes().zip(state.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_state_matches_only_the_same_cookie() {
        assert!(super::same(Some("abc"), "abc"));
        assert!(!super::same(Some("abd"), "abc"));
        assert!(!super::same(Some(""), ""));
        assert!(!super::same(None, "abc"));
        assert!(!super::same(Some("abcd"), "abc"));
    }
}
