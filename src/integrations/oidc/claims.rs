//! What an OpenID provider says about the person, read from a validated ID token (and the userinfo
//! answer for what the token leaves out).

use openidconnect::core::CoreGenderClaim;
use openidconnect::{AdditionalClaims, IdTokenClaims, UserInfoClaims};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The claims beyond the standard ones (the groups claim is named by `oidc_groups_claim`, so it is
/// looked up by name rather than typed).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl AdditionalClaims for ExtraClaims {}

/// The claims a person is described by, whether they come from the ID token or from userinfo.
pub trait ProfileClaims {
    fn subject_text(&self) -> String;
    fn username(&self) -> Option<String>;
    fn display_name(&self) -> Option<String>;
    fn email_address(&self) -> Option<String>;
    fn email_verified_flag(&self) -> Option<bool>;
    fn extra(&self) -> &ExtraClaims;
}

macro_rules! profile_claims {
    ($t:ty) => {
        impl ProfileClaims for $t {
            fn subject_text(&self) -> String {
                self.subject().to_string()
            }
            fn username(&self) -> Option<String> {
                self.preferred_username().map(|u| u.to_string())
            }
            fn display_name(&self) -> Option<String> {
                self.name().and_then(|n| n.get(None)).map(|n| n.to_string())
            }
            fn email_address(&self) -> Option<String> {
                self.email().map(|e| e.to_string())
            }
            fn email_verified_flag(&self) -> Option<bool> {
                self.email_verified()
            }
            fn extra(&self) -> &ExtraClaims {
                self.additional_claims()
            }
        }
    };
}

profile_claims!(IdTokenClaims<ExtraClaims, CoreGenderClaim>);
profile_claims!(UserInfoClaims<ExtraClaims, CoreGenderClaim>);

/// Groups beyond this many are not read (a claim is the provider's input, and inputs are bounded).
const MAX_GROUPS: usize = 1000;

/// The person an OpenID provider vouched for, after the ID token was validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The provider's `iss`.
    pub issuer: String,
    /// `sub`: the person's stable key at the provider.
    pub subject: String,
    /// `preferred_username` (see [`Person::account_name`]).
    pub preferred_username: Option<String>,
    /// `name`.
    pub name: Option<String>,
    pub email: Option<String>,
    /// `email_verified`; `false` when the provider does not say.
    pub email_verified: bool,
    /// The groups claim (an array of strings; one string counts as one group); `None` when absent.
    pub groups: Option<Vec<String>>,
}

impl Person {
    /// From the (validated) ID token's claims.
    pub fn from_claims(issuer: &str, claims: &impl ProfileClaims, groups_claim: &str) -> Self {
        let email = claims.email_address();
        Person {
            issuer: issuer.to_owned(),
            subject: claims.subject_text(),
            preferred_username: claims.username(),
            name: claims.display_name(),
            email_verified: email.is_some() && claims.email_verified_flag().unwrap_or(false),
            email,
            groups: groups_of(claims.extra().rest.get(groups_claim)),
        }
    }

    /// Fills what the ID token left out from the userinfo answer (of the same subject: the caller
    /// asked for it with the token's `sub`, and `openidconnect` checks it).
    pub fn complete_with(&mut self, info: &impl ProfileClaims, groups_claim: &str) {
        if self.groups.is_none() {
            self.groups = groups_of(info.extra().rest.get(groups_claim));
        }
        if self.name.is_none() {
            self.name = info.display_name();
        }
        if self.email.is_none()
            && let Some(email) = info.email_address()
        {
            self.email = Some(email);
            self.email_verified = info.email_verified_flag().unwrap_or(false);
        }
        if self.preferred_username.is_none() {
            self.preferred_username = info.username();
        }
    }

    /// The name for an account made on a first sign-in: `preferred_username`, else the e-mail
    /// address's local part, else `sub`.
    pub fn account_name(&self) -> String {
        let from_email = self.email.as_deref().and_then(|e| e.split_once('@')).map(|(local, _)| local);
        [self.preferred_username.as_deref(), from_email]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|s| !s.is_empty())
            .unwrap_or(&self.subject)
            .to_owned()
    }
}

/// The longest `sub` OpenID Connect Core (§2) allows, in ASCII characters.
const MAX_SUBJECT_LEN: usize = 255;

/// A subject proxdesk can key an account on: not blank (an empty `sub` would make every such token the same
/// person) and within the standard's 255 characters (the column and the account name are bounded).
pub fn check_subject(subject: &openidconnect::SubjectIdentifier) -> Result<(), String> {
    let text = subject.as_str();
    if text.trim().is_empty() {
        return Err("the ID token names no subject".into());
    }
    if text.len() > MAX_SUBJECT_LEN {
        return Err(format!("the ID token's subject is longer than {MAX_SUBJECT_LEN} characters"));
    }
    Ok(())
}

