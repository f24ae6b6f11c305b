//! The one exhaustive mapping from service errors to HTTP: problem+json for the API, a status and a
//! message key for pages. 5xx bodies are opaque; their cause goes to the log.

use poem::{IntoResponse, Request, Response, http::StatusCode};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object, payload::Payload};

use crate::services::ServiceError;

/// RFC 9457 problem details, with field errors for validation failures.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `/problems/validation`.
    #[oai(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
    /// For `/problems/validation`: one entry per invalid field; absent otherwise.
    #[oai(default, skip_serializing_if_is_empty)]
    pub errors: Vec<ProblemField>,
}

/// One invalid input field.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ProblemField {
    pub field: String,
    /// Stable message key, e.g. `error.quota_left`.
    pub code: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: Option<String>) -> Self {
        Problem {
            kind: format!("/problems/{kind}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            errors: vec![],
        }
    }
}

/// A `Problem` sent as `application/problem+json`.
#[derive(Debug, Clone)]
pub struct ProblemJson(pub Problem);

impl Payload for ProblemJson {
    const CONTENT_TYPE: &'static str = "application/problem+json";

    fn schema_ref() -> MetaSchemaRef {
        Problem::schema_ref()
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

impl IntoResponse for ProblemJson {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Response::builder().status(status).content_type(Self::CONTENT_TYPE).body(self.0.to_json_string())
    }
}

impl ApiResponse for ProblemJson {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "A problem",
                status: None,
                status_range: None,
                content: vec![MetaMediaType { content_type: Self::CONTENT_TYPE, schema: Self::schema_ref() }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// Errors of API handlers, each with its status in the OpenAPI document.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed.
    #[oai(status = 400)]
    BadRequest(ProblemJson),
    /// No valid credentials.
    #[oai(status = 401)]
    Unauthorized(ProblemJson),
    /// Credentials are valid but the role does not allow this.
    #[oai(status = 403)]
    Forbidden(ProblemJson),
    /// No such resource (or not yours).
    #[oai(status = 404)]
    NotFound(ProblemJson),
    /// Not possible in the resource's current state, or lost a race.
    #[oai(status = 409)]
    Conflict(ProblemJson),
    /// Field-level validation errors.
    #[oai(status = 422)]
    Invalid(ProblemJson),
    /// Too many attempts (failed sign-ins) or a per-person cap reached (console sessions, console URLs):
    /// wait `Retry-After` seconds before the next one.
    #[oai(status = 429)]
    TooManyRequests(
        ProblemJson,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        i64,
    ),
    /// Something failed on proxdesk's side.
    #[oai(status = 500)]
    Internal(ProblemJson),
    /// A system proxdesk needs for this (Proxmox VE) did not answer; nothing was changed.
    #[oai(status = 503)]
    Unavailable(ProblemJson),
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use StatusCode as S;
        let p = |s, kind, title, detail| ProblemJson(Problem::new(s, kind, title, detail));
        match e {
            ServiceError::NotFound => ApiError::NotFound(p(S::NOT_FOUND, "not-found", "Not found", None)),
            ServiceError::Forbidden => ApiError::Forbidden(p(S::FORBIDDEN, "forbidden", "Forbidden", None)),
            ServiceError::Unauthenticated => {
                ApiError::Unauthorized(p(S::UNAUTHORIZED, "unauthorized", "Authentication required", None))
            }
            ServiceError::Invalid(errors) => {
                let mut problem = Problem::new(S::UNPROCESSABLE_ENTITY, "validation", "Invalid input", None);
                problem.errors = errors
                    .0
                    .iter()
                    .map(|e| ProblemField {
                        field: e.field.into(),
                        code: e.code.into(),
                        message: super::i18n::message("en", e.code, &e.params),
                    })
                    .collect();
                ApiError::Invalid(ProblemJson(problem))
            }
            ServiceError::ReservedName(e) => {
                let field = e.field_error("username");
                let mut problem = Problem::new(S::UNPROCESSABLE_ENTITY, "validation", "Invalid input", None);
                problem.errors = vec![ProblemField {
                    field: field.field.into(),
                    code: field.code.into(),
                    message: super::i18n::message("en", field.code, &field.params),
                }];
                ApiError::Invalid(ProblemJson(problem))
            }
            ServiceError::IllegalTransition(t) => ApiError::Conflict(p(
                S::CONFLICT,
                "illegal-transition",
                "Not allowed in this state",
                Some(t.to_string()),
            )),
            ServiceError::Conflict(msg) => ApiError::Conflict(p(S::CONFLICT, "conflict", "Conflict", Some(msg))),
            e @ ServiceError::MachineLost { .. } => {
                ApiError::Conflict(p(S::CONFLICT, "machine-lost", "The machine is lost", Some(e.to_string())))
            }
            ServiceError::GuestRefused(why) => {
                use crate::services::GuestRefusal as G;
                let (kind, title) = match &why {
                    G::NotRunning => ("machine-not-running", "The machine is not running"),
                    G::AlreadyRunning => ("machine-already-running", "The machine is already running"),
                    G::Locked(_) => ("machine-busy", "The machine is busy"),
                    G::VmOnly => ("vm-only", "Only virtual machines have this action"),
                    G::Other(_) => ("pve-refused", "Proxmox VE refused"),
                };
                ApiError::Conflict(p(S::CONFLICT, kind, title, Some(why.to_string())))
            }
            e @ ServiceError::SnapshotLimit { .. } => {
                ApiError::Conflict(p(S::CONFLICT, "snapshot-limit", "Snapshot limit reached", Some(e.to_string())))
            }
            ServiceError::AdoptRefused(why) => {
                use crate::services::adoption::AdoptRefusal as A;
                let (kind, title) = match &why {
                    A::Managed => ("guest-managed", "The guest is already a machine"),
                    A::Gone => ("guest-gone", "The guest no longer exists"),
                    A::Template => ("guest-template", "The guest is a template"),
                    A::Marked(_) => ("guest-marked", "The guest carries another machine's marker"),
                    A::Locked(_) => ("machine-busy", "The guest is busy"),
                    A::Changed => ("guest-changed", "The guest changed meanwhile"),
                    A::OverQuota(_) => ("over-quota", "The owner would be over their quota"),
                    A::Pve(_) => ("pve-refused", "Proxmox VE refused"),
                };
                ApiError::Conflict(p(S::CONFLICT, kind, title, Some(why.to_string())))
            }
            ServiceError::Throttled { retry_after_secs } => ApiError::TooManyRequests(
                p(
                    S::TOO_MANY_REQUESTS,
                    "throttled",
                    "Too many failed attempts",
                    Some(format!("try again in {retry_after_secs} s")),
                ),
                retry_after_secs,
            ),
            ServiceError::ConsoleCap(reached) => {
                use crate::domain::console_caps::CapReached as C;
                // A session frees its slot when someone closes it, so no wait is exact: 30 s is a
                // polite retry; URLs are counted per minute.
                let (kind, title, wait) = match reached {
                    C::Sessions { .. } => ("console-sessions-cap", "Console session cap reached", 30),
                    C::UrlsPerMinute { .. } => ("console-urls-cap", "Console URL cap reached", 60),
                };
                ApiError::TooManyRequests(p(S::TOO_MANY_REQUESTS, kind, title, Some(reached.to_string())), wait)
            }
            ServiceError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "dependency unavailable");
                ApiError::Unavailable(p(S::SERVICE_UNAVAILABLE, "unavailable", "Proxmox VE did not answer", Some(msg)))
            }
            e @ (ServiceError::Db(_) | ServiceError::Jobs(_) | ServiceError::Internal(_)) => {
                tracing::error!(error = ?e, "request failed");
                ApiError::Internal(p(S::INTERNAL_SERVER_ERROR, "internal", "Internal error", None))
            }
        }
    }
}

