//! PVE's permission evaluation (pve-access.md §4, §5.2): `roles()` walking the ACL tree,
//! `permissions()` adding pool roles and intersecting privilege-separated tokens with their owner,
//! the `/access/permissions` dump and the `cap` of a login answer. Ported from the behaviour of
//! pve-access-control's `PVE::AccessControl::roles` and `PVE::RPCEnvironment::{compile_acl_path,
//! permissions, get_effective_permissions, compute_api_permission}` (9.1.1).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::{AccessConfig, AclSubject};
use super::roles::{Privs, builtin_roles, valid_privs};

/// Roles on a path: role → propagate flag.
pub type Roles = BTreeMap<String, bool>;
/// Privileges on a path: privilege → propagate flag (0/1); a privilege is granted iff present.
pub type PrivMap = BTreeMap<String, u8>;

const ROOT: &str = "root@pam";

/// A pool's members, from `user.cfg` or from guests created into the pool.
#[derive(Debug, Clone, Default)]
pub struct PoolMembers {
    pub id: String,
    pub vmids: BTreeSet<u64>,
    pub storages: BTreeSet<String>,
}

/// Access control as one request sees it: the configuration, every role's privileges and the pools.
pub struct AccessView {
    pub cfg: AccessConfig,
    roles: HashMap<String, Privs>,
    pools: Vec<PoolMembers>,
}

/// `/a//b/` → `/a/b`, `` → `/` (how ACL paths are stored).
pub fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

/// Whether `id` looks like `name@realm` (pve-access.md §2.1).
pub fn is_userid(id: &str) -> bool {
    let Some((name, realm)) = id.rsplit_once('@') else { return false };
    (3..=64).contains(&id.len())
        && !name.is_empty()
        && !name.chars().any(|c| c.is_whitespace() || c == ':' || c == '/')
        && is_realm(realm)
}

/// `[A-Za-z][A-Za-z0-9.\-_]+`, at most 32 characters.
pub fn is_realm(realm: &str) -> bool {
    realm.len() >= 2
        && realm.len() <= 32
        && realm.starts_with(|c: char| c.is_ascii_alphabetic())
        && realm.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
}

/// `user@realm!tokenid` split into owner and token name, when well formed.
pub fn split_token(id: &str) -> Option<(&str, &str)> {
    let (user, token) = id.rsplit_once('!')?;
    let ok = token.len() >= 2
        && token.starts_with(|c: char| c.is_ascii_alphabetic())
        && token.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
    (ok && is_userid(user)).then_some((user, token))
}

