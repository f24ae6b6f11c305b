//! Signing in with a Proxmox VE realm account (pam, pve, or an LDAP/AD realm configured in PVE): PVE
//! checks the password (`POST /access/ticket`), the ticket is dropped at once, and the person's PVE
//! groups decide their proxdesk role through `pve_admin_groups`. proxdesk never calls PVE as the person:
//! their record is read with proxdesk's own token.

mod offer;
mod realms;

use chrono::Duration;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};

use super::{MethodChoice, Outcome};
use crate::config::RawSettings;
use crate::domain::identity::{IdentityProvider, RoleMapping, VerifiedIdentity};
use crate::integrations::pve::{self, PasswordCheck, PveError};
use crate::secrets::{Secret, SecretKey};
use crate::services::auth::NewSession;
use crate::services::throttle;
use crate::services::{ServiceError, identities, pending_sign_ins};
use offer::{RealmOffer, name_for_realm, second_factor_response};
use realms::RealmCache;

/// How long a person has to type their second factor.
const SECOND_FACTOR_MINUTES: i64 = 5;

/// Realm sign-in, when `pve_realm_login` is on and a cluster is configured.
pub struct RealmSignIn {
    client: pve::Client,
    realms: RealmCache,
    offer: RealmOffer,
    mapping: RoleMapping,
}

/// A sign-in waiting for its second factor, sealed in `pending_sign_ins` (never shown to anyone).
#[derive(Serialize, Deserialize)]
struct AwaitingSecondFactor {
    /// The throttling key of the first step (`name@realm`).
    account: String,
    /// The canonical user id PVE answered.
    username: String,
    realm: String,
    /// PVE's half-ticket: the second step is checked against it.
    challenge: String,
}

impl RealmSignIn {
    /// From `pve_realm_login`, `pve_realms`, `pve_default_realm`, `pve_admin_groups` and
    /// `pve_realm_cache_secs`; `None` when realm sign-in is off. An error names the setting at fault.
    pub fn from_settings(raw: &RawSettings, pve: Option<&pve::Client>) -> Result<Option<Self>, String> {
        if !raw.parse::<bool>("pve_realm_login").map_err(|e| e.to_string())?.unwrap_or(false) {
            return Ok(None);
        }
        let Some(client) = pve else {
            return Err(
                "PROXDESK_PVE_REALM_LOGIN is on, but no Proxmox VE cluster is configured (PROXDESK_PVE_URL)".into()
            );
        };
        let allowed: Vec<String> = raw
            .get("pve_realms")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        let default = raw.get("pve_default_realm").map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        for (key, id) in
            allowed.iter().map(|r| ("PVE_REALMS", r)).chain(default.iter().map(|r| ("PVE_DEFAULT_REALM", r)))
        {
            if !valid_realm_id(id) {
                return Err(format!(
                    "PROXDESK_{key}: {id:?} is not a realm id (a letter, then letters, digits, . - _)"
                ));
            }
        }
        let cache_secs: u64 = raw.parse("pve_realm_cache_secs").map_err(|e| e.to_string())?.unwrap_or(300);
        if cache_secs > 86_400 {
            return Err("PROXDESK_PVE_REALM_CACHE_SECS: at most 86400".into());
        }
        Ok(Some(Self {
            client: client.clone(),
            realms: RealmCache::new(client.clone(), std::time::Duration::from_secs(cache_secs)),
            offer: RealmOffer { allowed, default },
            mapping: RoleMapping::from_list(raw.get("pve_admin_groups").unwrap_or("")),
        }))
    }

    /// The realms to offer on the sign-in page (cached; none while PVE has never answered).
    pub async fn choices(&self) -> Vec<MethodChoice> {
        match self.realms.list().await {
            Some(listed) => self.offer.choices(&listed),
            None => vec![],
        }
    }

