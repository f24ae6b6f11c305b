//! Applying a plan with the fewest calls: one directory PATCH per kind of object (split only to stay
//! under Guacamole's 2 MiB request limit, §1) and one permission PATCH per user. A batch Guacamole
//! refuses is retried patch by patch, so one bad connection cannot hold back the rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Diagnostic;
use super::plan::{ConnectionChange, GrantTarget, GroupRef, Plan};
use crate::integrations::guacamole::client::Client;
use crate::integrations::guacamole::error::GuacError;
use crate::integrations::guacamole::notes::Severity;
use crate::integrations::guacamole::wire::Patch;

/// Largest body sent in one PATCH; Guacamole refuses more than 2 MiB (`api-max-request-size`).
const MAX_BODY: usize = 1024 * 1024;

/// What was done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// Connections created.
    pub created: usize,
    /// Connections replaced.
    pub updated: usize,
    /// Connections deleted (directly or with their group).
    pub deleted: usize,
    /// Groups created.
    pub groups_created: usize,
    /// Groups deleted.
    pub groups_deleted: usize,
    /// Users created.
    pub users_created: usize,
    /// READ grants added.
    pub grants_added: usize,
    /// READ grants removed.
    pub grants_removed: usize,
    /// Calls Guacamole refused.
    pub errors: Vec<Diagnostic>,
}

fn error(vmid: Option<u32>, message: String) -> Diagnostic {
    Diagnostic::about(vmid, Severity::Error, message)
}

