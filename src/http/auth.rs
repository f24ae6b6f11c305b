//! Who is calling: API tokens and session cookies for the API (one security scheme every API
//! handler takes), the session cookie for pages, and CSRF tokens for forms.

use poem::web::cookie::{Cookie, CookieJar, SameSite};
use poem::{Request, http::Method};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};

use crate::services::{self, Actor};
use crate::startup::AppState;

pub const SESSION_COOKIE: &str = "proxdesk_session";
/// Anchors CSRF tokens of visitors who are not logged in yet (the login form).
pub const ANON_COOKIE: &str = "proxdesk_anon";

/// Personal API token (`Authorization: Bearer pdk_…`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_bearer")]
pub struct TokenAuth(pub Actor);

/// The browser session cookie; writes must come from proxdesk's own origin.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "proxdesk_session", key_in = "cookie", checker = "check_cookie")]
pub struct CookieAuth(pub Actor);

/// Every API handler takes this, so none can forget authentication.
#[derive(SecurityScheme)]
pub enum ApiAuth {
    Token(TokenAuth),
    Cookie(CookieAuth),
}

impl ApiAuth {
    pub fn actor(&self) -> &Actor {
        match self {
            ApiAuth::Token(TokenAuth(a)) | ApiAuth::Cookie(CookieAuth(a)) => a,
        }
    }
}

fn state(req: &Request) -> &AppState {
    req.data::<AppState>().expect("AppState is attached to every route")
}

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Actor> {
    match services::tokens::authenticate(&state(req).db, &bearer.token).await {
        Ok(Some(actor)) => Ok(actor),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(internal(e)),
    }
}

async fn check_cookie(req: &Request, key: ApiKey) -> poem::Result<Actor> {
    let st = state(req);
    if !safe_method(req.method()) && !same_origin(req, st.settings.public_origin()) {
        return Err(poem::Error::from_string("cross-origin request refused", poem::http::StatusCode::FORBIDDEN));
    }
    match services::auth::session_actor(&st.db, &key.key).await {
        Ok(Some(actor)) => Ok(actor),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(internal(e)),
    }
}

fn unauthorized() -> poem::Error {
    poem::Error::from_string("missing, invalid or revoked credentials", poem::http::StatusCode::UNAUTHORIZED)
}

fn internal(e: services::ServiceError) -> poem::Error {
    tracing::error!(error = ?e, "authentication lookup failed");
    poem::Error::from_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
}

pub fn safe_method(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request's `Origin` (or, without one, `Referer`) is `public_origin`. A request with
/// neither is not from a browser page and carries no ambient authority risk.
pub fn same_origin(req: &Request, public_origin: &str) -> bool {
    if let Some(origin) = req.header("Origin") {
        return origin == public_origin;
    }
    match req.header("Referer") {
        Some(r) => r == public_origin || r.starts_with(&format!("{public_origin}/")),
        None => true,
    }
}

/// The client's address, used to throttle sign-ins: the socket's peer, or behind a trusted proxy the
/// address it forwards for (`TrustedProxies::client`).
pub fn client_addr(req: &Request) -> String {
    let Some(peer) = req.remote_addr().as_socket_addr().map(|a| a.ip()) else {
        return "unknown".into();
    };
    let forwarded: Vec<&str> =
        req.headers().get_all("X-Forwarded-For").iter().filter_map(|v| v.to_str().ok()).collect();
    state(req).settings.trusted_proxies.client(peer, &forwarded).to_string()
}

/// Whether cookies must be `Secure`: the public URL is https, or a trusted proxy says the request came
/// over https (from anyone else the header means nothing).
pub fn secure_request(req: &Request, st: &AppState) -> bool {
    st.settings.secure_cookies()
        || (req.header("X-Forwarded-Proto") == Some("https")
            && req.remote_addr().as_socket_addr().is_some_and(|a| st.settings.trusted_proxies.trusts(a.ip())))
}

/// A cookie as proxdesk sets them: HttpOnly, SameSite=Lax, path `/`, Secure when appropriate.
pub fn make_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> Cookie {
    let mut c = Cookie::new_with_str(name, value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(secure);
    c.set_max_age(std::time::Duration::from_secs(max_age_secs.max(0) as u64));
    c
}

/// The value CSRF tokens are bound to: the session cookie when logged in, else the anonymous cookie
/// (created on the spot when missing).
pub fn csrf_anchor(jar: &CookieJar, secure: bool) -> String {
    if let Some(c) = jar.get(SESSION_COOKIE) {
        return c.value_str().to_owned();
    }
    if let Some(c) = jar.get(ANON_COOKIE) {
        return c.value_str().to_owned();
    }
    let anon = crate::secrets::random_token(24);
    jar.add(make_cookie(ANON_COOKIE, anon.expose(), 24 * 3600, secure));
    anon.expose().clone()
}

/// The CSRF token for forms of this visitor.
pub fn csrf_token(st: &AppState, anchor: &str) -> String {
    st.settings.secret_key.sign("csrf", anchor)
}

/// Checks a submitted CSRF token against this visitor's anchor.
pub fn csrf_valid(st: &AppState, jar: &CookieJar, submitted: &str) -> bool {
    let anchor = jar.get(SESSION_COOKIE).or_else(|| jar.get(ANON_COOKIE));
    match anchor {
        Some(c) => st.settings.secret_key.verify("csrf", c.value_str(), submitted),
        None => false,
    }
}
