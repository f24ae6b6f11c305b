//! Access-control answers (pve-access.md §1–§5): realms, ticket checks, users, permissions.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// One entry of `GET /access/domains` (§1.1); the list comes unsorted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Realm {
    pub realm: String,
    /// `pam`, `pve`, `ldap`, `ad` or `openid`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub comment: Option<String>,
    /// Present (`1`) on the realm marked default only.
    #[serde(default, deserialize_with = "flag")]
    pub default: bool,
    /// `oath` or `yubico` when the realm enforces a second factor.
    #[serde(default)]
    pub tfa: Option<String>,
}

impl Realm {
    /// Whether a password posted to `/access/ticket` can sign a person in (OpenID realms refuse all
    /// passwords, §2.3).
    pub fn takes_passwords(&self) -> bool {
        matches!(self.kind.as_str(), "pam" | "pve" | "ldap" | "ad")
    }
}

/// The answer of `POST /access/ticket` (§2.5, §2.6): a full ticket, or a half-ticket asking for the
/// second factor (`NeedTFA: 1`, no `cap`).
#[derive(Debug, Clone, Deserialize)]
pub struct TicketCheckAnswer {
    /// The canonical spelling of the user id (case-insensitive realms map to the stored one, §2.1).
    pub username: String,
    #[serde(default)]
    pub ticket: Option<String>,
    #[serde(rename = "NeedTFA", default, deserialize_with = "flag")]
    pub need_tfa: bool,
}

/// `GET /access/users/{userid}` (§3.2).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserRecord {
    #[serde(default, deserialize_with = "flag")]
    pub enable: bool,
    #[serde(default)]
    pub firstname: Option<String>,
    #[serde(default)]
    pub lastname: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Sorted group ids.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `GET /access/permissions`: path → privilege → propagate flag. A privilege is granted iff its key
/// is present; the 0/1 value is informational (pool grants are 0, §4.3, §5.3).
pub type PermissionMap = BTreeMap<String, BTreeMap<String, u8>>;

/// `0`/`1`, `true`/`false`, or absent.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum F {
        Int(i64),
        Bool(bool),
        Str(String),
    }
    Ok(match Option::<F>::deserialize(d)? {
        None => false,
        Some(F::Int(n)) => n != 0,
        Some(F::Bool(b)) => b,
        Some(F::Str(s)) => s == "1" || s == "true",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realms_parse_with_and_without_their_optional_keys() {
        let list: Vec<Realm> = serde_json::from_str(
            r#"[{"realm":"pam","type":"pam","comment":"Linux PAM standard authentication"},
                {"realm":"corp","type":"ldap","default":1,"tfa":"oath"},{"realm":"sso","type":"openid"}]"#,
        )
        .unwrap();
        assert!(list[1].default && !list[0].default);
        assert_eq!(list[1].tfa.as_deref(), Some("oath"));
        assert!(list[0].takes_passwords() && list[1].takes_passwords() && !list[2].takes_passwords());
    }

    #[test]
    fn a_half_ticket_answer_says_a_second_factor_is_needed() {
        let a: TicketCheckAnswer = serde_json::from_str(
            r#"{"username":"alice@pve","ticket":"PVE:!tfa!{}:6750A1B2::sig","CSRFPreventionToken":"x","NeedTFA":1}"#,
        )
        .unwrap();
        assert!(a.need_tfa);
        let a: TicketCheckAnswer =
            serde_json::from_str(r#"{"username":"Alice@corp","ticket":"PVE:…","cap":{}}"#).unwrap();
        assert!(!a.need_tfa);
    }
}
