//! `/admin/groups` (admin): groups of users that catalog entries' approval stages name; and
//! `/approvals`: the requests waiting for a group the caller is in.

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::account::NoContent;
use super::body_error::BodyApiError;
use super::schemas::*;
use super::{ApiTags, state};
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services::{self, groups::GroupInput};

pub struct GroupsApi;

type R<T> = Result<Json<T>, ApiError>;
type B<T> = Result<Json<T>, BodyApiError>;

fn input(b: GroupBody) -> GroupInput {
    GroupInput { name: b.name.into(), description: b.description.into() }
}

#[OpenApi]
impl GroupsApi {
    /// Every group, with its members and the catalog entries whose stages name it.
    #[oai(path = "/admin/groups", method = "get", tag = "ApiTags::Admin")]
    async fn list(&self, req: &HttpRequest, auth: ApiAuth) -> R<Vec<Group>> {
        let list = services::groups::list(&state(req).db, auth.actor()).await?;
        Ok(Json(list.into_iter().map(Into::into).collect()))
    }

    /// Add a group; its name must be free (422 otherwise).
    #[oai(path = "/admin/groups", method = "post", tag = "ApiTags::Admin")]
    async fn create(&self, req: &HttpRequest, auth: ApiAuth, body: Json<GroupBody>) -> B<Group> {
        let db = &state(req).db;
        let g = services::groups::create(db, auth.actor(), input(body.0)).await?;
        Ok(Json(services::groups::get(db, auth.actor(), g.id).await?.into()))
    }

    /// One group.
    #[oai(path = "/admin/groups/:id", method = "get", tag = "ApiTags::Admin")]
    async fn get(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<Group> {
        Ok(Json(services::groups::get(&state(req).db, auth.actor(), id.0).await?.into()))
    }

    /// Rename or re-describe a group.
    #[oai(path = "/admin/groups/:id", method = "put", tag = "ApiTags::Admin")]
    async fn update(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>, body: Json<GroupBody>) -> B<Group> {
        let db = &state(req).db;
        services::groups::update(db, auth.actor(), id.0, input(body.0)).await?;
        Ok(Json(services::groups::get(db, auth.actor(), id.0).await?.into()))
    }

    /// Delete a group; 409 while a catalog entry's approval stage names it.
    #[oai(path = "/admin/groups/:id", method = "delete", tag = "ApiTags::Admin")]
    async fn delete(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        services::groups::delete(&state(req).db, auth.actor(), id.0).await?;
        Ok(NoContent::Done)
    }

    /// Add an account to a group (adding a member again changes nothing).
    #[oai(path = "/admin/groups/:id/members/:user_id", method = "put", tag = "ApiTags::Admin")]
    async fn add_member(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        user_id: Path<i64>,
    ) -> Result<NoContent, ApiError> {
        services::groups::add_member(&state(req).db, auth.actor(), id.0, user_id.0).await?;
        Ok(NoContent::Done)
    }

    /// Remove an account from a group; 404 when it is not a member.
    #[oai(path = "/admin/groups/:id/members/:user_id", method = "delete", tag = "ApiTags::Admin")]
    async fn remove_member(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        user_id: Path<i64>,
    ) -> Result<NoContent, ApiError> {
        services::groups::remove_member(&state(req).db, auth.actor(), id.0, user_id.0).await?;
        Ok(NoContent::Done)
    }

    /// The pending requests waiting at an approval stage of a group you are in, oldest first (not your
    /// own, nor ones you approved at an earlier stage). Each may be read, approved or rejected by you.
    #[oai(path = "/approvals", method = "get", tag = "ApiTags::Requests")]
    async fn approvals(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        cursor: Query<Option<i64>>,
        /// Page size, 1–100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u64>>,
    ) -> R<RequestPage> {
        let page = services::requests::stages::awaiting(&state(req).db, auth.actor(), cursor.0, limit.0).await?;
        Ok(Json(RequestPage { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }))
    }
}
