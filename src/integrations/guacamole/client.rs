//! The Guacamole REST client: token login, renewal when the token has expired, data source discovery,
//! and typed calls for connections, groups, users and permissions (reference §1–§6).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::GuacSettings;
use super::error::GuacError;
use super::wire::{AuthResult, Connection, ConnectionGroup, Patch, PatchResponse, PermissionSet, User};
use crate::secrets::Secret;

/// A logged-in session: its token and the data source calls go to.
#[derive(Debug, Clone)]
struct Session {
    token: Secret<String>,
    data_source: String,
    generation: u64,
}

/// A Guacamole REST client. Cheap to share behind an `Arc`; calls may run concurrently.
pub struct Client {
    http: reqwest::Client,
    api: String,
    user: String,
    password: Secret<String>,
    wanted_data_source: Option<String>,
    session: Mutex<Option<Session>>,
    concurrency: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("api", &self.api).field("user", &self.user).finish_non_exhaustive()
    }
}

/// Percent-encodes one path segment (usernames may hold anything).
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for the Guacamole described by `settings`; nothing is sent until the first call.
    pub fn new(settings: &GuacSettings) -> Result<Self, GuacError> {
        if !(settings.url.starts_with("http://") || settings.url.starts_with("https://")) {
            return Err(GuacError::Config(format!(
                "PROXDESK_GUAC_URL must start with http:// or https://, got {:?}",
                settings.url
            )));
        }
        crate::integrations::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GuacError::Config(e.to_string()))?;
        Ok(Client {
            http,
            api: format!("{}/api", settings.url.trim_end_matches('/')),
            user: settings.user.clone(),
            password: settings.password.clone(),
            wanted_data_source: settings.data_source.clone(),
            session: Mutex::new(None),
            concurrency: settings.concurrency.max(1),
        })
    }

    /// How many calls the client runs at once when reading many objects.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Logs in (form-encoded `POST /api/tokens`) and picks the data source; replaces any session.
    pub async fn login(&self) -> Result<String, GuacError> {
        let mut guard = self.session.lock().await;
        let generation = guard.as_ref().map_or(0, |s| s.generation + 1);
        let session = self.fresh_session(generation).await?;
        let ds = session.data_source.clone();
        *guard = Some(session);
        Ok(ds)
    }

    async fn fresh_session(&self, generation: u64) -> Result<Session, GuacError> {
        let response = self
            .http
            .post(format!("{}/tokens", self.api))
            .form(&[("username", self.user.as_str()), ("password", self.password.expose().as_str())])
            .send();
        let response = timed(&Method::POST, "/tokens", response).await.map_err(transport)?;
        let auth: AuthResult = decode(response).await?;
        if !auth.token_is_well_formed() {
            return Err(GuacError::Decode("the login answer's authToken is not a Guacamole token".into()));
        }
        let data_source = match &self.wanted_data_source {
            Some(wanted) if auth.available_data_sources.iter().any(|d| d == wanted) => wanted.clone(),
            Some(wanted) => {
                return Err(GuacError::Config(format!(
                    "data source {wanted:?} is not available to {}; available: {}",
                    self.user,
                    auth.available_data_sources.join(", ")
                )));
            }
            None => auth.data_source.clone(),
        };
        Ok(Session { token: Secret::new(auth.auth_token), data_source, generation })
    }

    async fn session(&self) -> Result<Session, GuacError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let s = self.fresh_session(0).await?;
        *guard = Some(s.clone());
        Ok(s)
    }

    /// Replaces the session `stale` with a new login, unless another call already did.
    async fn renew(&self, stale: &Session) -> Result<Session, GuacError> {
        let mut guard = self.session.lock().await;
        if let Some(current) = guard.as_ref()
            && current.generation != stale.generation
        {
            return Ok(current.clone());
        }
        tracing::info!("guacamole token expired; logging in again");
        let s = self.fresh_session(stale.generation + 1).await?;
        *guard = Some(s.clone());
        Ok(s)
    }

    /// The data source calls go to (logs in when needed).
    pub async fn data_source(&self) -> Result<String, GuacError> {
        Ok(self.session().await?.data_source)
    }

    /// Ends the session (`DELETE /api/tokens/{token}`); a no-op without one.
    pub async fn logout(&self) -> Result<(), GuacError> {
        let Some(s) = self.session.lock().await.take() else {
            return Ok(());
        };
        let url = format!("{}/tokens/{}", self.api, s.token.expose());
        let response =
            timed(&Method::DELETE, "/tokens/{token}", self.http.delete(url).send()).await.map_err(transport)?;
        expect_empty(response).await
    }

    /// Whether the token is still valid: `HEAD /api/session` (204 valid, 403 not; it does not refresh).
    async fn token_valid(&self, s: &Session) -> Result<bool, GuacError> {
        let response =
            self.http.head(format!("{}/session", self.api)).header("Guacamole-Token", s.token.expose()).send();
        let response = timed(&Method::HEAD, "/session", response).await.map_err(transport)?;
        Ok(response.status().is_success())
    }

    /// Sends one call under `/api/session/data/{ds}/`, logging in again once if the token has expired.
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, GuacError> {
        let mut session = self.session().await?;
        let mut renewed = false;
        loop {
            let url = format!("{}/session/data/{}/{path}", self.api, seg(&session.data_source));
            let mut request = self.http.request(method.clone(), url).header("Guacamole-Token", session.token.expose());
            if let Some(b) = body {
                request = request.json(b);
            }
            let template = format!("/session/data/{{ds}}/{path}");
            let response = timed(&method, &template, request.send()).await.map_err(transport)?;
            // An expired token and a missing permission are both 403 PERMISSION_DENIED (§1, §8): the
            // session probe tells them apart without relying on the message text.
            if response.status() == StatusCode::FORBIDDEN && !renewed && !self.token_valid(&session).await? {
                session = self.renew(&session).await?;
                renewed = true;
                continue;
            }
            return Ok(response);
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, GuacError> {
        let mut attempt = 0;
        loop {
            let result = match self.send::<()>(Method::GET, path, None).await {
                Ok(r) => decode(r).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_transient() && attempt < 2 => {
                    attempt += 1;
                    let jitter = rand::random::<u64>() % 100;
                    tokio::time::sleep(Duration::from_millis(200 * attempt + jitter)).await;
                }
                other => return other,
            }
        }
    }

    async fn write<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, GuacError> {
        decode(self.send(method, path, Some(body)).await?).await
    }

    async fn write_empty<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), GuacError> {
        expect_empty(self.send(method, path, body).await?).await
    }

    /// `GET connections`: every connection the account can read, by identifier (no parameters).
    pub async fn connections(&self) -> Result<BTreeMap<String, Connection>, GuacError> {
        self.get("connections").await
    }

    /// `GET connections/{id}/parameters` (needs UPDATE on the connection or ADMINISTER).
    pub async fn connection_parameters(&self, id: &str) -> Result<BTreeMap<String, String>, GuacError> {
        self.get(&format!("connections/{}/parameters", seg(id))).await
    }

    /// `POST connections`: returns the echo with its new identifier.
    pub async fn create_connection(&self, c: &Connection) -> Result<Connection, GuacError> {
        self.write(Method::POST, "connections", c).await
    }

    /// `PUT connections/{id}`: replaces name, parent, protocol, all parameters and attributes.
    pub async fn update_connection(&self, id: &str, c: &Connection) -> Result<(), GuacError> {
        // A missing `parameters` makes the JDBC backend fail with a 500 (§12): always send an object.
        let mut c = c.clone();
        c.parameters.get_or_insert_with(BTreeMap::new);
        let path = format!("connections/{}", seg(id));
        self.write_empty(Method::PUT, &path, Some(&c)).await
    }

    /// `DELETE connections/{id}`.
    pub async fn delete_connection(&self, id: &str) -> Result<(), GuacError> {
        let path = format!("connections/{}", seg(id));
        self.write_empty::<()>(Method::DELETE, &path, None).await
    }

    /// `PATCH connections`: one atomic batch of adds, replaces and removes.
    pub async fn patch_connections(&self, patches: &[Patch<Connection>]) -> Result<PatchResponse, GuacError> {
        self.write(Method::PATCH, "connections", patches).await
    }

    /// `PATCH {directory}` with untyped values (`connections`, `connectionGroups`, `users`, `userGroups`).
    pub async fn patch_directory(
        &self,
        directory: &str,
        patches: &[Patch<serde_json::Value>],
    ) -> Result<PatchResponse, GuacError> {
        self.write(Method::PATCH, directory, patches).await
    }

    /// `GET connectionGroups`: every group except ROOT, by identifier.
    pub async fn connection_groups(&self) -> Result<BTreeMap<String, ConnectionGroup>, GuacError> {
        self.get("connectionGroups").await
    }

    /// `GET connectionGroups/{id}` (`ROOT` allowed).
    pub async fn connection_group(&self, id: &str) -> Result<ConnectionGroup, GuacError> {
        self.get(&format!("connectionGroups/{}", seg(id))).await
    }

    /// `POST connectionGroups`: returns the echo with its new identifier.
    pub async fn create_connection_group(&self, g: &ConnectionGroup) -> Result<ConnectionGroup, GuacError> {
        self.write(Method::POST, "connectionGroups", g).await
    }

    /// `DELETE connectionGroups/{id}`: deletes everything inside too.
    pub async fn delete_connection_group(&self, id: &str) -> Result<(), GuacError> {
        let path = format!("connectionGroups/{}", seg(id));
        self.write_empty::<()>(Method::DELETE, &path, None).await
    }

    /// `PATCH connectionGroups`: one atomic batch.
    pub async fn patch_connection_groups(
        &self,
        patches: &[Patch<ConnectionGroup>],
    ) -> Result<PatchResponse, GuacError> {
        self.write(Method::PATCH, "connectionGroups", patches).await
    }

    /// `GET users`: every user the account can read, by username.
    pub async fn users(&self) -> Result<BTreeMap<String, User>, GuacError> {
        self.get("users").await
    }

    /// `POST users`: creates a user (without a password it cannot log in).
    pub async fn create_user(&self, u: &User) -> Result<User, GuacError> {
        self.write(Method::POST, "users", u).await
    }

    /// `PATCH users`: one atomic batch.
    pub async fn patch_users(&self, patches: &[Patch<User>]) -> Result<PatchResponse, GuacError> {
        self.write(Method::PATCH, "users", patches).await
    }

    /// `DELETE users/{username}`.
    pub async fn delete_user(&self, username: &str) -> Result<(), GuacError> {
        let path = format!("users/{}", seg(username));
        self.write_empty::<()>(Method::DELETE, &path, None).await
    }

    /// `GET users/{username}/permissions`: direct grants.
    pub async fn permissions(&self, username: &str) -> Result<PermissionSet, GuacError> {
        self.get(&format!("users/{}/permissions", seg(username))).await
    }

    /// `GET self/effectivePermissions`: what the logged-in account may do, including what its groups
    /// grant it.
    pub async fn own_effective_permissions(&self) -> Result<PermissionSet, GuacError> {
        self.get("self/effectivePermissions").await
    }

    /// `PATCH users/{username}/permissions`: adds, then removes; idempotent.
    pub async fn patch_permissions(&self, username: &str, patches: &[Patch<String>]) -> Result<(), GuacError> {
        let path = format!("users/{}/permissions", seg(username));
        self.write_empty(Method::PATCH, &path, Some(patches)).await
    }
}

/// Awaits one call to Guacamole and records it: its status, or `error` when none came.
async fn timed(
    method: &Method,
    path: &str,
    call: impl Future<Output = Result<reqwest::Response, reqwest::Error>>,
) -> Result<reqwest::Response, reqwest::Error> {
    let started = std::time::Instant::now();
    let result = call.await;
    let status = result.as_ref().ok().map(|r| r.status().as_u16());
    crate::metrics::call(crate::metrics::Upstream::Guacamole, method.as_str(), path, status, started);
    result
}

fn transport(e: reqwest::Error) -> GuacError {
    GuacError::Transport(e.without_url().to_string())
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, GuacError> {
    let status = response.status();
    let body = response.text().await.map_err(transport)?;
    if !status.is_success() {
        return Err(GuacError::from_response(status.as_u16(), &body));
    }
    serde_json::from_str(&body).map_err(|e| GuacError::Decode(e.to_string()))
}

async fn expect_empty(response: reqwest::Response) -> Result<(), GuacError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.map_err(transport)?;
    Err(GuacError::from_response(status.as_u16(), &body))
}
