//! OpenID Connect: signing people in through their organisation's provider (authorization code flow
//! with PKCE, discovery, state and nonce, full ID-token validation), on the `openidconnect` crate with
//! proxdesk's own HTTP client ([`http::HttpClient`]).
//!
//! [`OpenIdProvider`] is one configured provider: [`OpenIdProvider::authorization_url`] sends the
//! browser there, [`OpenIdProvider::finish`] exchanges the code the browser brings back and returns the
//! [`Person`] the provider vouched for. Keeping the flow's state between the two is the caller's.

mod claims;
mod discovery;
pub mod http;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreResponseType,
};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, CsrfToken, IdToken, IdTokenClaims, LogoutRequest,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, TokenResponse, UserInfoClaims,
};

pub use claims::{ExtraClaims, Person};
use discovery::{Discovered, Discovery};
use http::{HttpClient, HttpError};

use crate::config::RawSettings;
use crate::secrets::Secret;

/// How long connecting to the provider may take, and a whole call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How far in the future an ID token's `iat` may lie (clocks differ a little), and how old it may be
/// (it was issued for this very code exchange).
const IAT_FUTURE_SKEW_SECS: i64 = 300;
const IAT_MAX_AGE_SECS: i64 = 3600;

/// The `oidc_*` settings.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer URL, exactly as the provider names itself (`iss`).
    pub issuer: String,
    pub client_id: String,
    /// `None` for a public client (PKCE alone protects the code).
    pub client_secret: Option<Secret<String>>,
    /// Scopes asked for besides `openid` (always asked).
    pub scopes: Vec<String>,
    /// The claim listing the person's groups.
    pub groups_claim: String,
    /// `<public_url>/login/oidc/callback`.
    pub redirect_uri: String,
    /// `<public_url>/login`: where the provider sends the browser after signing out there.
    pub post_logout_redirect_uri: String,
}

impl OidcConfig {
    /// `None` when `oidc_issuer` is unset; an error naming the setting when one is unusable.
    pub fn from_settings(raw: &RawSettings, public_url: &str) -> Result<Option<Self>, OidcError> {
        let Some(issuer) = raw.get("oidc_issuer").map(str::trim) else {
            return Ok(None);
        };
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(OidcError::Config(format!(
                "PROXDESK_OIDC_ISSUER must start with https:// (or http://), got {issuer:?}"
            )));
        }
        let client_id = raw.get("oidc_client_id").map(str::trim).ok_or_else(|| {
            OidcError::Config("PROXDESK_OIDC_CLIENT_ID is required when PROXDESK_OIDC_ISSUER is set".into())
        })?;
        let scopes = raw
            .get("oidc_scopes")
            .unwrap_or("")
            .split_whitespace()
            .filter(|s| *s != "openid")
            .map(str::to_owned)
            .collect();
        let public_url = public_url.trim_end_matches('/');
        Ok(Some(Self {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: raw.get("oidc_client_secret").map(|s| Secret::new(s.to_owned())),
            scopes,
            groups_claim: raw.get("oidc_groups_claim").unwrap_or("groups").trim().to_owned(),
            redirect_uri: format!("{public_url}/login/oidc/callback"),
            post_logout_redirect_uri: format!("{public_url}/login"),
        }))
    }
}

/// What went wrong talking to the provider. No variant carries a token, a code or the client secret.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// The provider did not answer (down, unreachable, timed out, or answered with a server error).
    #[error("the OpenID provider did not answer: {0}")]
    Unreachable(String),
    /// The provider answered, but its discovery document or key set is unusable.
    #[error("the OpenID provider's configuration is unusable: {0}")]
    Discovery(String),
    /// The token endpoint refused the code (expired, used, issued to another client, wrong verifier).
    #[error("the OpenID provider refused the sign-in: {0}")]
    Refused(String),
    /// The ID token failed validation (signature, issuer, audience, expiry, nonce…).
    #[error("the ID token is not acceptable: {0}")]
    InvalidToken(String),
}

impl OidcError {
    fn from_discovery(e: openidconnect::DiscoveryError<HttpError>) -> Self {
        use openidconnect::DiscoveryError as D;
        match e {
            D::Request(e) => Self::Unreachable(e.to_string()),
            D::Response(status, _, _) if status.is_server_error() => Self::Unreachable(format!("HTTP {status}")),
            D::Response(status, _, message) => Self::Discovery(format!("HTTP {status}: {message}")),
            D::Parse(e) => Self::Discovery(format!("unreadable document at {}", e.path())),
            D::Validation(message) | D::Other(message) => Self::Discovery(message),
            D::UrlParse(e) => Self::Discovery(e.to_string()),
            other => Self::Discovery(other.to_string()),
        }
    }

