//! Every request's id and metrics: an id (fresh, or a trusted proxy's `X-Request-Id`) in a tracing span
//! around the request, answered in `X-Request-Id` and stored with the jobs the request enqueues; and
//! the request counted by method, route pattern and status, with its latency.

use std::sync::Arc;
use std::time::Instant;

use poem::PathPattern;
use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use crate::domain::proxies::TrustedProxies;
use crate::metrics;

/// The header carrying the request id, both ways.
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";

/// The route label of requests no route matched (404s of unknown paths), so scanners cannot grow the
/// label set.
pub const UNMATCHED: &str = "unmatched";

/// The middleware: wrap the whole application with `.around(move |ep, req| observe(ep, req, proxies.clone()))`.
pub async fn observe<E: Endpoint>(next: Arc<E>, req: Request, proxies: TrustedProxies) -> poem::Result<Response> {
    let started = Instant::now();
    let id = request_id(&req, &proxies);
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", req_id = %id, method = %method);
    let call = async move { next.call(req).await.map(IntoResponse::into_response) };
    let result = jobs::with_request_id(id.clone(), call.instrument(span)).await;
    let (status, pattern) = match &result {
        Ok(r) => (r.status(), r.data::<PathPattern>().map(|p| p.0.to_string())),
        Err(e) => (e.status(), e.data::<PathPattern>().map(|p| p.0.to_string())),
    };
    // The pages are nested at `/`: a path none of them matches carries only that nest's empty prefix.
    let route = match pattern.filter(|p| !p.is_empty()) {
        Some(p) => p,
        None if status == poem::http::StatusCode::NOT_FOUND => UNMATCHED.to_owned(),
        None => metrics::paths::http_path(&path),
    };
    metrics::http_request(&method, &route, status.as_u16(), started.elapsed());
    let mut resp = result.unwrap_or_else(|e| e.into_response());
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    Ok(resp)
}

/// The request's id: a trusted proxy's `X-Request-Id` when it is short and plain, else a fresh one.
fn request_id(req: &Request, proxies: &TrustedProxies) -> String {
    let from_proxy = req.remote_addr().as_socket_addr().is_some_and(|a| proxies.trusts(a.ip()));
    match req.header(REQUEST_ID_HEADER) {
        Some(given) if from_proxy && acceptable(given) => given.to_owned(),
        _ => format!("{:032x}", rand::random::<u128>()),
    }
}

/// 1 to 64 letters, digits, `-`, `_`, `.` or `:`: safe in a header, a log line and a column.
pub fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_short_plain_request_ids_are_acceptable() {
        assert!(super::acceptable("edge-7f3a.1:2_b"));
        assert!(super::acceptable(&"a".repeat(64)));
        for bad in ["", "a b", "a\"b", "a\nb", "é", &"a".repeat(65)] {
            assert!(!super::acceptable(bad), "{bad:?}");
        }
    }
}
