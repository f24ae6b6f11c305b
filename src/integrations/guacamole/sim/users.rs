//! Users and permissions in the simulator (reference §5–§6).

use std::collections::{BTreeMap, BTreeSet};

use super::state::{Fail, Perms, SimState, SimUser, USER_ATTRIBUTES, filter_attributes, full_attributes};
use crate::integrations::guacamole::wire::{Patch, PermissionSet, User};

const OBJECT_TYPES: [&str; 4] = ["READ", "UPDATE", "DELETE", "ADMINISTER"];
const SYSTEM_TYPES: [&str; 7] = [
    "CREATE_USER",
    "CREATE_USER_GROUP",
    "CREATE_CONNECTION",
    "CREATE_CONNECTION_GROUP",
    "CREATE_SHARING_PROFILE",
    "AUDIT",
    "ADMINISTER",
];

impl SimState {
    pub(super) fn can_read_user(&self, caller: &str, username: &str) -> bool {
        self.is_admin(caller)
            || self.users.get(caller).and_then(|u| u.perms.user.get(username)).is_some_and(|p| p.contains("READ"))
    }

    fn has_user_perm(&self, caller: &str, username: &str, perm: &str) -> bool {
        self.is_admin(caller)
            || self.users.get(caller).and_then(|u| u.perms.user.get(username)).is_some_and(|p| p.contains(perm))
    }

    /// A user as GET returns it: never the password.
    pub(super) fn user_json(u: &SimUser) -> User {
        User {
            username: u.username.clone(),
            password: None,
            disabled: u.disabled,
            attributes: full_attributes(&u.attributes, USER_ATTRIBUTES),
            last_active: None,
        }
    }

    /// `POST users`: the echo of the body (password included, as Guacamole does).
    pub(super) fn create_user(&mut self, caller: &str, u: &User) -> Result<User, Fail> {
        if !self.has_system(caller, "CREATE_USER") {
            return Err(Fail::denied());
        }
        if u.username.trim().is_empty() {
            return Err(Fail::bad("The username must not be blank."));
        }
        if self.users.contains_key(&u.username) {
            return Err(Fail::bad(format!("User \"{}\" already exists.", u.username)));
        }
        let mut perms = Perms::default();
        // A new JDBC user can read itself; the creator gets everything on it.
        perms.user.insert(u.username.clone(), BTreeSet::from(["READ".to_owned()]));
        self.users.insert(
            u.username.clone(),
            SimUser {
                username: u.username.clone(),
                password: u.password.clone(),
                disabled: u.disabled,
                attributes: filter_attributes(&u.attributes, USER_ATTRIBUTES),
                perms,
            },
        );
        if let Some(c) = self.users.get_mut(caller) {
            c.perms.user.entry(u.username.clone()).or_default().extend(OBJECT_TYPES.iter().map(|s| s.to_string()));
        }
        Ok(u.clone())
    }

    /// `PUT users/{u}`: the password changes only when sent; `disabled` is a plain boolean.
    pub(super) fn update_user(&mut self, caller: &str, username: &str, u: &User) -> Result<(), Fail> {
        if !self.users.contains_key(username) {
            return Err(Fail::not_found(username));
        }
        if !self.has_user_perm(caller, username, "UPDATE") || (caller == username && u.password.is_some()) {
            return Err(Fail::denied());
        }
        let stored = self.users.get_mut(username).expect("checked above");
        if let Some(p) = &u.password {
            stored.password = Some(p.clone());
        }
        stored.disabled = u.disabled;
        for (k, v) in &u.attributes {
            if USER_ATTRIBUTES.contains(&k.as_str()) {
                match v.clone().filter(|v| !v.is_empty()) {
                    Some(v) => stored.attributes.insert(k.clone(), v),
                    None => stored.attributes.remove(k),
                };
            }
        }
        Ok(())
    }

    /// `DELETE users/{u}`.
    pub(super) fn delete_user(&mut self, caller: &str, username: &str) -> Result<(), Fail> {
        if !self.users.contains_key(username) {
            return Err(Fail::not_found(username));
        }
        if caller == username {
            return Err(Fail::unsupported("Deleting your own user is not allowed."));
        }
        if !self.has_user_perm(caller, username, "DELETE") {
            return Err(Fail::denied());
        }
        self.users.remove(username);
        for u in self.users.values_mut() {
            u.perms.user.remove(username);
        }
        self.sessions.retain(|_, s| s.username != username);
        Ok(())
    }

