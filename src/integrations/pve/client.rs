//! The HTTP core of the client: authentication, encoding, timeouts, retries, error mapping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::config::{PveAuth, PveConfig};
use super::error::PveError;
use super::tls;
use super::wire::TicketAnswer;
use crate::secrets::Secret;

// Tickets live 2 h (pve-api.md §2.2); renew after 1 h like proxmoxer.
const TICKET_RENEW_AFTER: Duration = Duration::from_secs(3600);
const TICKET_LIFETIME: Duration = Duration::from_secs(7200 - 60);
const READ_ATTEMPTS: u32 = 3;

/// A Proxmox VE API client. Cheap to clone; clones share the connection pool and the ticket.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Arc<str>,
    auth: Arc<Auth>,
    /// The same TLS settings, for the console websockets (which reqwest does not open).
    pub(super) tls: Arc<rustls::ClientConfig>,
    pub(super) timeout: Duration,
}

enum Auth {
    Token(Secret<String>),
    Ticket { user: String, password: Secret<String>, session: Mutex<Option<Session>> },
}

#[derive(Clone)]
struct Session {
    ticket: Secret<String>,
    csrf: Secret<String>,
    obtained: Instant,
}

/// The parameters of one call: query string for GET/DELETE, form body otherwise (pve-api.md §1).
pub(crate) type Params = Vec<(String, String)>;

