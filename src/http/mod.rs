//! The HTTP edge: pages (server-rendered), the OpenAPI under `/api/v1`, health probes.

pub mod api;
pub mod assets;
pub mod auth;
pub mod body_limit;
pub mod console;
pub mod errors;
pub mod i18n;
pub mod metrics;
pub mod observe;
pub mod pages;

use poem::endpoint::{BoxEndpoint, StaticFilesEndpoint};
use poem::middleware::{AddData, CookieJarManager, SetHeader};
use poem::web::Data;
use poem::{Endpoint, EndpointExt, IntoResponse, Route, get, handler, http::StatusCode};

use crate::startup::AppState;

/// The pages' Content-Security-Policy: scripts, styles and connections from proxdesk itself only; no
/// inline script or style, no framing. The console pages' WebSockets are same-origin (`'self'`).
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// [`PAGE_CSP`], with the OpenID provider's origin added to `form-action` when single sign-on is on:
/// signing out sends the logout form on to the provider's end-session page, and browsers check
/// `form-action` on a form's redirects too.
pub fn page_csp(state: &AppState) -> String {
    match state.sign_in.openid.as_ref() {
        Some(openid) => PAGE_CSP.replace("form-action 'self'", &format!("form-action 'self' {}", openid.origin())),
        None => PAGE_CSP.to_owned(),
    }
}

/// Every route of the application.
pub fn routes(state: AppState) -> impl Endpoint {
    let api = api::service(&state.settings.public_url);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let vendor = StaticFilesEndpoint::new(assets::static_dir(&state.settings).join("vendor"));
    let proxies = state.settings.trusted_proxies.clone();
    let route = Route::new()
        .at("/healthz", get(healthz))
        .at("/metrics", get(metrics::main_listener))
        .at("/readyz", get(readyz))
        .nest("/api/v1/openapi.json", spec)
        .nest("/api/docs", docs)
        .nest("/api/v1", api::with_problem_errors(api))
        .nest("/static/vendor", vendor);
    console_socket_table()
        .into_iter()
        .fold(route, |route, (path, handler)| route.at(path, get(handler)))
        .nest("/", pages::routes().with(SetHeader::new().overriding("Content-Security-Policy", page_csp(&state))))
        .with(
            SetHeader::new()
                .overriding("X-Content-Type-Options", "nosniff")
                .overriding("Referrer-Policy", "same-origin")
                .overriding("X-Frame-Options", "DENY"),
        )
        .around(caching_and_transport)
        .with(body_limit::BodyLimit)
        .with(CookieJarManager::new())
        .with(AddData::new(state))
        .around(move |next, req| observe::observe(next, req, proxies.clone()))
}

/// The console websockets (path pattern, handler): the router is built from this table and the
/// ownership matrix walks it through [`console_socket_routes`].
fn console_socket_table() -> Vec<(&'static str, BoxEndpoint<'static>)> {
    vec![
        ("/machines/:id/console/ws", console::vnc.boxed()),
        ("/machines/:id/terminal/ws", console::terminal.boxed()),
        ("/proxmox/:vmid/console/ws", console::pve_vnc.boxed()),
        ("/proxmox/:vmid/terminal/ws", console::pve_terminal.boxed()),
    ]
}

/// The console websockets' path patterns (all `GET`).
pub fn console_socket_routes() -> Vec<&'static str> {
    console_socket_table().into_iter().map(|(path, _)| path).collect()
}

/// Every answer is about someone signed in, and some show a password or a token once: nothing may be
/// kept by a browser or proxy cache, except the static files that say otherwise. Behind https, browsers
/// are told to stay on https (HSTS).
async fn caching_and_transport<E: Endpoint>(next: E, req: poem::Request) -> poem::Result<poem::Response> {
    let https = req.data::<AppState>().is_some_and(|s| s.settings.public_url.starts_with("https://"));
    let mut resp = next.call(req).await?.into_response();
    let headers = resp.headers_mut();
    if !headers.contains_key(poem::http::header::CACHE_CONTROL) {
        headers.insert(poem::http::header::CACHE_CONTROL, poem::http::HeaderValue::from_static("no-store"));
    }
    if https {
        headers.insert(
            poem::http::header::STRICT_TRANSPORT_SECURITY,
            poem::http::HeaderValue::from_static("max-age=31536000"),
        );
    }
    Ok(resp)
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
