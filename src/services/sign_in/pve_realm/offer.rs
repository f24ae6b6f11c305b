//! Which realms the sign-in page offers, and what the person typed, put the way PVE wants it.

use super::super::{MethodChoice, PasswordMethod};
use crate::integrations::pve::wire::Realm;

/// The realm part of the settings: `pve_realms` (empty = every password realm) and `pve_default_realm`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RealmOffer {
    pub allowed: Vec<String>,
    pub default: Option<String>,
}

impl RealmOffer {
    /// The realms of `listed` a person may sign in with here: those that take passwords and are allowed,
    /// in the order of `pve_realms` when it is set, else by id (PVE lists them in no order).
    pub fn offered<'a>(&self, listed: &'a [Realm]) -> Vec<&'a Realm> {
        let mut out: Vec<&Realm> = listed.iter().filter(|r| r.takes_passwords() && self.allows(&r.realm)).collect();
        out.sort_by_key(|r| (self.allowed.iter().position(|a| *a == r.realm), r.realm.clone()));
        out
    }

    fn allows(&self, realm: &str) -> bool {
        self.allowed.is_empty() || self.allowed.iter().any(|a| a == realm)
    }

    /// The page's entries for `listed`: labelled `comment (id)`, the default realm pre-selected
    /// (`pve_default_realm` when offered, else the realm PVE marks default).
    pub fn choices(&self, listed: &[Realm]) -> Vec<MethodChoice> {
        let offered = self.offered(listed);
        let default = self
            .default
            .as_deref()
            .filter(|d| offered.iter().any(|r| r.realm == *d))
            .or_else(|| offered.iter().find(|r| r.default).map(|r| r.realm.as_str()));
        offered
            .into_iter()
            .map(|r| MethodChoice {
                value: PasswordMethod::PveRealm(r.realm.clone()).form_value(),
                label: Some(match r.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
                    Some(comment) => format!("{comment} ({})", r.realm),
                    None => r.realm.clone(),
                }),
                default: Some(r.realm.as_str()) == default,
            })
            .collect()
    }
}

/// The name to send PVE with `realm`: trimmed, and without a typed `@realm` (PVE appends the realm
/// unconditionally, so `alice@pve` with realm `pve` would become `alice@pve@pve`, pve-access.md §2.1).
/// `None` when PVE could never accept it (empty, whitespace, `:` or `/`, or the user id outside 3–64
/// characters, §2.1), so such input is refused without a call.
pub(super) fn name_for_realm<'a>(typed: &'a str, realm: &str) -> Option<&'a str> {
    let typed = typed.trim();
    let name = match typed.rsplit_once('@') {
        Some((name, suffix)) if suffix.eq_ignore_ascii_case(realm) => name,
        _ => typed,
    };
    let userid_len = name.chars().count() + 1 + realm.chars().count();
    let clean = !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == ':' || c == '/');
    (clean && (3..=64).contains(&userid_len)).then_some(name)
}

/// How a second-factor code typed by the person goes to PVE (pve-access.md §2.5): digits are a TOTP
/// code (`totp:123456`), hex groups with dashes a recovery key (`recovery:…`, as PVE prints them,
/// `1a2b-3c4d-5e6f-7a8b`). `None` for anything else: PVE could only refuse it.
pub(super) fn second_factor_response(typed: &str) -> Option<String> {
    let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if (6..=8).contains(&code.len()) && code.chars().all(|c| c.is_ascii_digit()) {
        return Some(format!("totp:{code}"));
    }
    let recovery = code.len() <= 64
        && code.contains('-')
        && code.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        && code.split('-').all(|g| !g.is_empty());
    recovery.then(|| format!("recovery:{}", code.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realm(id: &str, kind: &str, comment: Option<&str>, default: bool) -> Realm {
        Realm { realm: id.into(), kind: kind.into(), comment: comment.map(Into::into), default, tfa: None }
    }

    fn listed() -> Vec<Realm> {
        vec![
            realm("sso", "openid", Some("Single sign-on"), false),
            realm("pve", "pve", Some("Proxmox VE authentication server"), false),
            realm("corp", "ldap", Some("Staff directory"), true),
            realm("pam", "pam", Some("Linux PAM standard authentication"), false),
            realm("ad", "ad", None, false),
        ]
    }

    #[test]
    fn every_password_realm_is_offered_by_id_with_pves_default_selected() {
        let choices = RealmOffer::default().choices(&listed());
        let values: Vec<_> = choices.iter().map(|c| c.value.as_str()).collect();
        assert_eq!(values, ["pve:ad", "pve:corp", "pve:pam", "pve:pve"]);
        assert_eq!(choices[3].label.as_deref(), Some("Proxmox VE authentication server (pve)"));
        assert_eq!(choices[0].label.as_deref(), Some("ad"));
        let defaults: Vec<_> = choices.iter().filter(|c| c.default).map(|c| c.value.as_str()).collect();
        assert_eq!(defaults, ["pve:corp"]);
    }

    #[test]
    fn the_allow_list_filters_and_orders_and_the_configured_default_wins() {
        let offer =
            RealmOffer { allowed: vec!["pve".into(), "sso".into(), "corp".into()], default: Some("pve".into()) };
        let choices = offer.choices(&listed());
        let values: Vec<_> = choices.iter().map(|c| c.value.as_str()).collect();
        assert_eq!(values, ["pve:pve", "pve:corp"], "an OpenID realm is never offered");
        assert!(choices[0].default && !choices[1].default);
        // A default that is not offered falls back to PVE's.
        let offer = RealmOffer { allowed: vec![], default: Some("gone".into()) };
        assert!(offer.choices(&listed()).iter().any(|c| c.default && c.value == "pve:corp"));
    }

    #[test]
    fn a_typed_realm_suffix_is_dropped_and_impossible_names_refused() {
        assert_eq!(name_for_realm(" alice ", "pve"), Some("alice"));
        assert_eq!(name_for_realm("alice@pve", "pve"), Some("alice"));
        assert_eq!(name_for_realm("alice@PVE", "pve"), Some("alice"));
        assert_eq!(name_for_realm("alice@corp", "pve"), Some("alice@corp"), "another realm's suffix is a name");
        assert_eq!(name_for_realm("a", "pve"), Some("a"));
        assert_eq!(name_for_realm("", "pve"), None);
        assert_eq!(name_for_realm("@pve", "pve"), None);
        assert_eq!(name_for_realm("al ice", "pve"), None);
        assert_eq!(name_for_realm("a:b", "pve"), None);
        assert_eq!(name_for_realm("a/b", "pve"), None);
        assert_eq!(name_for_realm(&"x".repeat(61), "pve"), None);
        assert_eq!(name_for_realm(&"x".repeat(60), "pve").map(str::len), Some(60));
    }

    #[test]
    fn codes_become_totp_or_recovery_answers() {
        assert_eq!(second_factor_response(" 123 456 ").as_deref(), Some("totp:123456"));
        assert_eq!(second_factor_response("1a2B-3c4d-5e6f-7a8b").as_deref(), Some("recovery:1a2b-3c4d-5e6f-7a8b"));
        assert_eq!(second_factor_response("12345"), None);
        assert_eq!(second_factor_response("hello"), None);
        assert_eq!(second_factor_response("totp:123456"), None);
        assert_eq!(second_factor_response(""), None);
    }
}
