//! Errors of the Guacamole client, shaped after Guacamole's own `APIError` (reference §8).

use super::wire::ApiError;

/// What went wrong talking to Guacamole.
#[derive(Debug, thiserror::Error)]
pub enum GuacError {
    /// The settings do not describe a usable Guacamole (missing URL, user or password).
    #[error("guacamole settings: {0}")]
    Config(String),
    /// The server could not be reached or the connection broke (includes timeouts).
    #[error("guacamole unreachable: {0}")]
    Transport(String),
    /// Login refused: wrong username or password (403 `INVALID_CREDENTIALS`).
    #[error("guacamole login refused: {0}")]
    InvalidCredentials(String),
    /// Login needs another factor (403 `INSUFFICIENT_CREDENTIALS`).
    #[error("guacamole login needs more credentials: {0}")]
    InsufficientCredentials(String),
    /// Too many failed logins from this address (429, the bundled auth-ban extension, §12).
    #[error("guacamole refuses logins for now: {0}")]
    TooManyAttempts(String),
    /// The account lacks a permission (403 `PERMISSION_DENIED` with a valid token).
    #[error("guacamole permission denied: {0}")]
    PermissionDenied(String),
    /// The object does not exist (404 `NOT_FOUND`).
    #[error("guacamole: not found: {0}")]
    NotFound(String),
    /// The request was refused as invalid (400/409/413 `BAD_REQUEST`), e.g. a duplicate name.
    #[error("guacamole rejected the request ({status}): {message}")]
    BadRequest {
        /// HTTP status.
        status: u16,
        /// Guacamole's message.
        message: String,
        /// Per-patch outcomes of a failed directory PATCH, when Guacamole sent them.
        patches: Vec<String>,
    },
    /// The server failed (5xx, `INTERNAL_ERROR`, or a body that is not an `APIError`).
    #[error("guacamole server error ({status}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Guacamole's message or the start of the body.
        message: String,
    },
    /// A success response whose body does not have the documented shape.
    #[error("guacamole sent an unexpected body: {0}")]
    Decode(String),
}

impl GuacError {
    /// Maps an error response onto a variant by Guacamole's `type`, falling back to the HTTP status.
    pub fn from_response(status: u16, body: &str) -> Self {
        let Ok(api) = serde_json::from_str::<ApiError>(body) else {
            let message = excerpt(body);
            return match status {
                404 => GuacError::NotFound(message),
                400..=499 => GuacError::BadRequest { status, message, patches: Vec::new() },
                _ => GuacError::Server { status, message },
            };
        };
        // A JSON body without a message (not Guacamole's, or a bare `{}`) still says something.
        let message = api.message.clone().filter(|m| !m.trim().is_empty()).unwrap_or_else(|| excerpt(body));
        match api.kind.as_deref() {
            Some("INVALID_CREDENTIALS") => GuacError::InvalidCredentials(message),
            Some("INSUFFICIENT_CREDENTIALS") => GuacError::InsufficientCredentials(message),
            Some("PERMISSION_DENIED") => GuacError::PermissionDenied(message),
            Some("NOT_FOUND") => GuacError::NotFound(message),
            // The ban extension answers 429 with type BAD_REQUEST (§12).
            Some("BAD_REQUEST") if status == 429 => GuacError::TooManyAttempts(message),
            Some("BAD_REQUEST") => GuacError::BadRequest {
                status,
                message,
                patches: api
                    .patches
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| {
                        p.error.map(|e| {
                            let text = e
                                .variables
                                .as_ref()
                                .and_then(|v| v.get("MESSAGE"))
                                .and_then(|m| m.as_str())
                                .map(str::to_owned)
                                .unwrap_or(e.key);
                            format!("{} {}: {text}", p.op, p.path)
                        })
                    })
                    .collect(),
            },
            _ => GuacError::Server { status, message },
        }
    }

    /// Whether a retry of the same call may succeed (transport failures and 5xx other than 501).
    pub fn is_transient(&self) -> bool {
        match self {
            GuacError::Transport(_) => true,
            GuacError::Server { status, .. } => *status != 501 && *status >= 500,
            _ => false,
        }
    }
}

/// The start of a body, for a message.
fn excerpt(body: &str) -> String {
    body.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_json_body_without_a_message_keeps_its_text() {
        let e = GuacError::from_response(500, "{}");
        assert!(matches!(e, GuacError::Server { status: 500, ref message } if message == "{}"), "{e:?}");
    }

    proptest! {
        /// Any error answer maps to a variant without panicking; Guacamole's own `type` wins over the
        /// status, and the message is never empty when the body was not.
        #[test]
        fn fuzz_guacamole_errors_never_panic(
            status in 400u16..=599,
            kind in prop::option::of("INVALID_CREDENTIALS|INSUFFICIENT_CREDENTIALS|PERMISSION_DENIED|NOT_FOUND|BAD_REQUEST|INTERNAL_ERROR|[A-Z_]{0,8}"),
            message in prop::option::of("\\PC{0,20}"),
            raw in "\\PC{0,300}",
            json_body in any::<bool>(),
        ) {
            let body = if json_body {
                json!({"message": message, "translatableMessage": null, "statusCode": null, "expected": null, "patches": null, "type": kind}).to_string()
            } else {
                raw
            };
            let e = GuacError::from_response(status, &body);
            let text = e.to_string();
            prop_assert!(!text.is_empty());
            if json_body && kind.as_deref() == Some("NOT_FOUND") {
                prop_assert!(matches!(e, GuacError::NotFound(_)));
            }
            if let GuacError::Server { message, .. } | GuacError::BadRequest { message, .. } = &e {
                prop_assert!(body.is_empty() || !message.is_empty(), "{:?}", body);
            }
        }
    }
}
