//! Connection groups in the simulator (reference §4): unique names per parent, no cycles, cascade delete.

use std::collections::BTreeSet;

use super::state::{Fail, GROUP_ATTRIBUTES, NAME_LIMIT, SimGroup, SimState, filter_attributes, full_attributes};
use crate::integrations::guacamole::wire::ConnectionGroup;

impl SimState {
    fn check_group(&self, user: &str, g: &ConnectionGroup, id: Option<&str>) -> Result<SimGroup, Fail> {
        let parent = g.parent_identifier.clone().unwrap_or_else(|| "ROOT".into());
        let admin = self.is_admin(user);
        match id {
            None if !self.has_system(user, "CREATE_CONNECTION_GROUP") => return Err(Fail::denied()),
            Some(id) if !self.has_group(user, id, "UPDATE") => return Err(Fail::denied()),
            _ => {}
        }
        if !admin && parent != "ROOT" && !self.has_group(user, &parent, "UPDATE") {
            return Err(Fail::denied());
        }
        if g.name.trim().is_empty() {
            return Err(Fail::bad("Connection group names must not be blank."));
        }
        let duplicate = self.name_taken(true, &parent, &g.name, id);
        if duplicate {
            return Err(Fail::bad(format!("The connection group \"{}\" already exists.", g.name)));
        }
        if let Some(id) = id {
            let mut cursor = parent.clone();
            while cursor != "ROOT" {
                if cursor == id {
                    return Err(Fail::unsupported("A connection group may not contain itself."));
                }
                cursor = match self.groups.get(&cursor) {
                    Some(g) => g.parent.clone(),
                    None => break,
                };
            }
        }
        if !self.group_exists(&parent) || g.name.chars().count() > NAME_LIMIT {
            return Err(Fail::internal());
        }
        let kind = match g.kind.as_str() {
            "BALANCING" => "BALANCING",
            _ => "ORGANIZATIONAL",
        };
        Ok(SimGroup {
            id: id.unwrap_or_default().to_owned(),
            name: g.name.clone(),
            parent,
            kind: kind.into(),
            attributes: filter_attributes(&g.attributes, GROUP_ATTRIBUTES),
        })
    }

    /// `POST connectionGroups`.
    pub(super) fn create_group(&mut self, user: &str, g: &ConnectionGroup) -> Result<ConnectionGroup, Fail> {
        let mut stored = self.check_group(user, g, None)?;
        self.next_group += 1;
        stored.id = self.next_group.to_string();
        let mut echo = g.clone();
        echo.identifier = Some(stored.id.clone());
        echo.parent_identifier = Some(stored.parent.clone());
        let id = stored.id.clone();
        self.put_group(stored);
        self.grant_all(user, |p| &mut p.group, &id);
        Ok(echo)
    }

    /// `PUT connectionGroups/{id}`.
    pub(super) fn update_group(&mut self, user: &str, id: &str, g: &ConnectionGroup) -> Result<(), Fail> {
        if !self.groups.contains_key(id) {
            return Err(Fail::not_found(id));
        }
        let mut stored = self.check_group(user, g, Some(id))?;
        stored.id = id.to_owned();
        self.put_group(stored);
        Ok(())
    }

    /// `DELETE connectionGroups/{id}`: everything inside goes too (DB cascade, §4).
    pub(super) fn delete_group(&mut self, user: &str, id: &str) -> Result<(), Fail> {
        if !self.groups.contains_key(id) {
            return Err(Fail::not_found(id));
        }
        if !self.has_group(user, id, "DELETE") {
            return Err(Fail::denied());
        }
        let mut doomed = BTreeSet::from([id.to_owned()]);
        loop {
            let more: Vec<String> = self
                .groups
                .values()
                .filter(|g| doomed.contains(&g.parent) && !doomed.contains(&g.id))
                .map(|g| g.id.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            doomed.extend(more);
        }
        let gone: Vec<String> =
            self.connections.values().filter(|c| doomed.contains(&c.parent)).map(|c| c.id.clone()).collect();
        for c in &gone {
            self.drop_connection(c);
        }
        for g in &doomed {
            self.drop_group(g);
        }
        for u in self.users.values_mut() {
            u.perms.connection.retain(|k, _| !gone.contains(k));
            u.perms.group.retain(|k, _| !doomed.contains(k));
        }
        Ok(())
    }

    /// A group as GET returns it.
    pub(super) fn group_json(g: &SimGroup) -> ConnectionGroup {
        ConnectionGroup {
            name: g.name.clone(),
            identifier: Some(g.id.clone()),
            parent_identifier: Some(g.parent.clone()),
            kind: g.kind.clone(),
            attributes: full_attributes(&g.attributes, GROUP_ATTRIBUTES),
            active_connections: Some(0),
        }
    }
}