/// Turns every error that escapes the API (bad JSON, missing auth, unknown route) into problem+json.
pub fn problem_from_poem_error(err: poem::Error) -> Response {
    // Handlers' own `ApiError`s arrive already rendered as problem responses.
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let (kind, title) = match status {
        StatusCode::UNAUTHORIZED => ("unauthorized", "Authentication required"),
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
        StatusCode::FORBIDDEN => ("forbidden", "Forbidden"),
        s if s.is_server_error() => ("internal", "Internal error"),
        _ => ("bad-request", "Bad request"),
    };
    let detail = if status.is_server_error() {
        tracing::error!(error = %err, "api error");
        None
    } else {
        Some(err.to_string())
    };
    ProblemJson(Problem::new(status, kind, title, detail)).into_response()
}

/// For pages: the status and message key shown for a service error.
pub fn page_status(e: &ServiceError) -> (StatusCode, &'static str) {
    match e {
        ServiceError::NotFound => (StatusCode::NOT_FOUND, "page.not_found"),
        ServiceError::Forbidden => (StatusCode::FORBIDDEN, "page.forbidden"),
        ServiceError::Unauthenticated => (StatusCode::UNAUTHORIZED, "login.failed"),
        ServiceError::Invalid(_) | ServiceError::ReservedName(_) => (StatusCode::UNPROCESSABLE_ENTITY, "page.invalid"),
        ServiceError::IllegalTransition(_) => (StatusCode::CONFLICT, "page.illegal_transition"),
        ServiceError::Conflict(_) => (StatusCode::CONFLICT, "page.conflict"),
        ServiceError::MachineLost { .. } => (StatusCode::CONFLICT, "page.machine_lost"),
        ServiceError::GuestRefused(why) => {
            use crate::services::GuestRefusal as G;
            let key = match why {
                G::NotRunning => "machine.refused.not_running",
                G::AlreadyRunning => "machine.refused.already_running",
                G::Locked(_) => "machine.refused.locked",
                G::VmOnly => "machine.refused.vm_only",
                G::Other(_) => "machine.refused.other",
            };
            (StatusCode::CONFLICT, key)
        }
        ServiceError::AdoptRefused(why) => {
            use crate::services::adoption::AdoptRefusal as A;
            let key = match why {
                A::Managed => "adopt.refused.managed",
                A::Gone => "adopt.refused.gone",
                A::Template => "adopt.refused.template",
                A::Marked(_) => "adopt.refused.marked",
                A::Locked(_) => "adopt.refused.locked",
                A::Changed => "adopt.refused.changed",
                A::OverQuota(_) => "page.invalid",
                A::Pve(_) => "adopt.refused.pve",
            };
            (StatusCode::CONFLICT, key)
        }
        ServiceError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "login.throttled"),
        ServiceError::ConsoleCap(crate::domain::console_caps::CapReached::Sessions { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, "console.close.too_many_consoles")
        }
        ServiceError::ConsoleCap(crate::domain::console_caps::CapReached::UrlsPerMinute { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, "console.too_many_urls")
        }
        ServiceError::SnapshotLimit { .. } => (StatusCode::CONFLICT, "snapshot.limit_reached"),
        ServiceError::Unavailable(msg) => {
            tracing::warn!(error = %msg, "dependency unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "page.unavailable")
        }
        ServiceError::Db(_) | ServiceError::Jobs(_) | ServiceError::Internal(_) => {
            tracing::error!(error = ?e, "page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page.internal")
        }
    }
}

/// Request extension: lets `problem_from_poem_error` stay a plain function of the error.
pub fn is_api_request(req: &Request) -> bool {
    req.uri().path().starts_with("/api/")
}
