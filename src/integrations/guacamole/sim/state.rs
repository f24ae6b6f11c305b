//! The simulator's data: connections, groups, users, permissions and sessions, with Guacamole's JDBC
//! rules for creating, replacing and deleting them (reference §3–§5).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use crate::integrations::guacamole::wire::{Attributes, Connection};

/// Connection attributes of the JDBC schema; anything else is dropped silently (§3).
pub const CONNECTION_ATTRIBUTES: &[&str] = &[
    "max-connections",
    "max-connections-per-user",
    "weight",
    "failover-only",
    "guacd-hostname",
    "guacd-port",
    "guacd-encryption",
];
/// Connection-group attributes of the JDBC schema.
pub const GROUP_ATTRIBUTES: &[&str] = &["max-connections", "max-connections-per-user", "enable-session-affinity"];
/// User attributes of the JDBC schema.
pub const USER_ATTRIBUTES: &[&str] = &[
    "guac-full-name",
    "guac-email-address",
    "guac-organization",
    "guac-organizational-role",
    "expired",
    "access-window-start",
    "access-window-end",
    "valid-from",
    "valid-until",
    "timezone",
];
const PARAMETER_LIMIT: usize = 4096;
pub(super) const NAME_LIMIT: usize = 128;

/// A Guacamole error as the simulator answers it: HTTP status, `APIError.type` and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// HTTP status.
    pub status: u16,
    /// `APIError.type`.
    pub kind: &'static str,
    /// `APIError.message`.
    pub message: String,
}

impl Fail {
    /// 400 `BAD_REQUEST`.
    pub fn bad(message: impl Into<String>) -> Self {
        Fail { status: 400, kind: "BAD_REQUEST", message: message.into() }
    }
    /// 403 `PERMISSION_DENIED` "Permission denied." (a valid session lacking a permission).
    pub fn denied() -> Self {
        Fail { status: 403, kind: "PERMISSION_DENIED", message: "Permission denied.".into() }
    }
    /// 404 `NOT_FOUND` `Not found: "ID"`.
    pub fn not_found(id: &str) -> Self {
        Fail { status: 404, kind: "NOT_FOUND", message: format!("Not found: \"{id}\"") }
    }
    /// 500 `INTERNAL_ERROR`: what a database constraint failure surfaces as.
    pub fn internal() -> Self {
        Fail { status: 500, kind: "INTERNAL_ERROR", message: "Unexpected internal error".into() }
    }
    /// 501 `INTERNAL_ERROR`: an unsupported operation.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Fail { status: 501, kind: "INTERNAL_ERROR", message: message.into() }
    }
    /// Whether this is a Guacamole client error (collected by a batch) rather than a server failure.
    pub fn is_client_error(&self) -> bool {
        self.status < 500
    }
}

/// One stored connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConnection {
    /// Numeric identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Parent group id or `ROOT`.
    pub parent: String,
    /// Protocol.
    pub protocol: String,
    /// Stored (non-empty) parameters.
    pub parameters: BTreeMap<String, String>,
    /// Set schema attributes.
    pub attributes: BTreeMap<String, String>,
}

/// One stored connection group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimGroup {
    /// Numeric identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Parent group id or `ROOT`.
    pub parent: String,
    /// `ORGANIZATIONAL` or `BALANCING`.
    pub kind: String,
    /// Set schema attributes.
    pub attributes: BTreeMap<String, String>,
}

/// Permissions granted directly to one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Perms {
    /// Connection id → READ/UPDATE/DELETE/ADMINISTER.
    pub connection: BTreeMap<String, BTreeSet<String>>,
    /// Group id → object permissions.
    pub group: BTreeMap<String, BTreeSet<String>>,
    /// Username → object permissions.
    pub user: BTreeMap<String, BTreeSet<String>>,
    /// System permissions.
    pub system: BTreeSet<String>,
}

/// One stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// Login name.
    pub username: String,
    /// Password; `None`: a random hash nobody can log in with.
    pub password: Option<String>,
    /// Whether logins are refused.
    pub disabled: bool,
    /// Set schema attributes.
    pub attributes: BTreeMap<String, String>,
    /// Direct grants.
    pub perms: Perms,
}

#[derive(Debug, Clone)]
pub(super) struct SessionRec {
    pub username: String,
    pub last_access: Instant,
}

