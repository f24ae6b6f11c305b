//! Answers in PVE's wire format (pve-api.md §1, §3): `{"data":…}`, error bodies, reason phrases.

use std::collections::BTreeMap;

use poem::http::StatusCode;
use poem::{Body, Response};
use serde_json::{Value, json};

/// A handler error: status, message (its first line becomes the reason phrase) and parameter errors.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub errors: Option<BTreeMap<String, String>>,
    /// Auth-layer 401s have an empty body (pve-api.md §2.3).
    pub empty_body: bool,
}

impl ApiError {
    /// 500 with `message` (how PVE reports most handler errors).
    pub fn internal(message: impl Into<String>) -> Self {
        Self { status: 500, message: message.into(), errors: None, empty_body: false }
    }
    /// 400 `Parameter verification failed.` with per-parameter texts.
    pub fn params(errors: BTreeMap<String, String>) -> Self {
        Self { status: 400, message: "Parameter verification failed.".into(), errors: Some(errors), empty_body: false }
    }
    /// 400 for one parameter.
    pub fn param(key: &str, text: impl Into<String>) -> Self {
        Self::params(BTreeMap::from([(key.to_owned(), text.into())]))
    }
    /// 403 `Permission check failed (<path>, <privs>)`.
    pub fn forbidden(path: &str, privs: &str) -> Self {
        Self {
            status: 403,
            message: format!("Permission check failed ({path}, {privs})"),
            errors: None,
            empty_body: false,
        }
    }
    /// Any status with a message.
    pub fn status(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), errors: None, empty_body: false }
    }
    /// An auth-layer 401 with an empty body.
    pub fn auth_layer(reason: &str) -> Self {
        Self { status: 401, message: reason.into(), errors: None, empty_body: true }
    }
}

fn base(status: StatusCode) -> poem::ResponseBuilder {
    Response::builder()
        .status(status)
        .header("Server", "pve-api-daemon/3.0")
        .header("Cache-Control", "max-age=0")
        .header("Pragma", "no-cache")
}

/// `200 {"data": data}`.
pub fn ok(data: Value) -> Response {
    ok_with(json!({ "data": data }))
}

/// `200` with a complete envelope (for `total`).
pub fn ok_with(envelope: Value) -> Response {
    base(StatusCode::OK)
        .header("Content-Type", "application/json;charset=UTF-8")
        .body(Body::from_string(envelope.to_string()))
}

/// The error answer; the connection is closed after it, as pveproxy does for any status ≥ 400.
pub fn error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = e.message.lines().next().unwrap_or_default().to_owned();
    let mut builder = base(status).header("Connection", "close");
    let body = if e.empty_body || e.status >= 595 {
        Body::empty()
    } else {
        builder = builder.header("Content-Type", "application/json;charset=UTF-8");
        // 501 texts carry no trailing newline; handler errors do (pve-api.md §3).
        let message = if e.status == 501 { e.message.clone() } else { format!("{}\n", e.message) };
        let mut v = json!({ "data": null, "message": message });
        if let Some(errors) = &e.errors {
            v["errors"] = json!(errors);
        }
        Body::from_string(v.to_string())
    };
    let mut resp = builder.body(body);
    if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.into_bytes()) {
        resp.extensions_mut().insert(phrase);
    }
    resp
}