    /// Checks `username`'s password in `realm` with PVE and signs them in as `name@realm` (or asks for
    /// their second factor). A realm not offered here is `NotFound`; a PVE that does not answer,
    /// `Unavailable`. PVE's ~3 s delay of a refusal only holds up this sign-in.
    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(skip(self, db, key, password), fields(realm = %realm))]
    pub async fn sign_in(
        &self,
        db: &DatabaseConnection,
        key: &SecretKey,
        realm: &str,
        username: &str,
        password: &Secret<String>,
        client_addr: &str,
        session_hours: i64,
    ) -> Result<Outcome, ServiceError> {
        let Some(listed) = self.realms.list().await else {
            return Err(ServiceError::Unavailable("the Proxmox VE realm list is not known yet".into()));
        };
        if !self.offer.offered(&listed).iter().any(|r| r.realm == realm) {
            return Err(ServiceError::NotFound);
        }
        let name = name_for_realm(username, realm);
        let account = format!("{}@{realm}", name.unwrap_or(username.trim()));
        let attempt = throttle::attempt(db, &account, client_addr).await?;
        // PVE never accepts an empty password or a malformed user id (pve-access.md §2.1, §2.3).
        let Some(name) = name.filter(|_| !password.expose().is_empty()) else {
            return refuse(&account);
        };
        match self.client.check_password(name, realm, password).await {
            Ok(PasswordCheck::Valid { username }) => {
                attempt.succeeded(db).await?;
                self.finish(db, realm, &username, session_hours).await.map(Outcome::Signed)
            }
            Ok(PasswordCheck::NeedsSecondFactor { username, challenge }) => {
                // The password was right, but the count does not start over before the second factor
                // is: a guesser who knows the password would otherwise get fresh tries at the code.
                attempt.give_back(db).await?;
                let waiting = AwaitingSecondFactor {
                    account,
                    username,
                    realm: realm.to_owned(),
                    challenge: challenge.expose().clone(),
                };
                let pending = pending_sign_ins::create(
                    db,
                    key,
                    IdentityProvider::Pve,
                    &waiting,
                    Duration::minutes(SECOND_FACTOR_MINUTES),
                )
                .await?;
                Ok(Outcome::SecondFactor { pending })
            }
            Ok(PasswordCheck::Refused) => refuse(&account),
            Err(e) => {
                attempt.give_back(db).await?;
                Err(unavailable(&account, &e))
            }
        }
    }

    /// The second step of a sign-in that asked for one: `code` is a TOTP code or a recovery key. A
    /// wrong code gives `Outcome::SecondFactor` with a fresh `pending` (PVE's half-ticket is still good);
    /// an unknown, expired or already used `pending` is `NotFound`.
    #[tracing::instrument(skip_all)]
    pub async fn second_factor(
        &self,
        db: &DatabaseConnection,
        key: &SecretKey,
        pending: &Secret<String>,
        code: &Secret<String>,
        client_addr: &str,
        session_hours: i64,
    ) -> Result<Outcome, ServiceError> {
        let taken: Option<AwaitingSecondFactor> =
            pending_sign_ins::take(db, key, IdentityProvider::Pve, pending.expose()).await?;
        let Some(waiting) = taken else {
            return Err(ServiceError::NotFound);
        };
        let attempt = throttle::attempt(db, &waiting.account, client_addr).await?;
        let Some(response) = second_factor_response(code.expose()) else {
            return self.ask_again(db, key, waiting).await;
        };
        let challenge = Secret::new(waiting.challenge.clone());
        match self.client.check_second_factor(&waiting.username, &challenge, &Secret::new(response)).await {
            Ok(PasswordCheck::Valid { username }) => {
                attempt.succeeded(db).await?;
                self.finish(db, &waiting.realm, &username, session_hours).await.map(Outcome::Signed)
            }
            Ok(PasswordCheck::Refused | PasswordCheck::NeedsSecondFactor { .. }) => {
                self.ask_again(db, key, waiting).await
            }
            Err(e) => {
                attempt.give_back(db).await?;
                Err(unavailable(&waiting.account, &e))
            }
        }
    }

    /// A wrong second factor (its attempt stays counted): the same half-done sign-in stored again under a
    /// new token.
    async fn ask_again(
        &self,
        db: &DatabaseConnection,
        key: &SecretKey,
        waiting: AwaitingSecondFactor,
    ) -> Result<Outcome, ServiceError> {
        tracing::info!(account = %waiting.account, "Proxmox VE second factor refused");
        let ttl = Duration::minutes(SECOND_FACTOR_MINUTES);
        let pending = pending_sign_ins::create(db, key, IdentityProvider::Pve, &waiting, ttl).await?;
        Ok(Outcome::SecondFactor { pending })
    }

    /// PVE vouched for `userid`: reads their record with proxdesk's token (groups, name, e-mail) and
    /// signs them in. Without the record no role is guessed: with an admin-group mapping that is
    /// `Unavailable`, without one the sign-in goes on with no groups.
    async fn finish(
        &self,
        db: &DatabaseConnection,
        realm: &str,
        userid: &str,
        session_hours: i64,
    ) -> Result<NewSession, ServiceError> {
        let record = match self.client.user_record(userid).await {
            Ok(record) => record,
            Err(e) if self.mapping.decides_roles() => {
                tracing::warn!(%userid, error = %e, "could not read the PVE user's groups; sign-in refused");
                return Err(ServiceError::Unavailable("the Proxmox VE user record could not be read".into()));
            }
            Err(e) => {
                tracing::warn!(%userid, error = %e, "could not read the PVE user's record; signing in without it");
                Default::default()
            }
        };
        let nonblank = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let name = [record.firstname, record.lastname].into_iter().filter_map(nonblank).collect::<Vec<_>>().join(" ");
        let who = VerifiedIdentity {
            provider: IdentityProvider::Pve,
            // proxdesk talks to one cluster: the realm names the issuer, whatever the cluster's URL.
            issuer: realm.to_owned(),
            subject: userid.to_owned(),
            preferred_username: userid.to_owned(),
            display_name: Some(name).filter(|n| !n.is_empty()),
            email: nonblank(record.email),
            // PVE stores whatever address was typed; it never verifies one.
            email_verified: false,
            groups: record.groups,
        };
        identities::sign_in(db, &who, &self.mapping, session_hours).await
    }
}

