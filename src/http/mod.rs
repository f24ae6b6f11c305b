//! The HTTP edge: pages (server-rendered), the OpenAPI under `/api/v1`, health probes.

pub mod api;
pub mod assets;
pub mod auth;
pub mod console;
pub mod errors;
pub mod i18n;
pub mod pages;

use poem::endpoint::StaticFilesEndpoint;
use poem::middleware::{AddData, CookieJarManager, SetHeader};
use poem::web::Data;
use poem::{Endpoint, EndpointExt, Route, get, handler, http::StatusCode};

use crate::startup::AppState;

/// The pages' Content-Security-Policy: scripts, styles and connections from proxdesk itself only; no
/// inline script or style, no framing. The console pages' WebSockets are same-origin (`'self'`).
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Every route of the application.
pub fn routes(state: AppState) -> impl Endpoint {
    let api = api::service(&state.settings.public_url);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let vendor = StaticFilesEndpoint::new(assets::static_dir(&state.settings).join("vendor"));
    Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .nest("/api/v1/openapi.json", spec)
        .nest("/api/docs", docs)
        .nest("/api/v1", api::with_problem_errors(api))
        .nest("/static/vendor", vendor)
        .at("/machines/:id/console/ws", get(console::vnc))
        .at("/machines/:id/terminal/ws", get(console::terminal))
        .at("/proxmox/:vmid/console/ws", get(console::pve_vnc))
        .at("/proxmox/:vmid/terminal/ws", get(console::pve_terminal))
        .nest("/", pages::routes().with(SetHeader::new().overriding("Content-Security-Policy", PAGE_CSP)))
        .with(
            SetHeader::new()
                .overriding("X-Content-Type-Options", "nosniff")
                .overriding("Referrer-Policy", "same-origin")
                .overriding("X-Frame-Options", "DENY"),
        )
        .with(CookieJarManager::new())
        .with(AddData::new(state))
}

/// The process is up.
#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// The database answers and every migration is applied.
#[handler]
async fn readyz(state: Data<&AppState>) -> (StatusCode, &'static str) {
    match crate::db::migrations_applied(&state.db).await {
        Ok(true) => (StatusCode::OK, "ready"),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
