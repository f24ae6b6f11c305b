//! Signing in through the OpenID Connect provider: the redirect there, and the way back.

use poem::{Response, handler};

use super::super::ctx::Ctx;

/// Starts the authorization code flow: redirects to the provider.
#[handler]
pub async fn begin(ctx: Ctx) -> Response {
    ctx.service_error(&crate::services::ServiceError::NotFound)
}

/// The provider sends the browser back here with `code` and `state`.
#[handler]
pub async fn callback(ctx: Ctx) -> Response {
    ctx.service_error(&crate::services::ServiceError::NotFound)
}
