//! The second step of a Proxmox VE sign-in whose account has a second factor (TOTP or a recovery key).

use poem::{Response, handler};

use super::super::ctx::{Ctx, Form};
use crate::secrets::Secret;

/// Shows the code form for the half-done sign-in `pending`.
pub fn ask(ctx: &Ctx, _pending: &Secret<String>, _next: &str, _error: Option<String>) -> Response {
    ctx.service_error(&crate::services::ServiceError::NotFound)
}

#[handler]
pub async fn submit(ctx: Ctx, _form: Form) -> Response {
    ctx.service_error(&crate::services::ServiceError::NotFound)
}
