//! The second step of a Proxmox VE sign-in whose account has a second factor (TOTP or a recovery key).

use minijinja::context;
use poem::{Response, handler, http::StatusCode};

use super::super::ctx::{Ctx, Form};
use super::{Typed, page, refused, safe_next, signed_in};
use crate::secrets::Secret;
use crate::services::ServiceError;
use crate::services::sign_in::Outcome;

/// Shows the code form for the half-done sign-in `pending`; with `error`, after a wrong code (401).
pub fn ask(ctx: &Ctx, pending: &Secret<String>, next: &str, error: Option<String>) -> Response {
    let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    ctx.render_status(
        status,
        "auth/second_factor.html",
        context! { pending => pending.expose(), next => safe_next_or_empty(next), error => error },
    )
}

#[tracing::instrument(skip_all)]
#[handler]
pub async fn submit(ctx: Ctx, form: Form) -> Response {
    let pending = Secret::new(form.get("pending").to_owned());
    let code = Secret::new(form.get("code").to_owned());
    let next = safe_next_or_empty(form.get("next")).to_owned();
    let typed = Typed { username: "", method: "", next: &next };
    let Some(pve) = ctx.state.sign_in.pve.as_ref() else {
        return page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, Some(ctx.t("login.method_unknown")), typed).await;
    };
    let (db, key, hours) = (&ctx.state.db, &ctx.state.settings.secret_key, ctx.state.settings.session_hours);
    match pve.second_factor(db, key, &pending, &code, &ctx.client_addr, hours).await {
        Ok(Outcome::Signed(session)) => signed_in(&ctx, session, &next),
        Ok(Outcome::SecondFactor { pending }) => ask(&ctx, &pending, &next, Some(ctx.t("login.second_factor_wrong"))),
        // Expired, already used, or never issued: the sign-in starts again.
        Err(ServiceError::NotFound) => {
            page(&ctx, StatusCode::BAD_REQUEST, Some(ctx.t("login.second_factor_expired")), typed).await
        }
        Err(e) => refused(&ctx, &e, typed).await,
    }
}

/// `next` as the sign-in page keeps it: a local path, or empty (the landing page depends on who it is).
fn safe_next_or_empty(next: &str) -> &str {
    if next.is_empty() { "" } else { safe_next(next) }
}
