//! `/admin/approval-rules`: automatic approval rules (admins only; anyone else 403).

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::account::NoContent;
use super::body_error::BodyApiError;
use super::schemas::*;
use super::{ApiTags, state};
use crate::domain::roles::Role;
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::services::{self, approval_rules::RuleInput};

pub struct ApprovalRulesApi;

type R<T> = Result<Json<T>, ApiError>;
type B<T> = Result<Json<T>, BodyApiError>;

fn input(b: ApprovalRuleBody) -> RuleInput {
    RuleInput {
        name: b.name.into(),
        enabled: b.enabled.unwrap_or(true),
        template_id: b.template_id,
        role: b.role.map(|r| match r {
            RoleName::Admin => Role::Admin,
            RoleName::User => Role::User,
        }),
        max_cores: b.max_cores,
        max_memory_mib: b.max_memory_mib,
        max_disk_gib: b.max_disk_gib,
        max_machines: b.max_machines,
        user_ids: b.user_ids.unwrap_or_default(),
        group_ids: b.group_ids.unwrap_or_default(),
    }
}

#[OpenApi(tag = "ApiTags::Admin")]
impl ApprovalRulesApi {
    /// Every automatic approval rule, in the order they are tried.
    #[oai(path = "/admin/approval-rules", method = "get")]
    async fn list(&self, req: &HttpRequest, auth: ApiAuth) -> R<Vec<ApprovalRule>> {
        let rules = services::approval_rules::list(&state(req).db, auth.actor()).await?;
        Ok(Json(rules.into_iter().map(Into::into).collect()))
    }

    /// Add a rule; it covers requests made from now on. 422 for an unknown entry or user, a limit out
    /// of range or a name already taken.
    #[oai(path = "/admin/approval-rules", method = "post")]
    async fn create(&self, req: &HttpRequest, auth: ApiAuth, body: Json<ApprovalRuleBody>) -> B<ApprovalRule> {
        let rule = services::approval_rules::create(&state(req).db, auth.actor(), input(body.0)).await?;
        Ok(Json(rule.into()))
    }

    /// One rule.
    #[oai(path = "/admin/approval-rules/:id", method = "get")]
    async fn get(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<ApprovalRule> {
        Ok(Json(services::approval_rules::get(&state(req).db, auth.actor(), id.0).await?.into()))
    }

    /// Replace a rule's content. Requests it approved before keep their approval.
    #[oai(path = "/admin/approval-rules/:id", method = "put")]
    async fn update(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<ApprovalRuleBody>,
    ) -> B<ApprovalRule> {
        let rule = services::approval_rules::update(&state(req).db, auth.actor(), id.0, input(body.0)).await?;
        Ok(Json(rule.into()))
    }

    /// Delete a rule. The requests it approved keep naming it in their timelines.
    #[oai(path = "/admin/approval-rules/:id", method = "delete")]
    async fn delete(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        services::approval_rules::delete(&state(req).db, auth.actor(), id.0).await?;
        Ok(NoContent::Done)
    }
}
