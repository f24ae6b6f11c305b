//! Who a person already is elsewhere: the outside identities proxdesk accepts, what they say about the
//! person, and the rules that turn that into a proxdesk account and role.

use super::roles::Role;

/// Where an outside identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityProvider {
    /// A Proxmox VE realm user (`pam`, `pve`, or an LDAP/AD realm configured in PVE), checked by PVE.
    Pve,
    /// An entry of the directory proxdesk binds to itself.
    Ldap,
    /// An OpenID Connect provider.
    Oidc,
}

impl IdentityProvider {
    pub const ALL: [IdentityProvider; 3] = [Self::Pve, Self::Ldap, Self::Oidc];

    /// Column text, session method and audit word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pve => "pve",
            Self::Ldap => "ldap",
            Self::Oidc => "oidc",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// How a browser session was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// A local account's proxdesk password.
    Password,
    External(IdentityProvider),
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::External(p) => p.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s == "password" { Some(Self::Password) } else { IdentityProvider::parse(s).map(Self::External) }
    }
}

/// What a provider vouched for, after it checked the person. Built by the provider's integration
/// only after a successful check; nothing in it is the person's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub provider: IdentityProvider,
    /// The PVE realm / the directory's host / the OpenID issuer URL.
    pub issuer: String,
    /// Stable key at the issuer.
    pub subject: String,
    /// The account name to create on a first sign-in when no account is linked (`alice@pve`; made
    /// unique by `account_name_candidates`).
    pub preferred_username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    /// Group names the provider reports for the person (PVE groups, directory groups, the OpenID groups
    /// claim), compared with the configured admin groups.
    pub groups: Vec<String>,
}

/// The configured group → role rule of one provider: members of any of `admin_groups` are admins,
/// everyone else is a user. Empty: the provider does not decide roles (new accounts are users, existing
/// ones keep theirs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMapping {
    pub admin_groups: Vec<String>,
}

impl RoleMapping {
    /// From a comma-separated list (`ops, proxdesk-admins`); blanks dropped.
    pub fn from_list(list: &str) -> Self {
        let admin_groups = list.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect();
        Self { admin_groups }
    }

    pub fn decides_roles(&self) -> bool {
        !self.admin_groups.is_empty()
    }

    /// The role `groups` give, or `None` when this mapping decides nothing. Group names compare
    /// case-insensitively (directories and PVE differ in how they spell them).
    pub fn role_for(&self, groups: &[String]) -> Option<Role> {
        if !self.decides_roles() {
            return None;
        }
        let admin = groups.iter().any(|g| self.admin_groups.iter().any(|a| a.eq_ignore_ascii_case(g)));
        Some(if admin { Role::Admin } else { Role::User })
    }
}

/// Who may sign in with a proxdesk password (local accounts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSignIn {
    /// Every enabled local account (the default).
    Everyone,
    /// Nobody but the named break-glass admin: everyone else signs in through an outside identity.
    BreakGlassOnly { admin: String },
}

impl PasswordSignIn {
    /// Whether the local account `username` may sign in with its password under this policy.
    pub fn allows(&self, username: &str) -> bool {
        match self {
            Self::Everyone => true,
            Self::BreakGlassOnly { admin } => admin == username,
        }
    }
}

/// Account names to try, in order, for a new account made from `preferred`: the name itself (lower-cased,
/// trimmed to 64 characters), then with `-2`, `-3`, … appended, so a clash never fails a first sign-in.
pub fn account_name_candidates(preferred: &str) -> impl Iterator<Item = String> {
    let base: String = preferred.trim().to_lowercase().chars().filter(|c| !c.is_whitespace()).take(60).collect();
    let base = if base.is_empty() { "user".to_owned() } else { base };
    std::iter::once(base.clone()).chain((2..).map(move |n| format!("{base}-{n}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_with_no_groups_decides_nothing() {
        assert_eq!(RoleMapping::from_list(" , ").role_for(&["ops".into()]), None);
    }

    #[test]
    fn members_of_an_admin_group_are_admins_whatever_the_case() {
        let m = RoleMapping::from_list("Ops, proxdesk-admins");
        assert_eq!(m.role_for(&["ops".into()]), Some(Role::Admin));
        assert_eq!(m.role_for(&["students".into()]), Some(Role::User));
        assert_eq!(m.role_for(&[]), Some(Role::User));
    }

    #[test]
    fn break_glass_only_lets_the_named_admin_through_and_nobody_else() {
        let p = PasswordSignIn::BreakGlassOnly { admin: "root".into() };
        assert!(p.allows("root"));
        assert!(!p.allows("alice"));
        assert!(PasswordSignIn::Everyone.allows("alice"));
    }

    #[test]
    fn account_names_fall_back_to_numbered_ones() {
        let names: Vec<_> = account_name_candidates(" Alice@PVE ").take(3).collect();
        assert_eq!(names, ["alice@pve", "alice@pve-2", "alice@pve-3"]);
        assert_eq!(account_name_candidates("").next().unwrap(), "user");
    }

    #[test]
    fn methods_and_providers_round_trip_through_their_text() {
        for p in IdentityProvider::ALL {
            assert_eq!(IdentityProvider::parse(p.as_str()), Some(p));
            assert_eq!(SignInMethod::parse(p.as_str()), Some(SignInMethod::External(p)));
        }
        assert_eq!(SignInMethod::parse("password"), Some(SignInMethod::Password));
        assert_eq!(SignInMethod::parse("saml"), None);
    }
}
