//! The provider's discovery document and signing keys: fetched on first use (a provider that is down
//! when proxdesk starts stops nothing), kept, and the keys fetched again when a token names a key the
//! set does not hold (the provider rotated its keys), at most once a minute.

use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    Client, ClientId, ClientSecret, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdTokenFields, IssuerUrl, JsonWebKeySet, ProviderMetadataWithLogout, RedirectUrl, StandardErrorResponse,
    StandardTokenResponse,
};
use tokio::sync::Mutex;

use super::claims::ExtraClaims;
use super::http::HttpClient;
use super::{OidcConfig, OidcError};

/// The ID token fields of a token answer, with proxdesk's extra claims.
pub(super) type IdFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// The token endpoint's answer.
pub(super) type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;

/// An `openidconnect` client built from discovery: authorization endpoint known, token and userinfo
/// endpoints as the provider advertises them.
pub(super) type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Unknown keys fetch the key set again at most this often (a token naming keys that do not exist must
/// not turn proxdesk into a flood of requests to the provider).
pub(super) const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// One discovery result: the metadata (with the end-session endpoint when advertised) and the client.
pub(super) struct Discovered {
    pub metadata: ProviderMetadataWithLogout,
    pub client: OidcClient,
}

/// The cached discovery of one provider.
pub(super) struct Discovery {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    redirect: RedirectUrl,
    current: Mutex<Option<Arc<Discovered>>>,
    last_key_refresh: SyncMutex<Option<Instant>>,
}

impl Discovery {
    pub fn new(config: &OidcConfig) -> Result<Self, OidcError> {
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| OidcError::Config(format!("issuer: {e}")))?;
        let redirect = RedirectUrl::new(config.redirect_uri.clone())
            .map_err(|e| OidcError::Config(format!("redirect URI: {e}")))?;
        Ok(Self {
            issuer,
            client_id: ClientId::new(config.client_id.clone()),
            client_secret: config.client_secret.as_ref().map(|s| ClientSecret::new(s.expose().clone())),
            redirect,
            current: Mutex::new(None),
            last_key_refresh: SyncMutex::new(None),
        })
    }

    /// The cached discovery, fetched now when there is none yet. Concurrent first uses share one fetch.
    pub async fn get(&self, http: &HttpClient) -> Result<Arc<Discovered>, OidcError> {
        let mut current = self.current.lock().await;
        if let Some(found) = current.as_ref() {
            return Ok(found.clone());
        }
        let metadata = ProviderMetadataWithLogout::discover_async(self.issuer.clone(), http)
            .await
            .map_err(OidcError::from_discovery)?;
        let fresh = Arc::new(self.build(metadata));
        *current = Some(fresh.clone());
        tracing::info!(issuer = %self.issuer.as_str(), "OpenID provider discovered");
        Ok(fresh)
    }

    /// Fetches the key set again because a token named a key `stale` does not hold. `None` when a
    /// refresh happened less than [`KEY_REFRESH_INTERVAL`] ago (the token is then refused).
    pub async fn refresh_keys(
        &self,
        http: &HttpClient,
        stale: &Arc<Discovered>,
    ) -> Result<Option<Arc<Discovered>>, OidcError> {
        let mut current = self.current.lock().await;
        if let Some(now) = current.as_ref()
            && !Arc::ptr_eq(now, stale)
        {
            // Another sign-in refreshed meanwhile.
            return Ok(Some(now.clone()));
        }
        {
            let mut last = self.last_key_refresh.lock().expect("not poisoned");
            if last.is_some_and(|at| at.elapsed() < KEY_REFRESH_INTERVAL) {
                return Ok(None);
            }
            *last = Some(Instant::now());
        }
        let keys =
            JsonWebKeySet::fetch_async(stale.metadata.jwks_uri(), http).await.map_err(OidcError::from_discovery)?;
        let metadata = stale.metadata.clone().set_jwks(keys);
        let fresh = Arc::new(self.build(metadata));
        *current = Some(fresh.clone());
        tracing::info!(issuer = %self.issuer.as_str(), "OpenID provider keys fetched again (a token named an unknown key)");
        Ok(Some(fresh))
    }

    fn build(&self, metadata: ProviderMetadataWithLogout) -> Discovered {
        let client =
            OidcClient::from_provider_metadata(metadata.clone(), self.client_id.clone(), self.client_secret.clone())
                .set_redirect_uri(self.redirect.clone());
        Discovered { metadata, client }
    }
}
