//! The plan: what must change in Guacamole for the actual state to match the desired one. Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{ActualConnection, ActualGroup, ActualState, DesiredState, Diagnostic};
use crate::integrations::guacamole::notes::Severity;
use crate::integrations::guacamole::wire::Attributes;
use crate::secrets::Secret;

/// Where a connection goes: ROOT, a group that exists, or one this plan creates (by name, under ROOT).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupRef {
    /// The root group.
    Root,
    /// An existing group, by id.
    Existing(String),
    /// A group created by this plan, by name.
    New(String),
}

/// A connection to create or replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionChange {
    /// Identifier of the connection replaced; `None` for a create.
    pub id: Option<String>,
    /// Marker of the connection.
    pub marker: String,
    /// The VM it reaches.
    pub vmid: u32,
    /// Name.
    pub name: String,
    /// Protocol.
    pub protocol: String,
    /// Parent.
    pub parent: GroupRef,
    /// All parameters.
    pub parameters: BTreeMap<String, Secret<String>>,
    /// Attributes to keep.
    pub attributes: Attributes,
    /// What differs (field and parameter names, never values); empty for a create.
    pub reasons: Vec<String>,
}

/// A managed connection to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionDelete {
    /// Identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// Its marker.
    pub marker: String,
    /// Whether deleting its group removes it (no call of its own).
    pub via_group: bool,
}

/// What a permission change is on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantTarget {
    /// A connection that exists.
    Connection(String),
    /// A connection this plan creates, by marker.
    NewConnection(String),
    /// A group.
    Group(GroupRef),
}

/// READ added to or removed from a user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// Guacamole username.
    pub user: String,
    /// The object.
    pub target: GrantTarget,
    /// Add (true) or remove.
    pub add: bool,
}

/// Counts of a plan or of what was applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCounts {
    /// Connections to create.
    pub create: usize,
    /// Connections to replace.
    pub update: usize,
    /// Connections to delete.
    pub delete: usize,
    /// Groups to create.
    pub groups_create: usize,
    /// Groups to delete.
    pub groups_delete: usize,
    /// Users to create.
    pub users_create: usize,
    /// READ grants to add.
    pub grants_add: usize,
    /// READ grants to remove.
    pub grants_remove: usize,
}

/// Everything to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Groups to create under ROOT, by name.
    pub group_creates: Vec<String>,
    /// Groups to delete (they hold only managed connections, all going away).
    pub group_deletes: Vec<ActualGroup>,
    /// Connections to create.
    pub creates: Vec<ConnectionChange>,
    /// Connections to replace.
    pub updates: Vec<ConnectionChange>,
    /// Managed connections to delete.
    pub deletes: Vec<ConnectionDelete>,
    /// Guacamole users to create (no password: they log in through another extension).
    pub user_creates: Vec<String>,
    /// READ changes.
    pub grants: Vec<Grant>,
    /// Things left alone and why.
    pub diagnostics: Vec<Diagnostic>,
}

impl Plan {
    /// Whether applying it would change nothing.
    pub fn is_empty(&self) -> bool {
        self.counts() == PlanCounts::default()
    }

    /// How many changes of each kind.
    pub fn counts(&self) -> PlanCounts {
        PlanCounts {
            create: self.creates.len(),
            update: self.updates.len(),
            delete: self.deletes.len(),
            groups_create: self.group_creates.len(),
            groups_delete: self.group_deletes.len(),
            users_create: self.user_creates.len(),
            grants_add: self.grants.iter().filter(|g| g.add).count(),
            grants_remove: self.grants.iter().filter(|g| !g.add).count(),
        }
    }
}

fn diff(want: &BTreeMap<String, Secret<String>>, have: &BTreeMap<String, Secret<String>>) -> Vec<String> {
    let keys: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    keys.into_iter().filter(|k| want.get(*k) != have.get(*k)).map(|k| format!("parameter {k}")).collect()
}

