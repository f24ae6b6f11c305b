//! `/machines/bulk`: one action on many machines, each carried out on its own; the run answers each
//! machine's result as it settles. Owners act on their machines, admins on any.

use poem::Request as HttpRequest;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::body_error::BodyApiError;
use super::schemas::*;
use super::{ApiTags, state};
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services;

pub struct BulkApi;

#[derive(ApiResponse)]
pub enum BulkStarted {
    /// The run started: each machine's job runs in the background; read the run to follow it.
    #[oai(status = 202)]
    Accepted(Json<BulkRun>),
}

#[OpenApi(tag = "ApiTags::Machines")]
impl BulkApi {
    /// Start, shut down, power off, reboot or delete many machines at once. A machine that is not
    /// yours (or does not exist) is refused as `not_found` in the run, never looked at further; one
    /// machine's refusal or failure never stops the others.
    #[oai(path = "/machines/bulk", method = "post")]
    async fn start(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        body: Json<NewBulkRun>,
    ) -> Result<BulkStarted, BodyApiError> {
        let db = &state(req).db;
        let id = services::bulk::start(db, auth.actor(), body.0.action.into(), &body.0.machine_ids).await?;
        Ok(BulkStarted::Accepted(Json(services::bulk::get(db, auth.actor(), id).await?.into())))
    }

    /// A bulk run: each machine's state and, for a refusal or failure, why. Yours, or any for admins.
    #[oai(path = "/machines/bulk/:id", method = "get")]
    async fn get(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<Json<BulkRun>, ApiError> {
        Ok(Json(services::bulk::get(&state(req).db, auth.actor(), id.0).await?.into()))
    }
}
