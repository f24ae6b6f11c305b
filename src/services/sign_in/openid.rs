//! Signing in through an OpenID Connect provider (authorization code flow with PKCE).

use crate::config::RawSettings;

/// OpenID Connect sign-in, when `oidc_issuer` is set.
pub struct OpenIdSignIn {
    label: String,
}

impl OpenIdSignIn {
    pub fn from_settings(_raw: &RawSettings, _public_url: &str) -> Result<Option<Self>, String> {
        Ok(None)
    }

    /// The sign-in button's text (`oidc_label`).
    pub fn label(&self) -> &str {
        &self.label
    }
}