    fn from_token<T: openidconnect::ErrorResponse + 'static>(e: RequestTokenError<HttpError, T>) -> Self {
        match e {
            RequestTokenError::Request(e) => Self::Unreachable(e.to_string()),
            RequestTokenError::ServerResponse(refusal) => Self::Refused(refusal.to_string()),
            // The body may hold tokens: only where parsing stopped is said.
            RequestTokenError::Parse(e, _) => Self::Refused(format!("unreadable token answer at {}", e.path())),
            RequestTokenError::Other(message) => Self::Refused(message),
        }
    }
}

/// The single-use secrets of one sign-in, kept between the redirect and the way back.
pub struct FlowSecrets {
    /// The PKCE code verifier (its S256 challenge goes to the provider).
    pub pkce_verifier: Secret<String>,
    /// The nonce the ID token must carry.
    pub nonce: Secret<String>,
}

impl FlowSecrets {
    /// Fresh random secrets for a new sign-in.
    pub fn new_random() -> Self {
        let (_, verifier) = PkceCodeChallenge::new_random_sha256();
        Self {
            pkce_verifier: Secret::new(verifier.secret().clone()),
            nonce: Secret::new(Nonce::new_random().secret().clone()),
        }
    }
}

/// A finished sign-in: who, and the ID token (for `id_token_hint` when signing out at the provider).
pub struct SignedIn {
    pub person: Person,
    pub id_token: Secret<String>,
}

type ProxdeskIdToken =
    IdToken<ExtraClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// One configured OpenID provider. Cheap to share; discovery happens on first use and is kept.
#[derive(Clone)]
pub struct OpenIdProvider {
    inner: Arc<Inner>,
}

struct Inner {
    config: OidcConfig,
    http: HttpClient,
    discovery: Discovery,
}

impl OpenIdProvider {
    /// Nothing is fetched until the first sign-in.
    pub fn new(config: OidcConfig) -> Result<Self, OidcError> {
        let http = HttpClient::new(CONNECT_TIMEOUT, CALL_TIMEOUT).map_err(|e| OidcError::Config(e.to_string()))?;
        let discovery = Discovery::new(&config)?;
        Ok(Self { inner: Arc::new(Inner { config, http, discovery }) })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.inner.config
    }

    /// Fetches the discovery document and keys if not yet known: fails when the provider is down.
    pub async fn discover(&self) -> Result<(), OidcError> {
        self.inner.discovery.get(&self.inner.http).await.map(|_| ())
    }

    /// The provider's authorization URL for a sign-in carrying `state`, the S256 challenge of the
    /// flow's verifier, its nonce and the configured scopes.
    pub async fn authorization_url(&self, state: &Secret<String>, flow: &FlowSecrets) -> Result<String, OidcError> {
        let discovered = self.inner.discovery.get(&self.inner.http).await?;
        let verifier = PkceCodeVerifier::new(flow.pkce_verifier.expose().clone());
        let state = state.expose().clone();
        let nonce = flow.nonce.expose().clone();
        let (url, _, _) = discovered
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(self.inner.config.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier))
            .url();
        Ok(url.into())
    }

    /// Exchanges `code` (with the flow's verifier and the client secret), validates the ID token
    /// fully and returns the person it names, completed from userinfo when the token lacks the
    /// groups claim.
    pub async fn finish(&self, code: &str, flow: &FlowSecrets) -> Result<SignedIn, OidcError> {
        let inner = &self.inner;
        let discovered = inner.discovery.get(&inner.http).await?;
        let tokens = discovered
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Discovery(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.expose().clone()))
            .request_async(&inner.http)
            .await
            .map_err(OidcError::from_token)?;
        let id_token =
            tokens.id_token().ok_or_else(|| OidcError::InvalidToken("the token answer holds no ID token".into()))?;
        let nonce = Nonce::new(flow.nonce.expose().clone());
        let (discovered, claims) = match verify(&discovered, id_token, &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                match inner.discovery.refresh_keys(&inner.http, &discovered).await? {
                    Some(fresh) => {
                        let claims = verify(&fresh, id_token, &nonce).map_err(invalid)?;
                        (fresh, claims)
                    }
                    None => return Err(OidcError::InvalidToken("signed with a key the provider does not list".into())),
                }
            }
            other => (discovered, other.map_err(invalid)?),
        };
        claims::check_subject(claims.subject()).map_err(OidcError::InvalidToken)?;
        let groups_claim = &inner.config.groups_claim;
        let mut person = Person::from_claims(&inner.config.issuer, claims, groups_claim);
        if person.groups.is_none() && discovered.client.user_info_url().is_some() {
            let info: UserInfoClaims<ExtraClaims, CoreGenderClaim> = discovered
                .client
                .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
                .map_err(|e| OidcError::Discovery(e.to_string()))?
                .request_async(&inner.http)
                .await
                .map_err(|e| match e {
                    openidconnect::UserInfoError::Request(e) => OidcError::Unreachable(e.to_string()),
                    other => OidcError::Refused(format!("userinfo: {other}")),
                })?;
            person.complete_with(&info, groups_claim);
        }
        Ok(SignedIn { person, id_token: Secret::new(id_token.to_string()) })
    }

    /// Where to send the browser to sign out at the provider too, when it advertises an end-session
    /// endpoint: with `id_token_hint` and `post_logout_redirect_uri`. Uses the kept discovery (or
    /// fetches it); `None` when the provider has no such endpoint.
    pub async fn logout_url(&self, id_token: &Secret<String>) -> Result<Option<String>, OidcError> {
        let inner = &self.inner;
        let discovered = inner.discovery.get(&inner.http).await?;
        let Some(endpoint) = discovered.metadata.additional_metadata().end_session_endpoint.clone() else {
            return Ok(None);
        };
        let hint: ProxdeskIdToken =
            id_token.expose().parse().map_err(|_| OidcError::InvalidToken("the kept ID token is unreadable".into()))?;
        let back = PostLogoutRedirectUrl::new(inner.config.post_logout_redirect_uri.clone())
            .map_err(|e| OidcError::Config(e.to_string()))?;
        let url =
            LogoutRequest::from(endpoint).set_id_token_hint(&hint).set_post_logout_redirect_uri(back).http_get_url();
        Ok(Some(url.into()))
    }
}