/// Perl's `split("/", $path)` with the special case for `/` used by `roles()`: trailing empty fields
/// dropped, leading one kept (so `vms/100` skips the root level, as on PVE).
fn perl_split(path: &str) -> Vec<&str> {
    if path == "/" {
        return vec![""];
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

impl AccessView {
    /// A view of `cfg` with the given pool memberships.
    pub fn new(cfg: AccessConfig, pools: Vec<PoolMembers>) -> Self {
        let mut roles: HashMap<String, Privs> = builtin_roles(cfg.version).into_iter().collect();
        let valid = valid_privs(cfg.version);
        for (id, privs) in &cfg.roles {
            roles.entry(id.clone()).or_insert_with(|| privs.iter().filter(|p| valid.contains(*p)).cloned().collect());
        }
        Self { cfg, roles, pools }
    }

    /// The privileges of role `id`; custom roles lose privileges the version does not know, as PVE's
    /// parser drops them (`ignore invalid privilege`).
    pub fn role(&self, id: &str) -> Option<&Privs> {
        self.roles.get(id)
    }

    /// Every role: id → privileges.
    pub fn all_roles(&self) -> &HashMap<String, Privs> {
        &self.roles
    }

    /// The pools and their members.
    pub fn pools(&self) -> &[PoolMembers] {
        &self.pools
    }

    fn in_group(&self, group: &str, authid: &str) -> bool {
        self.cfg.groups.iter().any(|g| g.id == group && g.members.iter().any(|m| m == authid))
    }

    /// The entries applying at level `node` (a normalized path) to `authid`, in PVE's order: token,
    /// then user, then the union of the user's groups; `None` when nothing applies at this level.
    fn level(&self, node: &str, authid: &str, last: bool) -> Option<Roles> {
        let here = self.cfg.acl.iter().filter(|e| normalize(&e.path) == node && (last || e.propagate));
        let pick = |matches: &dyn Fn(&AclSubject) -> bool| -> Option<Roles> {
            let mut new = Roles::new();
            for e in here.clone().filter(|e| matches(&e.subject)) {
                *new.entry(e.role.clone()).or_default() |= e.propagate;
            }
            (!new.is_empty()).then_some(new)
        };
        pick(&|s| matches!(s, AclSubject::Token(t) if t == authid))
            .or_else(|| pick(&|s| matches!(s, AclSubject::User(u) if u == authid)))
            .or_else(|| pick(&|s| matches!(s, AclSubject::Group(g) if self.in_group(g, authid))))
    }

    /// `PVE::AccessControl::roles`: the roles of `authid` on `path`, pools left out.
    pub fn roles(&self, authid: &str, path: &str) -> Roles {
        if authid == ROOT {
            return Roles::from([("Administrator".to_owned(), true)]);
        }
        if split_token(authid).is_some() {
            let Some(token) = self.cfg.tokens.iter().find(|t| t.id == authid) else { return Roles::new() };
            if !token.privsep {
                return self.roles(token.owner(), path);
            }
        }
        let parts = perl_split(path);
        let mut roles = Roles::new();
        // `Some(node)` while the walk is still inside the ACL tree (a normalized path).
        let mut node = Some(String::new());
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if !part.is_empty() {
                node = node.map(|n| format!("{n}/{part}"));
            }
            let Some(n) = &node else { continue };
            let key = if n.is_empty() { "/" } else { n.as_str() };
            if let Some(new) = self.level(key, authid, last) {
                roles = new;
            }
        }
        match roles.get("NoAccess") {
            Some(flag) => Roles::from([("NoAccess".to_owned(), *flag)]),
            None => roles,
        }
    }

    /// The roles pools attach to member paths (`/vms/<id>`, `/storage/<id>`).
    fn pool_roles(&self, authid: &str) -> HashMap<String, BTreeSet<String>> {
        let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
        for pool in &self.pools {
            let roles = self.roles(authid, &format!("/pool/{}", pool.id));
            if roles.is_empty() {
                continue;
            }
            let paths = pool
                .vmids
                .iter()
                .map(|v| format!("/vms/{v}"))
                .chain(pool.storages.iter().map(|s| format!("/storage/{s}")));
            for p in paths {
                out.entry(p).or_default().extend(roles.keys().cloned());
            }
        }
        out
    }

    /// `PVE::RPCEnvironment::permissions`: the privileges of `authid` on `path` (used unnormalized,
    /// as PVE does: pool grants match the exact string `/vms/<id>` only).
    pub fn permissions(&self, authid: &str, path: &str) -> PrivMap {
        if authid == ROOT {
            return self.roles["Administrator"].iter().map(|p| (p.clone(), 1)).collect();
        }
        let owner = match split_token(authid) {
            Some((owner, _)) if self.cfg.tokens.iter().any(|t| t.id == authid) => Some(owner),
            Some(_) => return PrivMap::new(),
            None if is_userid(authid) => None,
            None => return PrivMap::new(),
        };
        let mut roles = self.roles(authid, path);
        if let Some(from_pools) = self.pool_roles(authid).get(path)
            && !roles.contains_key("NoAccess")
        {
            if from_pools.contains("NoAccess") {
                roles = Roles::from([("NoAccess".to_owned(), false)]);
            } else {
                for r in from_pools {
                    roles.entry(r.clone()).or_insert(false);
                }
            }
        }
        let mut privs = PrivMap::new();
        for (role, flag) in &roles {
            for p in self.roles.get(role).into_iter().flatten() {
                let v = privs.entry(p.clone()).or_insert(0);
                *v = (*v).max(u8::from(*flag));
            }
        }
        if let Some(owner) = owner.filter(|o| *o != ROOT) {
            let of_owner = self.permissions(owner, path);
            privs.retain(|p, _| of_owner.contains_key(p));
            for (p, v) in privs.iter_mut() {
                *v = (*v).min(of_owner[p]);
            }
        }
        privs
    }

    /// Whether `authid` holds `privilege` on `path`.
    pub fn allows(&self, authid: &str, path: &str, privilege: &str) -> bool {
        self.permissions(authid, path).contains_key(privilege)
    }

    /// Every node of the ACL tree, intermediate ones included (`iterate_acl_tree`).
    pub fn acl_nodes(&self) -> BTreeSet<String> {
        let mut nodes = BTreeSet::new();
        for e in &self.cfg.acl {
            let path = normalize(&e.path);
            nodes.insert("/".to_owned());
            let mut cur = String::new();
            for part in path.split('/').filter(|p| !p.is_empty()) {
                cur = format!("{cur}/{part}");
                nodes.insert(cur.clone());
            }
        }
        nodes
    }

    /// `get_effective_permissions`: the default paths, every ACL node and every pool member path,
    /// paths without any privilege left out.
    pub fn effective(&self, authid: &str) -> BTreeMap<String, PrivMap> {
        let mut paths: BTreeSet<String> =
            ["/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms"]
                .iter()
                .map(|p| p.to_string())
                .collect();
        paths.extend(self.acl_nodes());
        for pool in &self.pools {
            paths.extend(pool.vmids.iter().map(|v| format!("/vms/{v}")));
            paths.extend(pool.storages.iter().map(|s| format!("/storage/{s}")));
        }
        paths
            .into_iter()
            .map(|p| {
                let privs = self.permissions(authid, &p);
                (p, privs)
            })
            .filter(|(_, privs)| !privs.is_empty())
            .collect()
    }

    /// `compute_api_permission`: the `cap` of a login answer.
    pub fn cap(&self, authid: &str) -> serde_json::Value {
        let sections = ["vms", "storage", "access", "nodes", "sdn", "dc", "mapping"];
        let mut cap: BTreeMap<&str, BTreeMap<String, u8>> = sections.iter().map(|s| (*s, BTreeMap::new())).collect();
        let wanted = |section: &str, p: &str| -> bool {
            let modify = p == "Permissions.Modify";
            match section {
                "vms" => p.starts_with("VM.") || modify,
                "access" => p.starts_with("User.") || p.starts_with("Group.") || modify,
                "storage" => p.starts_with("Datastore.") || modify,
                "nodes" => p.starts_with("Sys.") || modify,
                "sdn" => p.starts_with("SDN.") || modify,
                "dc" => p == "Sys.Audit" || p == "Sys.Modify" || p.starts_with("SDN."),
                "mapping" => p.starts_with("Mapping.") || modify,
                _ => false,
            }
        };
        let mut paths: Vec<String> = ["/", "/nodes", "/access/groups", "/vms", "/storage", "/sdn", "/mapping"]
            .iter()
            .map(|p| p.to_string())
            .collect();
        let defined: Vec<String> = self.acl_nodes().into_iter().filter(|p| !paths.contains(p)).collect();
        paths.extend(defined);
        for path in paths {
            let privs = self.permissions(authid, &path);
            // `^/(\w+)`: the first segment, `dc` for `/`.
            let top: String =
                path.trim_start_matches('/').chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let top = if top.is_empty() { "dc".to_owned() } else { top };
            for p in privs.keys() {
                if top == "pool" {
                    if p.starts_with("VM.") || p == "Permissions.Modify" {
                        cap.get_mut("vms").expect("section").insert(p.clone(), 1);
                    }
                    if p.starts_with("Datastore.") || p == "Permissions.Modify" {
                        cap.get_mut("storage").expect("section").insert(p.clone(), 1);
                    }
                } else if let Some(section) = cap.get_mut(top.as_str())
                    && wanted(&top, p)
                {
                    section.insert(p.clone(), 1);
                }
            }
        }
        serde_json::json!(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::pve::sim::access::PveMajor;

    #[test]
    fn custom_roles_keep_only_privileges_their_version_knows() {
        let mut cfg = AccessConfig { version: PveMajor::V8, ..Default::default() };
        cfg.role("Watcher", &["VM.Audit", "VM.GuestAgent.Audit"]);
        let view = AccessView::new(cfg, vec![]);
        assert_eq!(view.role("Watcher").unwrap().iter().collect::<Vec<_>>(), ["VM.Audit"]);
    }

    #[test]
    fn paths_split_like_perl() {
        assert_eq!(perl_split("/"), [""]);
        assert_eq!(perl_split("/vms/100/"), ["", "vms", "100"]);
        assert_eq!(perl_split("vms/100"), ["vms", "100"]);
        assert_eq!(normalize("//vms//100/"), "/vms/100");
        assert!(is_userid("a@pve") && !is_userid("alice") && !is_userid("a b@pve") && !is_userid("x@1"));
        assert_eq!(split_token("alice@pve!ci"), Some(("alice@pve", "ci")));
    }
}