fn groups_of(claim: Option<&Value>) -> Option<Vec<String>> {
    match claim? {
        Value::Array(items) => {
            Some(items.iter().filter_map(Value::as_str).take(MAX_GROUPS).map(str::to_owned).collect())
        }
        Value::String(one) => Some(vec![one.clone()]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn person(mut token: Value) -> Person {
        let fixed = json!({"iss": "https://id.example", "aud": "desk", "exp": 2_000_000_000, "iat": 1_000_000_000});
        for (k, v) in fixed.as_object().unwrap() {
            token[k] = v.clone();
        }
        let claims: IdTokenClaims<ExtraClaims, CoreGenderClaim> = serde_json::from_value(token).unwrap();
        Person::from_claims("https://id.example", &claims, "groups")
    }

    #[test]
    fn a_blank_or_overlong_subject_is_refused() {
        use openidconnect::SubjectIdentifier as Sub;
        assert!(check_subject(&Sub::new("s1".into())).is_ok());
        assert!(check_subject(&Sub::new("s".repeat(255))).is_ok());
        assert!(check_subject(&Sub::new(String::new())).is_err());
        assert!(check_subject(&Sub::new("  ".into())).is_err());
        assert!(check_subject(&Sub::new("s".repeat(256))).is_err());
    }

    #[test]
    fn the_account_name_falls_back_to_the_mail_local_part_then_the_subject() {
        let p = person(json!({"sub": "s1", "preferred_username": "alice", "email": "a@x.org"}));
        assert_eq!(p.account_name(), "alice");
        let p = person(json!({"sub": "s1", "email": "bob@x.org"}));
        assert_eq!(p.account_name(), "bob");
        let p = person(json!({"sub": "s1", "preferred_username": " "}));
        assert_eq!(p.account_name(), "s1");
    }

    #[test]
    fn an_address_is_verified_only_when_the_provider_says_so() {
        assert!(!person(json!({"sub": "s", "email": "a@x.org"})).email_verified);
        assert!(!person(json!({"sub": "s", "email": "a@x.org", "email_verified": false})).email_verified);
        assert!(person(json!({"sub": "s", "email": "a@x.org", "email_verified": true})).email_verified);
        assert!(!person(json!({"sub": "s", "email_verified": true})).email_verified);
    }

    #[test]
    fn groups_are_strings_of_the_configured_claim() {
        let p = person(json!({"sub": "s", "groups": ["ops", 3, "dev"]}));
        assert_eq!(p.groups, Some(vec!["ops".to_owned(), "dev".to_owned()]));
        assert_eq!(person(json!({"sub": "s", "groups": "ops"})).groups, Some(vec!["ops".to_owned()]));
        assert_eq!(person(json!({"sub": "s"})).groups, None);
    }

    #[test]
    fn userinfo_fills_only_what_the_token_left_out() {
        let mut p = person(json!({"sub": "s", "name": "Token Name"}));
        assert_eq!(p.account_name(), "s");
        let info = json!({"sub": "s", "name": "Other", "preferred_username": "al", "email": "al@x.org",
            "email_verified": true, "groups": ["ops"]});
        let info: UserInfoClaims<ExtraClaims, CoreGenderClaim> =
            UserInfoClaims::from_json::<std::io::Error>(info.to_string().as_bytes(), None).unwrap();
        p.complete_with(&info, "groups");
        assert_eq!(p.name.as_deref(), Some("Token Name"));
        assert_eq!(p.account_name(), "al");
        assert_eq!(p.email.as_deref(), Some("al@x.org"));
        assert!(p.email_verified);
        assert_eq!(p.groups, Some(vec!["ops".to_owned()]));
    }

    use proptest::prelude::*;

    fn claim() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,10}|[ a-z]{0,4}@[a-z.@]{0,6}".prop_map(Value::from),
            prop::collection::vec(
                prop_oneof!["\\PC{0,6}".prop_map(Value::from), any::<i64>().prop_map(Value::from)],
                0..4
            )
            .prop_map(Value::Array),
        ]
    }

    proptest! {
        /// Whatever a provider puts in the claims, reading them fails or gives a person whose account
        /// name is a trimmed, non-blank claim or the subject, whose groups are strings, and whose address
        /// counts as verified only when there is one.
        #[test]
        fn fuzz_claims_map_to_an_account(
            sub in "\\PC{1,10}", username in claim(), email in claim(), verified in claim(), groups in claim(),
        ) {
            let token = json!({"sub": sub, "preferred_username": username, "email": email, "email_verified": verified,
                "groups": groups, "iss": "https://id.example", "aud": "desk", "exp": 2_000_000_000, "iat": 1_000_000_000});
            let Ok(claims) = serde_json::from_value::<IdTokenClaims<ExtraClaims, CoreGenderClaim>>(token) else {
                return Ok(());
            };
            let p = Person::from_claims("https://id.example", &claims, "groups");
            let name = p.account_name();
            prop_assert!(name == p.subject || (!name.is_empty() && name.trim() == name), "{:?}", name);
            prop_assert!(!p.email_verified || p.email.is_some());
            if let Some(g) = &p.groups {
                prop_assert!(g.len() <= MAX_GROUPS);
            }
        }
    }
}
