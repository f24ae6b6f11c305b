//! Access control of the simulated cluster (pve-access.md): its data, and PVE's evaluation of it.

pub(crate) mod endpoints;
mod evaluate;
mod model;
mod roles;
pub(crate) mod ticket;
mod totp;
pub(crate) mod users;

pub use evaluate::{AccessView, PoolMembers, PrivMap, Roles, normalize};
pub use model::{
    AccessConfig, AclSubject, PveMajor, RealmKind, SimAclEntry, SimGroup, SimPool, SimRealm, SimToken, SimUser,
};
pub use roles::{builtin_roles, valid_privs};
pub use totp::totp_code;

use super::SimConfig;
use super::state::State;

/// `SimConfig::access` completed the way PVE's parsers complete `domains.cfg` and `user.cfg`: the
/// `pam` and `pve` realms always exist, `root@pam` always exists (with `SimConfig::root_password`),
/// and every identity of `SimConfig::with_user`/`with_token` becomes a user or token whose ACL pairs
/// `(path, privileges)` are each a custom role granted with propagation on that path (`*` is the
/// `Administrator` role). A token's owner gets the same entries unless it is itself such an identity,
/// so a token declared with an ACL holds exactly that ACL through privilege separation.
pub(crate) fn seed(cfg: &SimConfig) -> AccessConfig {
    let mut access = cfg.access.clone();
    for (id, kind) in [("pve", RealmKind::Pve), ("pam", RealmKind::Pam)] {
        if access.realm_ref(id).is_none() {
            access.realms.insert(0, SimRealm::new(id, kind));
        }
    }
    match access.user_mut("root@pam") {
        Some(root) => root.password = Some(cfg.root_password.clone()),
        None => access.users.insert(0, SimUser::new("root@pam", &cfg.root_password)),
    }
    let declared: Vec<&str> = cfg.identities.iter().map(|i| i.authid.as_str()).collect();
    for (n, identity) in cfg.identities.iter().enumerate() {
        let grant = |access: &mut AccessConfig, who: &str| {
            for (i, (path, privs)) in identity.acl.iter().enumerate() {
                let role = if privs.iter().any(|p| p == "*") {
                    "Administrator".to_owned()
                } else {
                    let id = format!("SimAcl{n}x{i}");
                    if !access.roles.iter().any(|(x, _)| *x == id) {
                        access.roles.push((id.clone(), privs.clone()));
                    }
                    id
                };
                access.acl(path, who, &role, true);
            }
        };
        match evaluate::split_token(&identity.authid) {
            Some((owner, _)) => {
                if access.user_ref(owner).is_none() {
                    let mut user = SimUser::new(owner, "");
                    user.password = None;
                    access.users.push(user);
                }
                if !declared.contains(&owner) {
                    grant(&mut access, owner);
                }
                access.token(&identity.authid, &identity.secret, true);
                grant(&mut access, &identity.authid);
            }
            None => {
                match access.user_mut(&identity.authid) {
                    Some(u) => u.password = Some(identity.secret.clone()),
                    None => {
                        access.user(&identity.authid, &identity.secret);
                    }
                }
                grant(&mut access, &identity.authid);
            }
        }
    }
    access
}

/// Pool memberships: the pools of `AccessConfig` and the guests created into a pool.
pub(crate) fn pool_members(state: &State) -> Vec<PoolMembers> {
    let mut pools: Vec<PoolMembers> = state
        .access
        .pools
        .iter()
        .map(|p| PoolMembers {
            id: p.id.clone(),
            vmids: p.vmids.iter().copied().collect(),
            storages: p.storages.iter().cloned().collect(),
        })
        .collect();
    let missing: Vec<String> = state.pools.keys().filter(|id| !pools.iter().any(|p| &p.id == *id)).cloned().collect();
    pools.extend(missing.into_iter().map(|id| PoolMembers { id, ..Default::default() }));
    for g in state.guests.values() {
        // A guest is in one pool only: `user.cfg`'s membership comes first.
        if let Some(pool) = &g.pool
            && !pools.iter().any(|p| p.vmids.contains(&g.vmid))
            && let Some(p) = pools.iter_mut().find(|p| &p.id == pool)
        {
            p.vmids.insert(g.vmid);
        }
    }
    pools
}

/// The pool guest `vmid` belongs to.
pub(crate) fn pool_of(pools: &[PoolMembers], vmid: u64) -> Option<&str> {
    pools.iter().find(|p| p.vmids.contains(&vmid)).map(|p| p.id.as_str())
}

/// A snapshot of access control for one request.
pub(crate) fn view(state: &State) -> AccessView {
    AccessView::new(state.access.clone(), pool_members(state))
}

/// Registers the pools of `AccessConfig` as existing pools (`GET /pools`, `pool=` on create/clone).
pub(crate) fn register_pools(state: &mut State) {
    let ids: Vec<String> = state.access.pools.iter().map(|p| p.id.clone()).collect();
    for id in ids {
        state.pools.entry(id).or_default();
    }
}
