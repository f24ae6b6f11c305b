//! `/me/notifications` (each user's mail choices) and `/admin/webhooks` (admins only).

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::account::NoContent;
use super::body_error::BodyApiError;
use super::schemas::*;
use super::{ApiTags, state};
use crate::domain::notification::{EventKind, OptOuts};
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services::{self, Actor};

pub struct NotificationsApi;

async fn choices(req: &HttpRequest, actor: &Actor, off: OptOuts) -> Result<NotificationChoices, ApiError> {
    let st = state(req);
    let account = services::users::get(&st.db, actor, actor.id).await?;
    Ok(NotificationChoices {
        email: account.email.filter(|e| !e.trim().is_empty()),
        mail_configured: st.mail,
        enabled: EventKind::ALL.into_iter().filter(|k| off.wants(*k)).map(Into::into).collect(),
        disabled: off.0.into_iter().map(Into::into).collect(),
    })
}

#[OpenApi]
impl NotificationsApi {
    /// Your notification mails: the kinds you get and the ones you turned off.
    #[oai(path = "/me/notifications", method = "get", tag = "ApiTags::Account")]
    async fn get_choices(&self, req: &HttpRequest, auth: ApiAuth) -> Result<Json<NotificationChoices>, ApiError> {
        let off = services::notifications::prefs::opt_outs(&state(req).db, auth.actor()).await?;
        Ok(Json(choices(req, auth.actor(), off).await?))
    }

    /// Turn off the kinds of notification mail listed in `disabled`, and on every other kind.
    #[oai(path = "/me/notifications", method = "put", tag = "ApiTags::Account")]
    async fn set_choices(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        body: Json<SetNotificationChoices>,
    ) -> Result<Json<NotificationChoices>, BodyApiError> {
        let off: Vec<EventKind> = body.0.disabled.into_iter().map(Into::into).collect();
        let off = services::notifications::prefs::set_opt_outs(&state(req).db, auth.actor(), &off).await?;
        Ok(Json(choices(req, auth.actor(), off).await?))
    }

    /// Every webhook, with its latest delivery attempt.
    #[oai(path = "/admin/webhooks", method = "get", tag = "ApiTags::Admin")]
    async fn list_webhooks(&self, req: &HttpRequest, auth: ApiAuth) -> Result<Json<Vec<Webhook>>, ApiError> {
        let list = services::notifications::webhooks::list(&state(req).db, auth.actor()).await?;
        Ok(Json(list.into_iter().map(Into::into).collect()))
    }

    /// Add a webhook. Its signing secret is in this answer only; events are POSTed to `url` signed with
    /// it (see the README for the headers). 422 for a URL that is not http(s), or whose host is not among
    /// the configured `webhook_hosts`.
    #[oai(path = "/admin/webhooks", method = "post", tag = "ApiTags::Admin")]
    async fn create_webhook(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        body: Json<CreateWebhook>,
    ) -> Result<Json<NewWebhook>, BodyApiError> {
        let st = state(req);
        let events: Vec<EventKind> = body.0.events.unwrap_or_default().into_iter().map(Into::into).collect();
        let (row, secret) = services::notifications::webhooks::create(
            &st.db,
            &st.settings.secret_key,
            auth.actor(),
            &body.0.url,
            &events,
            &st.webhook_hosts,
        )
        .await?;
        Ok(Json(NewWebhook { secret: secret.expose().clone(), webhook: row.into() }))
    }

    /// Delete a webhook; it receives nothing more.
    #[oai(path = "/admin/webhooks/:id", method = "delete", tag = "ApiTags::Admin")]
    async fn delete_webhook(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        services::notifications::webhooks::delete(&state(req).db, auth.actor(), id.0).await?;
        Ok(NoContent::Done)
    }
}
