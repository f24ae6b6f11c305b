//! `/machines/{id}/lease`: the owner extends a machine's lease within its catalog entry's policy; an
//! admin beyond it, or to no expiry. Another user's machine is 404.

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::body_error::BodyApiError;
use super::schemas::*;
use super::{ApiTags, state};
use crate::domain::FieldError;
use crate::domain::lease::LeaseChange;
use crate::http::auth::ApiAuth;
use crate::services::{self, ServiceError};

pub struct LeasesApi;

#[OpenApi(tag = "ApiTags::Machines")]
impl LeasesApi {
    /// Set a machine's lease to end `days` from now (the owner: 1 to the catalog entry's maximum; an
    /// admin: up to 3650), or lift its expiry (`no_expiry`, admins only: 403 for anyone else). The
    /// warnings come again before the new expiry. A machine stopped at its expiry can be extended until
    /// its grace period ends (it stays stopped until started); 409 once its deletion began. 422 for a
    /// number of days outside the policy (`max` in the problem's entry).
    #[oai(path = "/machines/:id/lease", method = "put")]
    async fn set_lease(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<LeaseBody>,
    ) -> Result<Json<Machine>, BodyApiError> {
        let st = state(req);
        let change = match (body.0.no_expiry, body.0.days) {
            (Some(true), _) => LeaseChange::NoExpiry,
            (_, Some(days)) => LeaseChange::Days(days),
            _ => return Err(ServiceError::from(FieldError::new("days", "error.required")).into()),
        };
        let now = chrono::Utc::now();
        let m = services::leases::extend(&st.db, &st.leases, auth.actor(), id.0, change, now).await?;
        Ok(Json(m.into()))
    }
}
