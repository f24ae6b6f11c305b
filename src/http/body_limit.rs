//! Bounded request bodies: a form is small, a JSON document a little larger, and nothing proxdesk takes
//! is an upload. A body over its bound (declared, or as it streams in without a length) is refused with
//! 413 before a handler sees it, so no request can grow the server's memory at will.

use poem::error::ReadBodyError;
use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

/// Largest form (pages): the longest form, a request with its SSH key and purpose, is a few KiB.
pub const FORM_LIMIT: usize = 64 * 1024;
/// Largest JSON document (`/api/`): a bulk run of 500 machines is about 5 KiB.
pub const JSON_LIMIT: usize = 1024 * 1024;

/// The middleware; see the module.
pub struct BodyLimit;

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint { inner }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Response> {
        if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let api = req.uri().path().starts_with("/api/");
        let limit = if api { JSON_LIMIT } else { FORM_LIMIT };
        let declared =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Ok(too_large(api, limit));
        }
        match req.take_body().into_bytes_limit(limit).await {
            Ok(bytes) => {
                req.set_body(bytes);
                self.inner.call(req).await.map(IntoResponse::into_response)
            }
            Err(ReadBodyError::PayloadTooLarge) => Ok(too_large(api, limit)),
            Err(e) => Err(e.into()),
        }
    }
}

/// 413: a problem document for the API, a short page otherwise.
fn too_large(api: bool, limit: usize) -> Response {
    let detail = format!("the request body is larger than {} KiB", limit / 1024);
    let builder = Response::builder().status(StatusCode::PAYLOAD_TOO_LARGE);
    if api {
        let problem = serde_json::json!({
            "type": "/problems/payload-too-large",
            "title": "Payload too large",
            "status": 413,
            "detail": detail,
        });
        builder.content_type("application/problem+json").body(problem.to_string())
    } else {
        builder.content_type("text/plain; charset=utf-8").body(format!("Too large: {detail}. Go back and shorten it."))
    }
}