/// A refused password (its attempt stays counted), logged without the password.
fn refuse(account: &str) -> Result<Outcome, ServiceError> {
    tracing::info!(%account, "Proxmox VE realm sign-in refused");
    crate::metrics::sign_in_failed(crate::metrics::labels::SignInMethod::PveRealm);
    Err(ServiceError::Unauthenticated)
}

/// PVE did not answer the check (or answered something other than yes or no).
fn unavailable(account: &str, e: &PveError) -> ServiceError {
    // A garbled answer could hold a ticket: its text is not logged.
    let error = if matches!(e, PveError::Decode(_)) { "unexpected answer".to_owned() } else { e.to_string() };
    tracing::warn!(%account, %error, "Proxmox VE did not check a realm sign-in");
    ServiceError::Unavailable("Proxmox VE did not answer".into())
}

/// PVE's realm id format (`pve-realm`): a letter, then at least one letter, digit, `.`, `-` or `_`.
fn valid_realm_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && id.len() >= 2
        && id.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
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
    fn realm_sign_in_is_off_unless_asked_for_and_needs_a_cluster() {
        assert!(RealmSignIn::from_settings(&raw(&[]), None).unwrap().is_none());
        let err = RealmSignIn::from_settings(&raw(&[("pve_realm_login", "true")]), None).err().unwrap();
        assert!(err.contains("PROXDESK_PVE_REALM_LOGIN"), "{err}");
        let err = RealmSignIn::from_settings(&raw(&[("pve_realm_login", "maybe")]), None).err().unwrap();
        assert!(err.contains("PROXDESK_PVE_REALM_LOGIN"), "{err}");
    }

    #[test]
    fn realm_ids_follow_pves_format() {
        assert!(valid_realm_id("pve") && valid_realm_id("corp.ad-1_x"));
        assert!(!valid_realm_id("p") && !valid_realm_id("1pve") && !valid_realm_id("co rp"));
        assert!(!valid_realm_id(&"a".repeat(33)));
    }
}
