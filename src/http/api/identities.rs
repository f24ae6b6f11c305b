//! Administration of sign-in: the identities linked to each account, and the password policy.

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::account::NoContent;
use super::body_error::BodyApiError;
use super::schemas::*;
use super::{ApiTags, state};
use crate::domain::identity::PasswordSignIn;
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services::{self, identities::LinkInput};

pub struct IdentitiesApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl IdentitiesApi {
    /// The identities an account signs in with.
    #[oai(path = "/users/:id/identities", method = "get")]
    async fn identities(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
    ) -> Result<Json<Vec<Identity>>, ApiError> {
        auth.actor().require_admin()?;
        let list = services::identities::list_for_user(&state(req).db, auth.actor(), id.0).await?;
        Ok(Json(list.into_iter().map(Into::into).collect()))
    }

    /// Links an identity to an account (moving it from another account if linked there).
    #[oai(path = "/users/:id/identities", method = "post")]
    async fn link(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<LinkIdentity>,
    ) -> Result<Json<Identity>, BodyApiError> {
        let provider: crate::domain::identity::IdentityProvider = body.0.provider.into();
        let input = LinkInput {
            provider: provider.as_str().into(),
            issuer: body.0.issuer.into(),
            subject: body.0.subject.into(),
        };
        let row = services::identities::link(&state(req).db, auth.actor(), id.0, &input).await?;
        Ok(Json(row.into()))
    }

    /// Unlinks an identity; refused (409) when it is the account's only way to sign in.
    #[oai(path = "/users/:id/identities/:identity", method = "delete")]
    async fn unlink(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        identity: Path<i64>,
    ) -> Result<NoContent, ApiError> {
        auth.actor().require_admin()?;
        let db = &state(req).db;
        let linked = services::identities::list_for_user(db, auth.actor(), id.0).await?;
        if !linked.iter().any(|i| i.id == identity.0) {
            return Err(services::ServiceError::NotFound.into());
        }
        services::identities::unlink(db, auth.actor(), identity.0).await?;
        Ok(NoContent::Done)
    }

    /// Who may sign in with a proxdesk password.
    #[oai(path = "/admin/sign-in-policy", method = "get")]
    async fn policy(&self, req: &HttpRequest, auth: ApiAuth) -> Result<Json<SignInPolicy>, ApiError> {
        auth.actor().require_admin()?;
        Ok(Json(match services::sign_in_policy::get(&state(req).db).await? {
            PasswordSignIn::Everyone => {
                SignInPolicy { password_sign_in: PasswordSignInMode::Everyone, break_glass_admin: None }
            }
            PasswordSignIn::BreakGlassOnly { admin } => SignInPolicy {
                password_sign_in: PasswordSignInMode::BreakGlassOnly,
                break_glass_admin: Some(Text(admin)),
            },
        }))
    }

    /// Sets the policy; turning passwords off ends everyone else's password sessions.
    #[oai(path = "/admin/sign-in-policy", method = "put")]
    async fn set_policy(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        body: Json<SignInPolicy>,
    ) -> Result<NoContent, BodyApiError> {
        let policy = match body.0.password_sign_in {
            PasswordSignInMode::Everyone => PasswordSignIn::Everyone,
            PasswordSignInMode::BreakGlassOnly => {
                PasswordSignIn::BreakGlassOnly { admin: Text::opt(body.0.break_glass_admin).unwrap_or_default() }
            }
        };
        services::sign_in_policy::set(&state(req).db, auth.actor(), policy).await?;
        Ok(NoContent::Done)
    }
}
