//! The errors of operations that take a request body: every `ApiError`, plus the two answers the
//! body itself can draw before a handler runs — 413 (larger than `body_limit::JSON_LIMIT`, from the
//! body-limit middleware) and 415 (not `application/json`, from poem-openapi) — both as problem+json.

use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;

use crate::http::errors::{ApiError, Problem, ProblemJson};
use crate::services::ServiceError;

/// `ApiError` for operations with a body; see the module.
#[derive(Debug)]
pub struct BodyApiError(pub ApiError);

impl From<ServiceError> for BodyApiError {
    fn from(e: ServiceError) -> Self {
        BodyApiError(e.into())
    }
}

impl From<ApiError> for BodyApiError {
    fn from(e: ApiError) -> Self {
        BodyApiError(e)
    }
}

impl IntoResponse for BodyApiError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl From<BodyApiError> for poem::Error {
    fn from(e: BodyApiError) -> Self {
        poem::Error::from_response(e.into_response())
    }
}

fn problem(status: u16, description: &'static str) -> MetaResponse {
    MetaResponse {
        description,
        status: Some(status),
        status_range: None,
        content: vec![MetaMediaType { content_type: "application/problem+json", schema: Problem::schema_ref() }],
        headers: vec![],
    }
}

impl ApiResponse for BodyApiError {
    fn meta() -> MetaResponses {
        let mut meta = ApiError::meta();
        meta.responses.push(problem(413, "The request body is larger than the server takes (1 MiB)."));
        meta.responses.push(problem(415, "The request body is not `application/json`."));
        meta.responses.sort_by_key(|r| r.status);
        meta
    }

    fn register(registry: &mut Registry) {
        ApiError::register(registry);
        <ProblemJson as ApiResponse>::register(registry);
    }
}