/// Serializes a request struct into form pairs.
pub(crate) fn params<T: serde::Serialize>(value: &T) -> Result<Params, PveError> {
    let encoded = serde_urlencoded::to_string(value).map_err(|e| PveError::Setup(e.to_string()))?;
    serde_urlencoded::from_str(&encoded).map_err(|e| PveError::Setup(e.to_string()))
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("pve::Client").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client; no request is made until the first call.
    pub fn new(config: PveConfig) -> Result<Self, PveError> {
        crate::integrations::install_tls_provider();
        let tls = tls::client_config(&config.tls)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls.clone())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // pveproxy closes idle connections after 5 s (pve-api.md §1): drop ours before that.
            .pool_idle_timeout(Duration::from_secs(4))
            .user_agent(concat!("proxdesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PveError::Setup(e.to_string()))?;
        let auth = match config.auth {
            PveAuth::Token { id, secret } => Auth::Token(Secret::new(format!("PVEAPIToken={id}={}", secret.expose()))),
            PveAuth::Password { user, password } => Auth::Ticket { user, password, session: Mutex::new(None) },
        };
        Ok(Self {
            http,
            base: config.base_url.into(),
            auth: Arc::new(auth),
            tls: Arc::new(tls),
            timeout: config.timeout,
        })
    }

    /// The API base URL (`…/api2/json`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The header that authenticates a request made outside reqwest (the console websockets):
    /// `Authorization: PVEAPIToken=…` or `Cookie: PVEAuthCookie=…` (pve-api.md §2; no CSRF on GET).
    pub(super) async fn auth_header(&self) -> Result<(&'static str, Secret<String>), PveError> {
        match &*self.auth {
            Auth::Token(header) => Ok(("Authorization", header.clone())),
            Auth::Ticket { .. } => {
                let session = self.session(false).await?;
                Ok(("Cookie", Secret::new(format!("PVEAuthCookie={}", session.ticket.expose()))))
            }
        }
    }

    /// GET with retries on transient errors (reads are idempotent).
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str, query: Params) -> Result<T, PveError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.call(Method::GET, path, &query).await {
                Err(e) if e.is_transient() && attempt < READ_ATTEMPTS => {
                    let backoff = 100u64 << attempt;
                    let jitter = rand::rng().random_range(0..=backoff / 2);
                    tracing::debug!(path, attempt, error = %e, "retrying PVE read");
                    tokio::time::sleep(Duration::from_millis(backoff + jitter)).await;
                }
                other => return other,
            }
        }
    }

    /// A write (POST/PUT/DELETE); never repeated automatically.
    pub(crate) async fn write<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        p: Params,
    ) -> Result<T, PveError> {
        self.call(method, path, &p).await
    }

    /// A GET without proxdesk's credentials (the calls PVE answers for anyone, such as the realm list).
    pub(crate) async fn get_anonymous<T: DeserializeOwned>(&self, path: &str, query: Params) -> Result<T, PveError> {
        let req = self.http.get(format!("{}{path}", self.base)).query(&query);
        decode(path, &self.exchange(&Method::GET, path, req).await?)
    }

    /// A POST without proxdesk's credentials: checking a person's own password (`/access/ticket`,
    /// which refuses API tokens). Never repeated automatically.
    pub(crate) async fn post_anonymous<T: DeserializeOwned>(&self, path: &str, form: Params) -> Result<T, PveError> {
        let req = self.http.post(format!("{}{path}", self.base)).form(&form);
        decode(path, &self.exchange(&Method::POST, path, req).await?)
    }

    /// Sends `req` (`method` on `path`, for the metrics) and reads the whole answer.
    async fn exchange(&self, method: &Method, path: &str, req: reqwest::RequestBuilder) -> Result<Vec<u8>, PveError> {
        let (status, reason, bytes) = timed(method, path, async {
            let resp = req.send().await?;
            let status = resp.status();
            let reason = status_reason(&resp);
            Ok::<_, reqwest::Error>((status, reason, resp.bytes().await?))
        })
        .await?;
        if status == StatusCode::OK {
            Ok(bytes.to_vec())
        } else {
            Err(PveError::from_response(status.as_u16(), &reason, &bytes))
        }
    }

    async fn call<T: DeserializeOwned>(&self, method: Method, path: &str, p: &Params) -> Result<T, PveError> {
        let body = match self.send(method.clone(), path, p, false).await {
            // A ticket may have been revoked or the key rotated: log in again, once.
            Err(PveError::Authentication(_)) if matches!(*self.auth, Auth::Ticket { .. }) => {
                self.send(method, path, p, true).await?
            }
            other => other?,
        };
        decode(path, &body)
    }

    async fn send(&self, method: Method, path: &str, p: &Params, relogin: bool) -> Result<Vec<u8>, PveError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), url);
        req = if method == Method::GET || method == Method::DELETE { req.query(p) } else { req.form(p) };
        match &*self.auth {
            Auth::Token(header) => req = req.header("Authorization", header.expose().as_str()),
            Auth::Ticket { .. } => {
                let session = self.session(relogin).await?;
                req = req.header("Cookie", format!("PVEAuthCookie={}", session.ticket.expose()));
                // CSRF token on every non-GET request made with a ticket (pve-api.md §2.3).
                if method != Method::GET {
                    req = req.header("CSRFPreventionToken", session.csrf.expose().as_str());
                }
            }
        }
        self.exchange(&method, path, req).await
    }

    /// The current ticket session, logging in or renewing first when needed.
    async fn session(&self, force: bool) -> Result<Session, PveError> {
        let Auth::Ticket { user, password, session } = &*self.auth else {
            return Err(PveError::Setup("not a ticket client".into()));
        };
        let mut guard = session.lock().await;
        if let Some(s) = guard.as_ref()
            && !force
            && s.obtained.elapsed() < TICKET_RENEW_AFTER
        {
            return Ok(s.clone());
        }
        // Renew by posting the still-valid ticket as the password (pve-api.md §2.1); else log in.
        let renewable = guard.as_ref().filter(|s| !force && s.obtained.elapsed() < TICKET_LIFETIME);
        let fresh = match renewable {
            Some(s) => match self.login(user, &s.ticket).await {
                Ok(fresh) => fresh,
                Err(_) => self.login(user, password).await?,
            },
            None => self.login(user, password).await?,
        };
        *guard = Some(fresh.clone());
        Ok(fresh)
    }

    async fn login(&self, user: &str, password: &Secret<String>) -> Result<Session, PveError> {
        let url = format!("{}/access/ticket", self.base);
        let form = [("username", user), ("password", password.expose().as_str())];
        let (status, reason, bytes) = timed(&Method::POST, "/access/ticket", async {
            let resp = self.http.post(url).form(&form).send().await?;
            let status = resp.status();
            let reason = status_reason(&resp);
            Ok::<_, reqwest::Error>((status, reason, resp.bytes().await?))
        })
        .await?;
        if status != StatusCode::OK {
            return Err(PveError::from_response(status.as_u16(), &reason, &bytes));
        }
        #[derive(serde::Deserialize)]
        struct Envelope {
            data: TicketAnswer,
        }
        let answer: Envelope = serde_json::from_slice(&bytes).map_err(|e| PveError::Decode(format!("ticket: {e}")))?;
        Ok(Session {
            ticket: Secret::new(answer.data.ticket),
            csrf: Secret::new(answer.data.csrf),
            obtained: Instant::now(),
        })
    }
}

/// Runs one exchange with PVE and records it: its status, or `error` when no answer came whole.
async fn timed<T>(
    method: &Method,
    path: &str,
    exchange: impl Future<Output = Result<(StatusCode, String, T), reqwest::Error>>,
) -> Result<(StatusCode, String, T), reqwest::Error> {
    let started = Instant::now();
    let result = exchange.await;
    let status = result.as_ref().ok().map(|(s, _, _)| s.as_u16());
    crate::metrics::call(crate::metrics::Upstream::Pve, method.as_str(), path, status, started);
    result
}

/// The `data` of PVE's answer envelope.
fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, PveError> {
    #[derive(serde::Deserialize)]
    struct Envelope<T> {
        data: T,
    }
    serde_json::from_slice::<Envelope<T>>(body).map(|e| e.data).map_err(|e| PveError::Decode(format!("{path}: {e}")))
}

/// PVE puts the error text in the reason phrase (pve-api.md §3); hyper keeps it as an extension.
fn status_reason(resp: &reqwest::Response) -> String {
    resp.extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| resp.status().canonical_reason().map(str::to_owned))
        .unwrap_or_default()
}