    /// `GET users/{u}/permissions`: all seven keys.
    pub(super) fn permissions_json(&self, caller: &str, username: &str) -> Result<PermissionSet, Fail> {
        if !self.users.contains_key(username) || !self.can_read_user(caller, username) {
            return Err(Fail::not_found(username));
        }
        self.own_permissions_json(username)
    }

    /// `GET self/permissions`: the caller's own grants.
    pub(super) fn own_permissions_json(&self, username: &str) -> Result<PermissionSet, Fail> {
        let Some(user) = self.users.get(username) else {
            return Err(Fail::not_found(username));
        };
        let p = &user.perms;
        let list = |m: &BTreeMap<String, BTreeSet<String>>| {
            m.iter().map(|(k, v)| (k.clone(), v.iter().cloned().collect())).collect()
        };
        Ok(PermissionSet {
            connection_permissions: list(&p.connection),
            connection_group_permissions: list(&p.group),
            user_permissions: list(&p.user),
            system_permissions: p.system.iter().cloned().collect(),
            ..PermissionSet::default()
        })
    }

    /// `PATCH users/{u}/permissions`: validated first, adds applied before removes (§6, §12).
    pub(super) fn patch_permissions(
        &mut self,
        caller: &str,
        username: &str,
        patches: &[Patch<String>],
    ) -> Result<(), Fail> {
        if !self.users.contains_key(username) {
            return Err(Fail::not_found(username));
        }
        enum Target {
            Connection(String),
            Group(String),
            User(String),
            System,
        }
        let mut parsed = Vec::new();
        for p in patches {
            if p.op != "add" && p.op != "remove" {
                return Err(Fail::bad("Unsupported patch operation"));
            }
            let value = p.value.clone().unwrap_or_default();
            let target = if p.path == "/systemPermissions" {
                Target::System
            } else if let Some(id) = p.path.strip_prefix("/connectionPermissions/") {
                Target::Connection(id.to_owned())
            } else if let Some(id) = p.path.strip_prefix("/connectionGroupPermissions/") {
                Target::Group(id.to_owned())
            } else if let Some(id) = p.path.strip_prefix("/userPermissions/") {
                Target::User(id.to_owned())
            } else {
                return Err(Fail::bad(format!("Unsupported patch path: \"{}\"", p.path)));
            };
            // An unknown type fails enum parsing on the server: a 500, not a clean 400 (§6).
            let known = match target {
                Target::System => SYSTEM_TYPES.contains(&value.as_str()),
                _ => OBJECT_TYPES.contains(&value.as_str()),
            };
            if !known {
                return Err(Fail::internal());
            }
            let allowed = self.is_admin(caller)
                || (self.has_user_perm(caller, username, "UPDATE")
                    && match &target {
                        Target::Connection(id) => self.has_connection(caller, id, "ADMINISTER"),
                        Target::Group(id) => self.has_group(caller, id, "ADMINISTER"),
                        Target::User(id) => self.has_user_perm(caller, id, "ADMINISTER"),
                        Target::System => false,
                    });
            if !allowed {
                return Err(Fail::denied());
            }
            // Granting on an object that does not exist violates a foreign key: a 500 (§3).
            let exists = match &target {
                Target::Connection(id) => self.connections.contains_key(id),
                Target::Group(id) => self.groups.contains_key(id),
                Target::User(id) => self.users.contains_key(id),
                Target::System => true,
            };
            if p.op == "add" && !exists {
                return Err(Fail::internal());
            }
            parsed.push((p.op == "add", target, value));
        }
        let perms = &mut self.users.get_mut(username).expect("checked above").perms;
        for adding in [true, false] {
            for (add, target, value) in parsed.iter().filter(|(a, _, _)| *a == adding) {
                let set = match target {
                    Target::Connection(id) => perms.connection.entry(id.clone()).or_default(),
                    Target::Group(id) => perms.group.entry(id.clone()).or_default(),
                    Target::User(id) => perms.user.entry(id.clone()).or_default(),
                    Target::System => &mut perms.system,
                };
                if *add {
                    set.insert(value.clone());
                } else {
                    set.remove(value);
                }
            }
        }
        perms.connection.retain(|_, s| !s.is_empty());
        perms.group.retain(|_, s| !s.is_empty());
        perms.user.retain(|_, s| !s.is_empty());
        Ok(())
    }
}
