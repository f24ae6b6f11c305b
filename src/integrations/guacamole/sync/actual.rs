//! The actual state: Guacamole's connections (with parameters, to find markers and drift), groups,
//! users and the owners' permissions, read with bounded concurrency.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::MARKER_PARAM;
use crate::integrations::guacamole::client::Client;
use crate::integrations::guacamole::error::GuacError;
use crate::integrations::guacamole::wire::{Attributes, Connection};
use crate::secrets::Secret;

/// A connection as Guacamole has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualConnection {
    /// Identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// Parent group id or `ROOT`.
    pub parent: String,
    /// Protocol.
    pub protocol: String,
    /// Parameters (passwords included, hence secrets).
    pub parameters: BTreeMap<String, Secret<String>>,
    /// Attributes, kept so an update does not clear what an admin set (§3: PUT replaces them all).
    pub attributes: Attributes,
    /// The marker, when proxdesk manages it.
    pub marker: Option<String>,
}

/// A connection group as Guacamole has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualGroup {
    /// Identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// Parent group id or `ROOT`.
    pub parent: String,
}

/// What Guacamole holds that the plan needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActualState {
    /// Every readable connection.
    pub connections: Vec<ActualConnection>,
    /// Every group except ROOT.
    pub groups: Vec<ActualGroup>,
    /// Existing usernames (read only when there are owners).
    pub users: BTreeSet<String>,
    /// Per owner: connection ids and group ids they hold READ on.
    pub reads: BTreeMap<String, Reads>,
}

/// Reads the actual state; `owners` are the users whose permissions the plan manages.
pub async fn read_actual(client: &Client, owners: &[String]) -> Result<ActualState, GuacError> {
    let listed = client.connections().await?;
    let groups = client.connection_groups().await?;
    let connections: Vec<ActualConnection> = stream::iter(listed.into_values())
        .map(|c| with_parameters(client, c))
        .buffer_unordered(client.concurrency())
        .try_collect()
        .await?;
    let mut connections = connections;
    connections.sort_by_key(|c| numeric(&c.id));
    let owners: BTreeSet<&String> = owners.iter().collect();
    let users: BTreeSet<String> =
        if owners.is_empty() { BTreeSet::new() } else { client.users().await?.into_keys().collect() };
    let wanted: Vec<String> = owners.into_iter().filter(|o| users.contains(*o)).cloned().collect();
    let reads =
        stream::iter(wanted).map(|u| reads_of(client, u)).buffer_unordered(client.concurrency()).try_collect().await?;
    Ok(ActualState {
        connections,
        groups: groups
            .into_values()
            .map(|g| ActualGroup {
                id: g.identifier.unwrap_or_default(),
                name: g.name,
                parent: g.parent_identifier.unwrap_or_else(|| "ROOT".into()),
            })
            .collect(),
        users,
        reads,
    })
}

async fn with_parameters(client: &Client, c: Connection) -> Result<ActualConnection, GuacError> {
    let id = c.identifier.clone().unwrap_or_default();
    let params = client.connection_parameters(&id).await?;
    Ok(ActualConnection {
        marker: params.get(MARKER_PARAM).cloned(),
        parameters: params.into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
        id,
        name: c.name,
        parent: c.parent_identifier.unwrap_or_else(|| "ROOT".into()),
        protocol: c.protocol,
        attributes: c.attributes,
    })
}

type Reads = (BTreeSet<String>, BTreeSet<String>);

async fn reads_of(client: &Client, user: String) -> Result<(String, Reads), GuacError> {
    let p = client.permissions(&user).await?;
    let read = |m: BTreeMap<String, Vec<String>>| -> BTreeSet<String> {
        m.into_iter().filter(|(_, v)| v.iter().any(|p| p == "READ")).map(|(k, _)| k).collect()
    };
    Ok((user, (read(p.connection_permissions), read(p.connection_group_permissions))))
}

/// Orders JDBC ids numerically, so the oldest duplicate is kept.
fn numeric(id: &str) -> (u64, String) {
    (id.parse().unwrap_or(u64::MAX), id.to_owned())
}
