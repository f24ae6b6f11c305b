//! The parts of a plan that follow from the connection changes: groups left empty, users to create and
//! READ grants for owners (reference §6: READ on a connection and on each enclosing group).

use std::collections::{BTreeMap, BTreeSet};

use super::plan::{Grant, GrantTarget, GroupRef, Plan};
use super::{ActualConnection, ActualState, DesiredState, Diagnostic};
use crate::integrations::guacamole::notes::Severity;

/// Groups that would be left holding nothing, having held only managed connections, go too; deleting
/// a group deletes its connections (§4), so those need no call of their own.
pub(super) fn plan_group_deletes(p: &mut Plan, have: &ActualState, used: &BTreeMap<String, GroupRef>) {
    let used_ids: BTreeSet<&str> = used
        .values()
        .filter_map(|r| match r {
            GroupRef::Existing(id) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let deleting: BTreeSet<&str> = p.deletes.iter().map(|d| d.id.as_str()).collect();
    let moving_out: BTreeSet<&str> = p.updates.iter().filter_map(|u| u.id.as_deref()).collect();
    let mut doomed = Vec::new();
    for g in have.groups.iter().filter(|g| !used_ids.contains(g.id.as_str())) {
        let inside: Vec<&ActualConnection> = have.connections.iter().filter(|c| c.parent == g.id).collect();
        let has_children = have.groups.iter().any(|c| c.parent == g.id);
        if !has_children
            && !inside.is_empty()
            && inside.iter().all(|c| deleting.contains(c.id.as_str()) && !moving_out.contains(c.id.as_str()))
        {
            doomed.push(g.clone());
        }
    }
    let ids: BTreeSet<String> = doomed.iter().map(|g| g.id.clone()).collect();
    for d in &mut p.deletes {
        if have.connections.iter().any(|c| c.id == d.id && ids.contains(&c.parent)) {
            d.via_group = true;
        }
    }
    p.group_deletes = doomed;
}

pub(super) fn plan_grants(
    p: &mut Plan,
    want: &DesiredState,
    have: &ActualState,
    placed: &BTreeMap<&str, GrantTarget>,
    groups: &BTreeMap<String, GroupRef>,
) {
    let managed: BTreeSet<&str> =
        have.connections.iter().filter(|c| c.marker.is_some()).map(|c| c.id.as_str()).collect();
    let deleting: BTreeSet<&str> = p.deletes.iter().map(|d| d.id.as_str()).collect();
    let proxdesk_groups: BTreeSet<&str> = groups
        .values()
        .filter_map(|r| match r {
            GroupRef::Existing(id) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let mut owned: BTreeMap<&str, (BTreeSet<GrantTarget>, BTreeSet<GroupRef>)> = BTreeMap::new();
    for d in &want.connections {
        let (Some(owner), Some(target)) = (d.owner.as_deref(), placed.get(d.marker.as_str())) else {
            continue;
        };
        let entry = owned.entry(owner).or_default();
        entry.0.insert(target.clone());
        if let Some(g) = &d.group {
            entry.1.insert(groups[g].clone());
        }
    }
    for (user, (conns, grps)) in owned {
        if !have.users.contains(user) {
            if !want.create_users {
                p.diagnostics.push(Diagnostic::about(
                    None,
                    Severity::Warning,
                    format!("Guacamole user {user:?} does not exist; its permissions are skipped"),
                ));
                continue;
            }
            p.user_creates.push(user.to_owned());
        }
        let empty = (BTreeSet::new(), BTreeSet::new());
        let (has_conns, has_groups) = have.reads.get(user).unwrap_or(&empty);
        let mut add = |target: GrantTarget| p.grants.push(Grant { user: user.to_owned(), target, add: true });
        for c in &conns {
            match c {
                GrantTarget::Connection(id) if has_conns.contains(id) => {}
                other => add(other.clone()),
            }
        }
        for g in &grps {
            match g {
                GroupRef::Existing(id) if has_groups.contains(id) => {}
                other => add(GrantTarget::Group(other.clone())),
            }
        }
        for id in has_conns.iter().filter(|id| managed.contains(id.as_str()) && !deleting.contains(id.as_str())) {
            if !conns.contains(&GrantTarget::Connection(id.clone())) {
                p.grants.push(Grant { user: user.to_owned(), target: GrantTarget::Connection(id.clone()), add: false });
            }
        }
        for id in has_groups.iter().filter(|id| proxdesk_groups.contains(id.as_str())) {
            if !grps.contains(&GroupRef::Existing(id.clone())) {
                p.grants.push(Grant {
                    user: user.to_owned(),
                    target: GrantTarget::Group(GroupRef::Existing(id.clone())),
                    add: false,
                });
            }
        }
    }
}
