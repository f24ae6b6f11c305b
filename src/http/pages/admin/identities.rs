//! The outside identities an account signs in with, on the user's page: linking one (before its first
//! sign-in, or moving it from another account of the same person) and unlinking one (confirmed).

use minijinja::{Value, context};
use poem::web::Path;
use poem::{Response, handler};

use super::users::{Refill, user_page};
use crate::domain::identity::IdentityProvider;
use crate::http::pages::ctx::{Ctx, Form, redirect, respond};
use crate::services::identities::LinkInput;
use crate::services::{self, ServiceError};

/// The identities as the user page lists them.
pub(super) fn views(list: &[entities::identity::Model]) -> Vec<Value> {
    list.iter()
        .map(|i| {
            context! {
                id => i.id, provider => &i.provider, issuer => &i.issuer, subject => &i.subject, email => &i.email,
                email_verified => i.email_verified, display_name => &i.display_name,
                created_at => i.created_at.to_rfc3339(), last_sign_in_at => i.last_sign_in_at.map(|t| t.to_rfc3339()),
            }
        })
        .collect()
}

/// The providers the link form offers, in the visitor's language.
pub(super) fn provider_options(ctx: &Ctx) -> Vec<Value> {
    IdentityProvider::ALL
        .iter()
        .map(|p| context! { value => p.as_str(), text => ctx.t(&format!("identity.provider.{}", p.as_str())) })
        .collect()
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn link(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let input = LinkInput {
                provider: form.get("provider").to_owned(),
                issuer: form.get("issuer").to_owned(),
                subject: form.get("subject").to_owned(),
            };
            match services::identities::link(&ctx.state.db, admin, id, &input).await {
                Ok(_) => Ok(redirect(&format!("/admin/users/{id}?done=identity_linked"))),
                Err(ServiceError::Invalid(errors)) => {
                    user_page(&ctx, id, None, None, Refill::Link(form.values(), errors)).await
                }
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn unlink(ctx: Ctx, Path((user_id, identity_id)): Path<(i64, i64)>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let page = format!("/admin/users/{user_id}");
            if !form.confirmed() {
                let question = ctx.t("identity.unlink_confirm");
                let action = format!("{page}/identities/{identity_id}/unlink");
                return Ok(ctx.confirm_page(&question, &action, &form, &page));
            }
            match services::identities::unlink(&ctx.state.db, admin, identity_id).await {
                Ok(()) => Ok(redirect(&format!("{page}?done=identity_unlinked"))),
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}