/// Sends `patches` in size-bounded batches; per patch, the identifier Guacamole returned or why it failed.
async fn batches(client: &Client, directory: &str, patches: Vec<Patch<Value>>) -> Vec<Result<Option<String>, String>> {
    let mut results = Vec::with_capacity(patches.len());
    let mut chunk: Vec<Patch<Value>> = Vec::new();
    let mut size = 2;
    let mut chunks = Vec::new();
    for p in patches {
        let len = serde_json::to_vec(&p).map_or(0, |v| v.len()) + 1;
        if !chunk.is_empty() && size + len > MAX_BODY {
            chunks.push(std::mem::take(&mut chunk));
            size = 2;
        }
        size += len;
        chunk.push(p);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    for chunk in chunks {
        match client.patch_directory(directory, &chunk).await {
            Ok(r) => results.extend(r.patches.into_iter().map(|o| Ok(o.identifier))),
            Err(GuacError::BadRequest { .. }) if chunk.len() > 1 => {
                for p in chunk {
                    results.push(match client.patch_directory(directory, std::slice::from_ref(&p)).await {
                        Ok(r) => Ok(r.patches.into_iter().next().and_then(|o| o.identifier)),
                        Err(e) => Err(e.to_string()),
                    });
                }
            }
            Err(e) => results.extend(chunk.iter().map(|_| Err(e.to_string()))),
        }
    }
    results
}

fn connection_body(c: &ConnectionChange, parent: &str) -> Value {
    let params: BTreeMap<&str, &str> = c.parameters.iter().map(|(k, v)| (k.as_str(), v.expose().as_str())).collect();
    json!({"name": c.name, "parentIdentifier": parent, "protocol": c.protocol, "parameters": params, "attributes": c.attributes})
}

/// Applies `plan`. Never fails as a whole: refused calls are reported per object.
pub async fn apply(client: &Client, plan: &Plan) -> ApplyReport {
    let mut report = ApplyReport::default();
    if !plan.user_creates.is_empty() {
        let patches = plan
            .user_creates
            .iter()
            .map(|u| Patch::add("/", json!({"username": u, "attributes": {}, "disabled": false})))
            .collect();
        for (u, r) in plan.user_creates.iter().zip(batches(client, "users", patches).await) {
            match r {
                Ok(_) => report.users_created += 1,
                Err(e) => report.errors.push(error(None, format!("creating Guacamole user {u:?}: {e}"))),
            }
        }
    }
    let mut new_groups: BTreeMap<&str, String> = BTreeMap::new();
    if !plan.group_creates.is_empty() || !plan.group_deletes.is_empty() {
        let mut patches: Vec<Patch<Value>> = plan.group_deletes.iter().map(|g| Patch::remove(&g.id)).collect();
        patches.extend(plan.group_creates.iter().map(|n| {
            Patch::add("/", json!({"name": n, "parentIdentifier": "ROOT", "type": "ORGANIZATIONAL", "attributes": {}}))
        }));
        let results = batches(client, "connectionGroups", patches).await;
        let (removed, added) = results.split_at(plan.group_deletes.len());
        for (g, r) in plan.group_deletes.iter().zip(removed) {
            match r {
                Ok(_) => report.groups_deleted += 1,
                Err(e) => report.errors.push(error(None, format!("deleting group {:?}: {e}", g.name))),
            }
        }
        for (n, r) in plan.group_creates.iter().zip(added) {
            match r {
                Ok(Some(id)) => {
                    report.groups_created += 1;
                    new_groups.insert(n.as_str(), id.clone());
                }
                Ok(None) => report.errors.push(error(None, format!("creating group {n:?}: no identifier returned"))),
                Err(e) => report.errors.push(error(None, format!("creating group {n:?}: {e}"))),
            }
        }
    }
    let group_id = |r: &GroupRef| -> Option<String> {
        match r {
            GroupRef::Root => Some("ROOT".into()),
            GroupRef::Existing(id) => Some(id.clone()),
            GroupRef::New(name) => new_groups.get(name.as_str()).cloned(),
        }
    };
    // Connections inside deleted groups went with them.
    report.deleted += plan.deletes.iter().filter(|d| d.via_group).count();
    let mut patches: Vec<Patch<Value>> = Vec::new();
    let mut what: Vec<(&str, Option<u32>, String)> = Vec::new();
    for d in plan.deletes.iter().filter(|d| !d.via_group) {
        patches.push(Patch::remove(&d.id));
        what.push(("delete", None, d.name.clone()));
    }
    let mut creates_sent = Vec::new();
    for (kind, list) in [("update", &plan.updates), ("create", &plan.creates)] {
        for c in list {
            let Some(parent) = group_id(&c.parent) else {
                report.errors.push(error(
                    Some(c.vmid),
                    format!("{kind} of {:?} skipped: its group could not be created", c.name),
                ));
                continue;
            };
            let body = connection_body(c, &parent);
            patches.push(match &c.id {
                Some(id) => Patch::replace(id, body),
                None => Patch::add("/", body),
            });
            what.push((kind, Some(c.vmid), c.name.clone()));
            if kind == "create" {
                creates_sent.push(c.marker.as_str());
            }
        }
    }
    let mut new_connections: BTreeMap<&str, String> = BTreeMap::new();
    if !patches.is_empty() {
        let results = batches(client, "connections", patches).await;
        let mut creates = creates_sent.into_iter();
        for ((kind, vmid, name), r) in what.into_iter().zip(results) {
            let marker = (kind == "create").then(|| creates.next()).flatten();
            match r {
                Ok(id) => match kind {
                    "delete" => report.deleted += 1,
                    "update" => report.updated += 1,
                    _ => {
                        report.created += 1;
                        if let (Some(m), Some(id)) = (marker, id) {
                            new_connections.insert(m, id);
                        }
                    }
                },
                Err(e) => report.errors.push(error(vmid, format!("{kind} of connection {name:?}: {e}"))),
            }
        }
    }
    let mut per_user: BTreeMap<&str, Vec<Patch<String>>> = BTreeMap::new();
    for g in &plan.grants {
        let path = match &g.target {
            GrantTarget::Connection(id) => Some(format!("/connectionPermissions/{id}")),
            GrantTarget::NewConnection(m) => {
                new_connections.get(m.as_str()).map(|id| format!("/connectionPermissions/{id}"))
            }
            GrantTarget::Group(r) => {
                group_id(r).filter(|id| id != "ROOT").map(|id| format!("/connectionGroupPermissions/{id}"))
            }
        };
        let Some(path) = path else { continue };
        let patch = if g.add {
            Patch::add(path, "READ".to_owned())
        } else {
            Patch { op: "remove".into(), path, value: Some("READ".to_owned()) }
        };
        per_user.entry(g.user.as_str()).or_default().push(patch);
    }
    for (user, patches) in per_user {
        match client.patch_permissions(user, &patches).await {
            Ok(()) => {
                report.grants_added += patches.iter().filter(|p| p.op == "add").count();
                report.grants_removed += patches.iter().filter(|p| p.op == "remove").count();
            }
            Err(e) => report.errors.push(error(None, format!("permissions of {user:?}: {e}"))),
        }
    }
    report
}
