//! `/requests`.

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::body_error::BodyApiError;
use super::schemas::*;
use super::{ApiTags, state};
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services::{self, ServiceError, requests::RequestFilter};

pub struct RequestsApi;

type R<T> = Result<Json<T>, ApiError>;
type B<T> = Result<Json<T>, BodyApiError>;

async fn detail(req: &HttpRequest, auth: &ApiAuth, id: i64) -> Result<RequestDetail, ServiceError> {
    let r = services::requests::get(&state(req).db, auth.actor(), id).await?;
    decided(req, auth, r).await
}

/// The detail of a request the caller just decided: an approver's stage may have passed with their
/// decision, and with it their reading of the request, but the answer still shows what they did.
async fn decided(
    req: &HttpRequest,
    auth: &ApiAuth,
    r: entities::request::Model,
) -> Result<RequestDetail, ServiceError> {
    let db = &state(req).db;
    let id = r.id;
    let row = services::requests::with_names(db, vec![r]).await?.pop().expect("one row in, one out");
    let timeline = services::audit::timeline_for(db, auth.actor(), "request", id).await?;
    Ok(RequestDetail { request: row.into(), timeline: timeline.into_iter().map(Into::into).collect() })
}

#[OpenApi(tag = "ApiTags::Requests")]
impl RequestsApi {
    /// List requests: your own, or (admins) everyone's. Newest first unless `oldest_first`.
    #[oai(path = "/requests", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        status: Query<Option<Status>>,
        user_id: Query<Option<i64>>,
        template_id: Query<Option<i64>>,
        /// Only the requests this automatic approval rule approved.
        approved_by_rule: Query<Option<i64>>,
        q: Query<Option<String>>,
        #[oai(default)] oldest_first: Query<bool>,
        cursor: Query<Option<i64>>,
        /// Page size, 1–100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u64>>,
    ) -> R<RequestPage> {
        let filter = RequestFilter {
            status: status.0.map(Into::into),
            user_id: user_id.0,
            template_id: template_id.0,
            approved_by_rule: approved_by_rule.0,
            search: q.0,
            oldest_first: oldest_first.0,
            cursor: cursor.0,
            limit: limit.0,
        };
        let page = services::requests::list(&state(req).db, auth.actor(), filter).await?;
        Ok(Json(RequestPage { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }))
    }

    /// Ask for a machine.
    #[oai(path = "/requests", method = "post")]
    async fn create(&self, req: &HttpRequest, auth: ApiAuth, body: Json<CreateRequest>) -> B<RequestDetail> {
        let b = body.0;
        let input = services::requests::NewRequest {
            template_id: b.template_id,
            hostname: b.hostname.into(),
            cores: b.cores,
            memory_mib: b.memory_mib,
            disk_gib: b.disk_gib,
            purpose: b.purpose.into(),
            ssh_public_key: Text::opt(b.ssh_public_key),
            storage: Text::opt(b.storage),
            bridge: Text::opt(b.bridge),
            iso: Text::opt(b.iso),
        };
        let r = services::requests::create(&state(req).db, auth.actor(), input).await?;
        Ok(Json(detail(req, &auth, r.id).await?))
    }

    /// One request with its timeline.
    #[oai(path = "/requests/:id", method = "get")]
    async fn get(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<RequestDetail> {
        Ok(Json(detail(req, &auth, id.0).await?))
    }

    /// Withdraw a pending request.
    #[oai(path = "/requests/:id/cancel", method = "post")]
    async fn cancel(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<RequestDetail> {
        services::requests::cancel(&state(req).db, auth.actor(), id.0).await?;
        Ok(Json(detail(req, &auth, id.0).await?))
    }

    /// Approve a pending request (admin), optionally adjusting its resources; provisioning starts. For an
    /// entry with approval stages, members of the current stage's group approve too (no adjustments): before
    /// the last stage the request moves on to the next and stays pending; 409 when someone decided first or
    /// you approved an earlier stage.
    #[oai(path = "/requests/:id/approve", method = "post")]
    async fn approve(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<OrNull<ApproveBody>>,
    ) -> B<RequestDetail> {
        let b = body.0.into_option().unwrap_or_default();
        let adj = services::requests::Adjustments { cores: b.cores, memory_mib: b.memory_mib, disk_gib: b.disk_gib };
        let r = services::requests::approve(&state(req).db, auth.actor(), id.0, adj).await?;
        Ok(Json(decided(req, &auth, r).await?))
    }

    /// Reject a pending request (admin, or a member of the current approval stage's group) with a reason the
    /// requester sees; it ends the request at any stage.
    #[oai(path = "/requests/:id/reject", method = "post")]
    async fn reject(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<RejectBody>,
    ) -> B<RequestDetail> {
        let r = services::requests::reject(&state(req).db, auth.actor(), id.0, &body.0.reason).await?;
        Ok(Json(decided(req, &auth, r).await?))
    }

    /// Send a failed request back to provisioning (admin).
    #[oai(path = "/requests/:id/retry", method = "post")]
    async fn retry(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<RequestDetail> {
        services::requests::retry(&state(req).db, auth.actor(), id.0).await?;
        Ok(Json(detail(req, &auth, id.0).await?))
    }

    /// Approve or reject several requests (admin); each succeeds or fails on its own.
    #[oai(path = "/requests/bulk", method = "post")]
    async fn bulk(&self, req: &HttpRequest, auth: ApiAuth, body: Json<BulkBody>) -> B<BulkResult> {
        let actor = auth.actor();
        actor.require_admin()?;
        let db = &state(req).db;
        let mut results = Vec::with_capacity(body.0.ids.len());
        for id in body.0.ids.iter().copied().take(500) {
            let res = match body.0.action {
                BulkAction::Approve => services::requests::approve(db, actor, id, Default::default()).await,
                BulkAction::Reject => {
                    services::requests::reject(db, actor, id, body.0.reason.as_deref().unwrap_or("")).await
                }
            };
            let error = res.err().map(|e| match ApiError::from(e) {
                ApiError::BadRequest(p)
                | ApiError::Unauthorized(p)
                | ApiError::Forbidden(p)
                | ApiError::NotFound(p)
                | ApiError::Conflict(p)
                | ApiError::Invalid(p)
                | ApiError::TooManyRequests(p, _)
                | ApiError::Internal(p)
                | ApiError::Unavailable(p) => p.0.kind,
            });
            results.push(BulkItem { id, ok: error.is_none(), error });
        }
        Ok(Json(BulkResult { results }))
    }
}