/// Compares desired and actual. Hand-made connections are never changed; a desired name that one of
/// them already holds in the same group is skipped with an error instead of failing the batch.
pub fn plan(want: &DesiredState, have: &ActualState) -> Plan {
    let mut p = Plan::default();
    let root_groups: BTreeMap<&str, &ActualGroup> =
        have.groups.iter().filter(|g| g.parent == "ROOT").map(|g| (g.name.as_str(), g)).collect();
    let mut group_refs: BTreeMap<String, GroupRef> = BTreeMap::new();
    for name in want.connections.iter().filter_map(|c| c.group.clone()) {
        if group_refs.contains_key(&name) {
            continue;
        }
        let r = match root_groups.get(name.as_str()) {
            Some(g) => GroupRef::Existing(g.id.clone()),
            None => {
                p.group_creates.push(name.clone());
                GroupRef::New(name.clone())
            }
        };
        group_refs.insert(name, r);
    }
    let parent_of = |g: &Option<String>| g.as_ref().map_or(GroupRef::Root, |n| group_refs[n].clone());
    let parent_id = |r: &GroupRef| match r {
        GroupRef::Root => Some("ROOT".to_owned()),
        GroupRef::Existing(id) => Some(id.clone()),
        GroupRef::New(_) => None,
    };
    let mut by_marker: BTreeMap<&str, &ActualConnection> = BTreeMap::new();
    for c in &have.connections {
        if let Some(m) = c.marker.as_ref() {
            by_marker.entry(m.as_str()).or_insert(c);
        }
    }
    let unmanaged: BTreeSet<(&str, &str)> =
        have.connections.iter().filter(|c| c.marker.is_none()).map(|c| (c.parent.as_str(), c.name.as_str())).collect();
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    // marker → where the connection will be, for permissions
    let mut placed: BTreeMap<&str, GrantTarget> = BTreeMap::new();
    for d in &want.connections {
        let parent = parent_of(&d.group);
        let existing = by_marker.get(d.marker.as_str()).copied();
        if let Some(a) = existing {
            kept.insert(a.id.as_str());
            placed.insert(&d.marker, GrantTarget::Connection(a.id.clone()));
        }
        if let Some(pid) = parent_id(&parent)
            && unmanaged.contains(&(pid.as_str(), d.name.as_str()))
        {
            p.diagnostics.push(Diagnostic::about(
                Some(d.vmid),
                Severity::Error,
                format!("connection name {:?} is taken by a connection proxdesk does not manage; skipped", d.name),
            ));
            continue;
        }
        let mut params = d.parameters.clone();
        if !params.contains_key("hostname")
            && let Some(h) = existing.and_then(|a| a.parameters.get("hostname"))
        {
            params.insert("hostname".into(), h.clone());
        }
        let change = |id: Option<String>, attributes: Attributes, reasons: Vec<String>| ConnectionChange {
            id,
            marker: d.marker.clone(),
            vmid: d.vmid,
            name: d.name.clone(),
            protocol: d.protocol.as_str().to_owned(),
            parent: parent.clone(),
            parameters: params.clone(),
            attributes,
            reasons,
        };
        match existing {
            Some(a) => {
                let mut reasons = Vec::new();
                if a.name != d.name {
                    reasons.push("name".to_owned());
                }
                if parent_id(&parent).as_deref() != Some(a.parent.as_str()) {
                    reasons.push("group".to_owned());
                }
                if a.protocol != d.protocol.as_str() {
                    reasons.push("protocol".to_owned());
                }
                reasons.extend(diff(&params, &a.parameters));
                if !reasons.is_empty() {
                    let attrs =
                        a.attributes.iter().filter(|(_, v)| v.is_some()).map(|(k, v)| (k.clone(), v.clone())).collect();
                    p.updates.push(change(Some(a.id.clone()), attrs, reasons));
                }
            }
            None if params.contains_key("hostname") => {
                placed.insert(&d.marker, GrantTarget::NewConnection(d.marker.clone()));
                p.creates.push(change(None, Attributes::new(), Vec::new()));
            }
            None => {}
        }
    }
    // Connections of VMs that could not be read this run stay as they are.
    for c in &have.connections {
        if c.marker.as_deref().and_then(super::desired::marker_vmid).is_some_and(|vm| want.held.contains(&vm)) {
            kept.insert(c.id.as_str());
        }
    }
    for c in have.connections.iter().filter(|c| c.marker.is_some() && !kept.contains(c.id.as_str())) {
        p.deletes.push(ConnectionDelete {
            id: c.id.clone(),
            name: c.name.clone(),
            marker: c.marker.clone().unwrap_or_default(),
            via_group: false,
        });
    }
    super::grants::plan_group_deletes(&mut p, have, &group_refs);
    super::grants::plan_grants(&mut p, want, have, &placed, &group_refs);
    p
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
