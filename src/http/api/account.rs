//! `/me` and `/tokens`.

use poem::Request as HttpRequest;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::body_error::BodyApiError;
use super::schemas::*;
use super::{ApiTags, state};
use crate::domain::roles::Role;
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::secrets::Secret;
use crate::services::{self, Actor};

pub struct AccountApi;

type R<T> = Result<Json<T>, ApiError>;
type B<T> = Result<Json<T>, BodyApiError>;

#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
    /// Accepted; the work continues in the background.
    #[oai(status = 202)]
    Accepted,
}

/// An interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum LanguageName {
    En,
    Fr,
    It,
}

impl LanguageName {
    fn as_str(self) -> &'static str {
        match self {
            LanguageName::En => "en",
            LanguageName::Fr => "fr",
            LanguageName::It => "it",
        }
    }
}

#[derive(Debug, poem_openapi::Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Language {
    /// Null to follow the browser.
    #[oai(nullable)]
    pub language: Option<LanguageName>,
}

pub fn me(a: &Actor) -> Me {
    let role = if a.role == Role::Admin { RoleName::Admin } else { RoleName::User };
    Me { id: a.id, username: a.username.clone(), role, language: a.language.clone() }
}

#[OpenApi(tag = "ApiTags::Account")]
impl AccountApi {
    /// Who you are.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, auth: ApiAuth) -> R<Me> {
        Ok(Json(me(auth.actor())))
    }

    /// Change your password.
    #[oai(path = "/me/password", method = "put")]
    async fn password(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        body: Json<ChangePassword>,
    ) -> Result<NoContent, BodyApiError> {
        let b = body.0;
        // Signed in by cookie: that session stays; by token: every session ends.
        let session = match &auth {
            ApiAuth::Cookie(_) => req.cookie().get(crate::http::auth::SESSION_COOKIE).map(|c| c.value_str().to_owned()),
            ApiAuth::Token(_) => None,
        };
        let client_addr = crate::http::auth::client_addr(req);
        let origin = services::users::ChangeOrigin { client_addr: &client_addr, session: session.as_deref() };
        services::users::change_own_password(
            &state(req).db,
            auth.actor(),
            &Secret::new(b.current_password.into()),
            &Secret::new(b.new_password.into()),
            origin,
        )
        .await?;
        Ok(NoContent::Done)
    }

    /// Choose your interface language.
    #[oai(path = "/me/language", method = "put")]
    async fn language(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        body: Json<Language>,
    ) -> Result<NoContent, BodyApiError> {
        services::users::set_language(&state(req).db, auth.actor(), body.0.language.map(LanguageName::as_str)).await?;
        Ok(NoContent::Done)
    }

    /// Your API tokens.
    #[oai(path = "/tokens", method = "get")]
    async fn tokens(&self, req: &HttpRequest, auth: ApiAuth) -> R<Vec<Token>> {
        let list = services::tokens::list(&state(req).db, auth.actor()).await?;
        Ok(Json(list.into_iter().map(Into::into).collect()))
    }

    /// Create an API token; its secret is in this answer only.
    #[oai(path = "/tokens", method = "post")]
    async fn create_token(&self, req: &HttpRequest, auth: ApiAuth, body: Json<CreateToken>) -> B<NewToken> {
        let actor = auth.actor();
        let (row, token) = services::tokens::create(&state(req).db, Some(actor), actor.id, &body.0.name).await?;
        Ok(Json(NewToken { token: token.expose().clone(), info: row.into() }))
    }

    /// Revoke one of your tokens.
    #[oai(path = "/tokens/:id", method = "delete")]
    async fn revoke_token(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        services::tokens::revoke(&state(req).db, auth.actor(), id.0).await?;
        Ok(NoContent::Done)
    }
}