/// The whole stored state of a simulated Guacamole.
#[derive(Debug, Clone, Default)]
pub struct SimState {
    /// Connections by id.
    pub connections: BTreeMap<String, SimConnection>,
    /// Groups by id (ROOT is implicit).
    pub groups: BTreeMap<String, SimGroup>,
    /// Users by name.
    pub users: BTreeMap<String, SimUser>,
    pub(super) sessions: HashMap<String, SessionRec>,
    pub(super) next_connection: u64,
    pub(super) next_group: u64,
    /// (parent, name) → id of connections, as the database's unique index: keeps checks O(1).
    names: HashMap<(String, String), String>,
    /// The same for groups.
    group_names: HashMap<(String, String), String>,
}

pub(super) const ALL_OBJECT: [&str; 4] = ["READ", "UPDATE", "DELETE", "ADMINISTER"];

/// Keeps set schema attributes, drops unknown keys and null/empty values.
pub(super) fn filter_attributes(attrs: &Attributes, schema: &[&str]) -> BTreeMap<String, String> {
    attrs
        .iter()
        .filter(|(k, _)| schema.contains(&k.as_str()))
        .filter_map(|(k, v)| v.clone().filter(|v| !v.is_empty()).map(|v| (k.clone(), v)))
        .collect()
}

/// All schema attributes, unset ones as null, as GET returns them.
pub(super) fn full_attributes(set: &BTreeMap<String, String>, schema: &[&str]) -> Attributes {
    schema.iter().map(|k| (k.to_string(), set.get(*k).cloned())).collect()
}

impl SimState {
    /// Rebuilds the name indexes after the maps were changed directly.
    pub(super) fn reindex(&mut self) {
        self.names = self.connections.values().map(|c| ((c.parent.clone(), c.name.clone()), c.id.clone())).collect();
        self.group_names = self.groups.values().map(|g| ((g.parent.clone(), g.name.clone()), g.id.clone())).collect();
    }

    pub(super) fn name_taken(&self, group: bool, parent: &str, name: &str, except: Option<&str>) -> bool {
        let index = if group { &self.group_names } else { &self.names };
        index.get(&(parent.to_owned(), name.to_owned())).is_some_and(|other| Some(other.as_str()) != except)
    }

    pub(super) fn put_connection(&mut self, c: SimConnection) {
        if let Some(old) = self.connections.get(&c.id) {
            self.names.remove(&(old.parent.clone(), old.name.clone()));
        }
        self.names.insert((c.parent.clone(), c.name.clone()), c.id.clone());
        self.connections.insert(c.id.clone(), c);
    }

    pub(super) fn drop_connection(&mut self, id: &str) {
        if let Some(old) = self.connections.remove(id) {
            self.names.remove(&(old.parent, old.name));
        }
    }

    pub(super) fn put_group(&mut self, g: SimGroup) {
        if let Some(old) = self.groups.get(&g.id) {
            self.group_names.remove(&(old.parent.clone(), old.name.clone()));
        }
        self.group_names.insert((g.parent.clone(), g.name.clone()), g.id.clone());
        self.groups.insert(g.id.clone(), g);
    }

    pub(super) fn drop_group(&mut self, id: &str) {
        if let Some(old) = self.groups.remove(id) {
            self.group_names.remove(&(old.parent, old.name));
        }
    }

