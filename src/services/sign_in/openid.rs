//! Signing in through an OpenID Connect provider (authorization code flow with PKCE).
//!
//! `begin` keeps the flow's secrets (PKCE verifier, nonce, where to go next) as a pending sign-in
//! whose single-use token is the `state` sent to the provider; `finish` takes it back, lets the
//! provider integration exchange the code and validate the ID token, and signs the person in through
//! `identities::sign_in` with the groups claim → role mapping.

use chrono::Duration;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};

use super::super::auth::NewSession;
use super::super::{ServiceError, identities, pending_sign_ins};
use crate::config::RawSettings;
use crate::domain::FieldErrors;
use crate::domain::identity::{IdentityProvider, RoleMapping, VerifiedIdentity};
use crate::integrations::oidc::{FlowSecrets, OidcConfig, OidcError, OpenIdProvider, Person};
use crate::secrets::{Secret, SecretKey, sha256_hex};

/// How long a person has to come back from the provider.
pub const FLOW_MINUTES: i64 = 10;

/// OpenID Connect sign-in, when `oidc_issuer` is set.
pub struct OpenIdSignIn {
    label: String,
    provider: OpenIdProvider,
    mapping: RoleMapping,
}

/// What the pending sign-in keeps between the redirect and the callback (sealed at rest).
#[derive(Serialize, Deserialize)]
struct Pending {
    pkce_verifier: String,
    nonce: String,
    next: String,
}

/// What the browser keeps to sign out at the provider later: the ID token, bound to the session it
/// opened (sealed; only proxdesk can read it).
#[derive(Serialize, Deserialize)]
struct LogoutHint {
    session: String,
    id_token: String,
}

/// A started sign-in: send the browser to `redirect_to`, and remember `state` in this browser.
pub struct Started {
    pub redirect_to: String,
    pub state: Secret<String>,
}

/// A finished sign-in.
pub struct Finished {
    pub session: NewSession,
    /// Where the person was going (a local path, or empty).
    pub next: String,
    /// The sealed logout hint for this session (see [`OpenIdSignIn::logout_redirect`]).
    pub logout_hint: String,
}

impl OpenIdSignIn {
    pub fn from_settings(raw: &RawSettings, public_url: &str) -> Result<Option<Self>, String> {
        let Some(config) = OidcConfig::from_settings(raw, public_url).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let provider = OpenIdProvider::new(config).map_err(|e| e.to_string())?;
        Ok(Some(Self {
            label: raw.get("oidc_label").unwrap_or("Single sign-on").to_owned(),
            provider,
            mapping: RoleMapping::from_list(raw.get("oidc_admin_groups").unwrap_or("")),
        }))
    }

    /// The sign-in button's text (`oidc_label`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// `scheme://host[:port]` of the provider (what the pages' `form-action` must allow for signing out
    /// there).
    pub fn origin(&self) -> String {
        url::Url::parse(&self.provider.config().issuer).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
    }

    /// Starts a sign-in: discovery (kept after the first time), a pending sign-in holding fresh PKCE
    /// and nonce secrets and `next`, and the provider's URL carrying its token as `state`. A provider
    /// that does not answer is `Unavailable` (local accounts still work).
    #[tracing::instrument(skip_all)]
    pub async fn begin(&self, db: &DatabaseConnection, key: &SecretKey, next: &str) -> Result<Started, ServiceError> {
        self.provider.discover().await.map_err(service_error)?;
        let flow = FlowSecrets::new_random();
        let pending = Pending {
            pkce_verifier: flow.pkce_verifier.expose().clone(),
            nonce: flow.nonce.expose().clone(),
            next: next.to_owned(),
        };
        let ttl = Duration::minutes(FLOW_MINUTES);
        let state = pending_sign_ins::create(db, key, IdentityProvider::Oidc, &pending, ttl).await?;
        let redirect_to = self.provider.authorization_url(&state, &flow).await.map_err(service_error)?;
        Ok(Started { redirect_to, state })
    }

