//! Logging setup: text for people, or JSON lines (`log_format = json`) for a log pipeline. Either way a
//! request's lines carry its `req_id` (the `X-Request-Id` it is answered with), and a job's lines the
//! `req_id` of the request that enqueued it.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once, as text; later calls (tests) are ignored.
pub fn init(filter: &str) {
    init_as(filter, None);
}

/// Installs the global subscriber once, as `format` says (`text`, the default, or `json`); later calls
/// are ignored. An unknown format is text, with a warning.
pub fn init_as(filter: &str, format: Option<&str>) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match format.map(str::trim) {
        Some("json") => {
            // Every enclosing span goes on each line (`spans`), so the request's or job's `req_id` is there
            // even inside a handler's own spans.
            let _ = builder.json().flatten_event(true).with_current_span(false).with_span_list(true).try_init();
        }
        None | Some("" | "text") => {
            let _ = builder.try_init();
        }
        Some(other) => {
            let _ = builder.try_init();
            tracing::warn!(format = other, "unknown PROXDESK_LOG_FORMAT: logging as text (text or json)");
        }
    }
}