    pub(super) fn is_admin(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|u| u.perms.system.contains("ADMINISTER"))
    }

    pub(super) fn has_system(&self, user: &str, perm: &str) -> bool {
        self.is_admin(user) || self.users.get(user).is_some_and(|u| u.perms.system.contains(perm))
    }

    pub(super) fn has_connection(&self, user: &str, id: &str, perm: &str) -> bool {
        self.is_admin(user)
            || self.users.get(user).and_then(|u| u.perms.connection.get(id)).is_some_and(|p| p.contains(perm))
    }

    pub(super) fn has_group(&self, user: &str, id: &str, perm: &str) -> bool {
        self.is_admin(user)
            || self.users.get(user).and_then(|u| u.perms.group.get(id)).is_some_and(|p| p.contains(perm))
    }

    pub(super) fn grant_all(
        &mut self,
        user: &str,
        f: impl Fn(&mut Perms) -> &mut BTreeMap<String, BTreeSet<String>>,
        id: &str,
    ) {
        if let Some(u) = self.users.get_mut(user) {
            f(&mut u.perms).entry(id.to_owned()).or_default().extend(ALL_OBJECT.iter().map(|s| s.to_string()));
        }
    }

    pub(super) fn group_exists(&self, id: &str) -> bool {
        id == "ROOT" || self.groups.contains_key(id)
    }

    /// A connection's validated, translated form; `id` is the one it replaces, if any.
    fn check_connection(&self, user: &str, c: &Connection, id: Option<&str>) -> Result<SimConnection, Fail> {
        let parameters = c.parameters.clone().unwrap_or_default();
        if let Some((name, _)) = parameters.iter().find(|(_, v)| v.chars().count() > PARAMETER_LIMIT) {
            return Err(Fail {
                status: 413,
                kind: "BAD_REQUEST",
                message: format!(
                    "The value of parameter \"{name}\" exceeds the maximum length of {PARAMETER_LIMIT} characters."
                ),
            });
        }
        let parent = c.parent_identifier.clone().unwrap_or_else(|| "ROOT".into());
        let admin = self.is_admin(user);
        match id {
            None if !self.has_system(user, "CREATE_CONNECTION") => return Err(Fail::denied()),
            Some(id) if !self.has_connection(user, id, "UPDATE") => return Err(Fail::denied()),
            _ => {}
        }
        let old_parent = id.and_then(|i| self.connections.get(i)).map(|c| c.parent.clone());
        for p in [Some(parent.clone()), old_parent].into_iter().flatten() {
            if !admin && p != "ROOT" && !self.has_group(user, &p, "UPDATE") {
                return Err(Fail::denied());
            }
        }
        if c.name.trim().is_empty() {
            return Err(Fail::bad("Connection names must not be blank."));
        }
        let duplicate = self.name_taken(false, &parent, &c.name, id);
        if duplicate {
            return Err(Fail::bad(format!("The connection \"{}\" already exists.", c.name)));
        }
        if !self.group_exists(&parent) || c.name.chars().count() > NAME_LIMIT {
            return Err(Fail::internal());
        }
        Ok(SimConnection {
            id: id.unwrap_or_default().to_owned(),
            name: c.name.clone(),
            parent,
            protocol: c.protocol.clone(),
            parameters: parameters.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
            attributes: filter_attributes(&c.attributes, CONNECTION_ATTRIBUTES),
        })
    }

    /// `POST connections`: the echo with its identifier.
    pub(super) fn create_connection(&mut self, user: &str, c: &Connection) -> Result<Connection, Fail> {
        let mut stored = self.check_connection(user, c, None)?;
        self.next_connection += 1;
        stored.id = self.next_connection.to_string();
        let mut echo = c.clone();
        echo.identifier = Some(stored.id.clone());
        echo.parent_identifier = Some(stored.parent.clone());
        echo.attributes = c
            .attributes
            .iter()
            .filter(|(k, _)| CONNECTION_ATTRIBUTES.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let id = stored.id.clone();
        self.put_connection(stored);
        self.grant_all(user, |p| &mut p.connection, &id);
        Ok(echo)
    }

    /// `PUT connections/{id}`: replaces everything; a missing `parameters` is the JDBC NPE (§12).
    pub(super) fn update_connection(&mut self, user: &str, id: &str, c: &Connection) -> Result<(), Fail> {
        if !self.connections.contains_key(id) {
            return Err(Fail::not_found(id));
        }
        let mut stored = self.check_connection(user, c, Some(id))?;
        if c.parameters.is_none() {
            return Err(Fail::internal());
        }
        stored.id = id.to_owned();
        self.put_connection(stored);
        Ok(())
    }

    /// `DELETE connections/{id}`; its permissions go with it.
    pub(super) fn delete_connection(&mut self, user: &str, id: &str) -> Result<(), Fail> {
        let Some(c) = self.connections.get(id) else {
            return Err(Fail::not_found(id));
        };
        let admin = self.is_admin(user);
        if !self.has_connection(user, id, "DELETE")
            || (!admin && c.parent != "ROOT" && !self.has_group(user, &c.parent, "UPDATE"))
        {
            return Err(Fail::denied());
        }
        self.drop_connection(id);
        for u in self.users.values_mut() {
            u.perms.connection.remove(id);
        }
        Ok(())
    }

    /// A connection as GET returns it: no parameters, all schema attributes.
    pub(super) fn connection_json(c: &SimConnection) -> Connection {
        Connection {
            name: c.name.clone(),
            identifier: Some(c.id.clone()),
            parent_identifier: Some(c.parent.clone()),
            protocol: c.protocol.clone(),
            parameters: None,
            attributes: full_attributes(&c.attributes, CONNECTION_ATTRIBUTES),
            active_connections: Some(0),
            last_active: None,
        }
    }
}