fn verify<'t>(
    discovered: &Discovered,
    token: &'t ProxdeskIdToken,
    nonce: &Nonce,
) -> Result<&'t IdTokenClaims<ExtraClaims, CoreGenderClaim>, ClaimsVerificationError> {
    let verifier = discovered.client.id_token_verifier().set_issue_time_verifier_fn(check_issued_at);
    token.claims(&verifier, nonce)
}

fn check_issued_at(iat: DateTime<Utc>) -> Result<(), String> {
    let age = (Utc::now() - iat).num_seconds();
    if age < -IAT_FUTURE_SKEW_SECS {
        return Err(format!("issued {}s in the future", -age));
    }
    if age > IAT_MAX_AGE_SECS {
        return Err(format!("issued {age}s ago"));
    }
    Ok(())
}

fn invalid(e: ClaimsVerificationError) -> OidcError {
    OidcError::InvalidToken(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawSettings {
        let mut raw = RawSettings::defaults();
        for (k, v) in pairs {
            raw.set(k, *v);
        }
        raw
    }

    #[test]
    fn no_issuer_means_no_single_sign_on() {
        assert!(OidcConfig::from_settings(&raw(&[]), "https://desk.example").unwrap().is_none());
    }

    #[test]
    fn an_issuer_needs_a_client_id() {
        let e = OidcConfig::from_settings(&raw(&[("oidc_issuer", "https://id.example")]), "https://desk.example");
        assert!(e.unwrap_err().to_string().contains("PROXDESK_OIDC_CLIENT_ID"));
    }

    #[test]
    fn settings_give_the_redirect_and_the_scopes_besides_openid() {
        let c = OidcConfig::from_settings(
            &raw(&[
                ("oidc_issuer", "https://id.example"),
                ("oidc_client_id", "desk"),
                ("oidc_scopes", "openid email groups"),
            ]),
            "https://desk.example/",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.redirect_uri, "https://desk.example/login/oidc/callback");
        assert_eq!(c.post_logout_redirect_uri, "https://desk.example/login");
        assert_eq!(c.scopes, ["email", "groups"]);
        assert!(c.client_secret.is_none());
        assert_eq!(c.groups_claim, "groups");
    }

    #[test]
    fn issued_at_must_be_recent_and_not_ahead() {
        assert!(check_issued_at(Utc::now()).is_ok());
        assert!(check_issued_at(Utc::now() + chrono::Duration::seconds(30)).is_ok());
        assert!(check_issued_at(Utc::now() + chrono::Duration::hours(1)).is_err());
        assert!(check_issued_at(Utc::now() - chrono::Duration::hours(2)).is_err());
    }
}
