//! `/metrics` (Prometheus, OpenMetrics text): on the main listener only with `metrics_token` (as a
//! bearer token), and without auth on the separate `metrics_listen` listener, meant for an internal
//! network. With neither set, `/metrics` does not exist.

use std::net::SocketAddr;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, RawSettings};
use crate::secrets::Secret;
use crate::startup::AppState;

/// Where and how metrics are served.
#[derive(Clone, Debug, Default)]
pub struct MetricsSettings {
    /// The separate listener's address (`metrics_listen`).
    pub listen: Option<SocketAddr>,
    /// The bearer token `/metrics` on the main listener answers to (`metrics_token`).
    pub token: Option<Secret<String>>,
}

impl MetricsSettings {
    pub fn from_settings(raw: &RawSettings) -> Result<Self, ConfigError> {
        let token = raw.get("metrics_token").filter(|t| !t.trim().is_empty());
        if token.is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::Invalid {
                key: "metrics_token".into(),
                message: "use at least 16 characters".into(),
            });
        }
        Ok(MetricsSettings { listen: raw.parse("metrics_listen")?, token: token.map(|t| Secret::new(t.to_owned())) })
    }
}

/// `/metrics` on the main listener.
#[handler]
pub async fn main_listener(req: &Request, state: Data<&AppState>) -> Response {
    let Some(token) = state.settings.raw.get("metrics_token").filter(|t| !t.trim().is_empty()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = req.header("Authorization").and_then(|h| h.strip_prefix("Bearer "));
    if !given.is_some_and(|g| same_secret(g, token)) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("WWW-Authenticate", "Bearer")
            .body("a metrics token is required");
    }
    scrape(&state.db).await
}

/// The separate listener's routes: `/metrics` only, without auth.
pub fn own_listener(db: DatabaseConnection) -> impl poem::Endpoint {
    Route::new().at("/metrics", get(own_listener_metrics)).data(db)
}

#[handler]
async fn own_listener_metrics(db: Data<&DatabaseConnection>) -> Response {
    scrape(&db).await
}

/// One scrape: the queue depth read now, then every family.
async fn scrape(db: &DatabaseConnection) -> Response {
    let depth = match jobs::depth(db).await {
        Ok(rows) => rows.into_iter().map(|(kind, state, n)| (kind, state.as_str(), n)).collect(),
        Err(e) => {
            // The other families are still worth having; the depth is left out of this scrape.
            tracing::warn!(error = %e, "job queue depth not read for metrics");
            Vec::new()
        }
    };
    Response::builder().content_type(crate::metrics::CONTENT_TYPE).body(crate::metrics::render(&depth))
}

/// Whether `given` is `expected`, in time that depends on neither (both are hashed first).
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_same_token_matches() {
        assert!(super::same_secret("0123456789abcdef", "0123456789abcdef"));
        assert!(!super::same_secret("0123456789abcdeg", "0123456789abcdef"));
        assert!(!super::same_secret("", "0123456789abcdef"));
    }
}
