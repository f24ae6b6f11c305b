//! The simulated cluster's access-control data, as PVE keeps it in `user.cfg`, `domains.cfg`,
//! `shadow.cfg` and `priv/tfa.cfg` (pve-access.md §1, §3, §4): realms, users, groups, pools, custom
//! roles, ACL entries. Tests and the demo seed it through `SimConfig::access` and change it at run time
//! through `SimHandle::with_access`; PVE's evaluation of it lives beside this file.

/// What a realm checks passwords against (pve-access.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealmKind {
    Pam,
    Pve,
    Ldap,
    Ad,
    OpenId,
}

impl RealmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pam => "pam",
            Self::Pve => "pve",
            Self::Ldap => "ldap",
            Self::Ad => "ad",
            Self::OpenId => "openid",
        }
    }
}

/// One realm of `domains.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRealm {
    pub id: String,
    pub kind: RealmKind,
    pub comment: Option<String>,
    pub default: bool,
    /// `oath` or `yubico`: the realm enforces a second factor.
    pub tfa: Option<String>,
    /// `case-sensitive 0` (ldap/ad only): logins match the stored spelling case-insensitively.
    pub case_sensitive: bool,
    /// The directory is down: every password check of this realm fails (as PVE's 10 s connect timeout
    /// per server would, §2.4).
    pub unreachable: bool,
    /// How long a check against the unreachable directory takes before it fails (PVE: 10 s per
    /// configured server); zero by default, so the answer comes after the 401 padding alone.
    pub connect_timeout: std::time::Duration,
}

impl SimRealm {
    pub fn new(id: &str, kind: RealmKind) -> Self {
        Self {
            id: id.into(),
            kind,
            comment: None,
            default: false,
            tfa: None,
            case_sensitive: true,
            unreachable: false,
            connect_timeout: std::time::Duration::ZERO,
        }
    }
}

/// One user of `user.cfg`, with the secret its realm checks: the `shadow.cfg` password (realm `pve`),
/// the node's Linux password (`pam`), or the directory's password (`ldap`/`ad`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// `name@realm`.
    pub userid: String,
    pub enable: bool,
    /// Epoch seconds; 0 = never.
    pub expire: i64,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    /// Base32 TOTP secret: the user has a second factor (`NeedTFA`, §2.5).
    pub totp: Option<String>,
    pub comment: Option<String>,
}

impl SimUser {
    pub fn new(userid: &str, password: &str) -> Self {
        Self {
            userid: userid.into(),
            enable: true,
            expire: 0,
            firstname: None,
            lastname: None,
            email: None,
            password: Some(password.into()),
            totp: None,
            comment: None,
        }
    }
}

/// An API token of `user.cfg` (`token:<user>!<id>:…`) with its secret (`priv/token.cfg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimToken {
    /// `user@realm!tokenid`.
    pub id: String,
    pub secret: String,
    /// Privilege separation: the token only holds what its own ACL entries *and* its owner grant
    /// (§4.3); without it, exactly its owner's privileges.
    pub privsep: bool,
    /// Epoch seconds; 0 = never.
    pub expire: i64,
    pub comment: Option<String>,
}

impl SimToken {
    /// The owner's user id (`user@realm`).
    pub fn owner(&self) -> &str {
        self.id.split_once('!').map_or(self.id.as_str(), |(u, _)| u)
    }
}

/// One group of `user.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimGroup {
    pub id: String,
    pub members: Vec<String>,
    pub comment: Option<String>,
}

/// One pool (`a`, or nested `a/b`, at most 3 levels) and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPool {
    pub id: String,
    pub vmids: Vec<u64>,
    pub storages: Vec<String>,
}

/// Who an ACL entry is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclSubject {
    User(String),
    Group(String),
    /// `user@realm!tokenid`.
    Token(String),
}

/// One ACL entry: `role` for `subject` on `path`, inherited below it when `propagate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAclEntry {
    pub path: String,
    pub subject: AclSubject,
    pub role: String,
    pub propagate: bool,
}

/// Which PVE the simulator is: roles differ (pve-access.md §0, §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PveMajor {
    V8,
    #[default]
    V9,
}

/// Everything access control knows. `pam` and `pve` realms always exist (added when absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessConfig {
    pub version: PveMajor,
    pub realms: Vec<SimRealm>,
    pub users: Vec<SimUser>,
    pub groups: Vec<SimGroup>,
    pub pools: Vec<SimPool>,
    /// Custom roles: id → privileges.
    pub roles: Vec<(String, Vec<String>)>,
    pub acl: Vec<SimAclEntry>,
    /// API tokens (their owners are in `users`).
    pub tokens: Vec<SimToken>,
}

impl AccessConfig {
    /// Adds a realm.
    pub fn realm(&mut self, realm: SimRealm) -> &mut Self {
        self.realms.push(realm);
        self
    }

    /// Adds an enabled user with a password.
    pub fn user(&mut self, userid: &str, password: &str) -> &mut Self {
        self.users.push(SimUser::new(userid, password));
        self
    }

    /// Adds a group with its members.
    pub fn group(&mut self, id: &str, members: &[&str]) -> &mut Self {
        let members = members.iter().map(|m| m.to_string()).collect();
        self.groups.push(SimGroup { id: id.into(), members, comment: None });
        self
    }

    /// Adds a pool with its guests.
    pub fn pool(&mut self, id: &str, vmids: &[u64]) -> &mut Self {
        self.pools.push(SimPool { id: id.into(), vmids: vmids.to_vec(), storages: vec![] });
        self
    }

    /// Adds an ACL entry; `who` is `alice@pve` (user), `@students` (group) or `alice@pve!ci` (token).
    pub fn acl(&mut self, path: &str, who: &str, role: &str, propagate: bool) -> &mut Self {
        let subject = if let Some(g) = who.strip_prefix('@') {
            AclSubject::Group(g.into())
        } else if who.contains('!') {
            AclSubject::Token(who.into())
        } else {
            AclSubject::User(who.into())
        };
        self.acl.push(SimAclEntry { path: path.into(), subject, role: role.into(), propagate });
        self
    }

    /// Adds an API token `user@realm!id` with `secret` (privilege-separated when `privsep`).
    pub fn token(&mut self, id: &str, secret: &str, privsep: bool) -> &mut Self {
        self.tokens.push(SimToken { id: id.into(), secret: secret.into(), privsep, expire: 0, comment: None });
        self
    }

    /// Adds a custom role.
    pub fn role(&mut self, id: &str, privs: &[&str]) -> &mut Self {
        self.roles.push((id.into(), privs.iter().map(|p| p.to_string()).collect()));
        self
    }

    /// The user `userid`.
    pub fn user_ref(&self, userid: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.userid == userid)
    }

    /// The realm `id`.
    pub fn realm_ref(&self, id: &str) -> Option<&SimRealm> {
        self.realms.iter().find(|r| r.id == id)
    }

    /// The user `userid`, to change it.
    pub fn user_mut(&mut self, userid: &str) -> Option<&mut SimUser> {
        self.users.iter_mut().find(|u| u.userid == userid)
    }
}