    /// Finishes the sign-in `state` names with the provider's `code`. An unknown, expired or already
    /// used `state` is `Invalid` (field `state`); a refused code or an unacceptable ID token is
    /// `Unauthenticated`; a provider that does not answer is `Unavailable`.
    #[tracing::instrument(skip_all)]
    pub async fn finish(
        &self,
        db: &DatabaseConnection,
        key: &SecretKey,
        state: &str,
        code: &str,
        session_hours: i64,
    ) -> Result<Finished, ServiceError> {
        let Some(pending) = pending_sign_ins::take::<Pending>(db, key, IdentityProvider::Oidc, state).await? else {
            tracing::info!("OpenID sign-in refused: unknown, expired or already used state");
            return Err(state_invalid());
        };
        if code.is_empty() || code.len() > 2048 {
            tracing::info!("OpenID sign-in refused: no usable code");
            crate::metrics::sign_in_failed(crate::metrics::labels::SignInMethod::OpenId);
            return Err(ServiceError::Unauthenticated);
        }
        let flow = FlowSecrets { pkce_verifier: Secret::new(pending.pkce_verifier), nonce: Secret::new(pending.nonce) };
        let signed = self.provider.finish(code, &flow).await.map_err(service_error)?;
        let who = verified_identity(signed.person);
        let session = identities::sign_in(db, &who, &self.mapping, session_hours).await?;
        let hint =
            LogoutHint { session: sha256_hex(session.token.expose()), id_token: signed.id_token.expose().clone() };
        let hint = serde_json::to_string(&hint).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(Finished { session, next: pending.next, logout_hint: key.seal(&hint) })
    }

    /// Forgets a started sign-in without finishing it (the person cancelled at the provider).
    pub async fn abandon(&self, db: &DatabaseConnection, key: &SecretKey, state: &str) -> Result<(), ServiceError> {
        pending_sign_ins::take::<serde_json::Value>(db, key, IdentityProvider::Oidc, state).await.map(|_| ())
    }

    /// After the proxdesk session `session_token` ended: the provider's end-session URL (with
    /// `id_token_hint` and `post_logout_redirect_uri`) when `hint` was issued for that very session and
    /// the provider advertises one. Anything else — a hint of another session, a provider that does not
    /// answer — is `None`: the proxdesk session is over either way.
    pub async fn logout_redirect(&self, key: &SecretKey, hint: &str, session_token: &str) -> Option<String> {
        let opened = key.open(hint).ok()?;
        let hint: LogoutHint = serde_json::from_str(opened.expose()).ok()?;
        if hint.session != sha256_hex(session_token) {
            return None;
        }
        match self.provider.logout_url(&Secret::new(hint.id_token)).await {
            Ok(url) => url,
            Err(e) => {
                tracing::warn!(error = %e, "no sign-out at the OpenID provider");
                None
            }
        }
    }
}

fn state_invalid() -> ServiceError {
    let mut errors = FieldErrors::default();
    errors.push(crate::domain::FieldError::new("state", "login.oidc_expired"));
    ServiceError::Invalid(errors)
}

/// Every failure is logged here, without tokens (the integration's errors carry none).
fn service_error(e: OidcError) -> ServiceError {
    match e {
        OidcError::Unreachable(_) | OidcError::Discovery(_) | OidcError::Config(_) => {
            tracing::warn!(error = %e, "OpenID sign-in unavailable");
            ServiceError::Unavailable(e.to_string())
        }
        OidcError::Refused(_) | OidcError::InvalidToken(_) => {
            tracing::warn!(error = %e, "OpenID sign-in refused");
            crate::metrics::sign_in_failed(crate::metrics::labels::SignInMethod::OpenId);
            ServiceError::Unauthenticated
        }
    }
}

fn verified_identity(person: Person) -> VerifiedIdentity {
    VerifiedIdentity {
        provider: IdentityProvider::Oidc,
        preferred_username: person.account_name(),
        issuer: person.issuer,
        subject: person.subject,
        display_name: person.name,
        email: person.email,
        email_verified: person.email_verified,
        groups: person.groups.unwrap_or_default(),
    }
}
