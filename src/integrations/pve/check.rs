//! `proxdesk check`: version, nodes, catalog templates and the privileges proxdesk needs.

use std::fmt;

use super::wire::{Node, Permissions, Version};
use super::{Client, PveError};
use crate::domain::guest::MachineKind;

/// Privileges proxdesk uses, each with the ACL path it needs it on.
pub const REQUIRED_PRIVILEGES: &[(&str, &str)] = &[
    ("VM.Clone", "/vms"),
    ("VM.Allocate", "/vms"),
    ("VM.Config.CPU", "/vms"),
    ("VM.Config.Memory", "/vms"),
    ("VM.Config.Disk", "/vms"),
    ("VM.Config.Network", "/vms"),
    ("VM.Config.Options", "/vms"),
    // QEMU: `scsihw` on create, cloud-init keys, the installer's CD drive.
    ("VM.Config.HWType", "/vms"),
    ("VM.Config.Cloudinit", "/vms"),
    ("VM.Config.CDROM", "/vms"),
    ("VM.PowerMgmt", "/vms"),
    ("VM.Audit", "/vms"),
    ("VM.Console", "/vms"),
    ("Datastore.AllocateSpace", "/storage"),
    // Listing ISO images and attaching them.
    ("Datastore.Audit", "/storage"),
    ("SDN.Use", "/sdn/zones/localnetwork"),
    ("Sys.Audit", "/nodes"),
];

/// A catalog entry, to look up on the cluster: its template guest, or (ISO entries) its ISOs on each
/// of its nodes.
#[derive(Debug, Clone)]
pub struct CatalogTemplate {
    pub name: String,
    pub kind: MachineKind,
    pub node: String,
    pub vmid: u64,
    /// ISO entries: the nodes VMs may be placed on.
    pub nodes: Vec<String>,
    /// ISO entries: the installer volids (`local:iso/…`).
    pub isos: Vec<String>,
}

/// What was found for one catalog template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateState {
    /// Exists and is a template.
    Ok,
    /// No such guest (of the entry's type) on that node.
    Missing,
    /// A guest, but not a template.
    NotATemplate,
    /// An ISO entry's image is not in its storage on that node.
    MissingIso { node: String, volid: String },
    /// The lookup failed (permission, connection…).
    Error(String),
}

/// The whole report; `Display` prints it as tables.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub version: Version,
    pub nodes: Vec<Node>,
    pub templates: Vec<(CatalogTemplate, TemplateState)>,
    /// `(privilege, path, granted)`.
    pub privileges: Vec<(&'static str, &'static str, bool)>,
}

impl CheckReport {
    /// Whether every template is usable and every privilege granted.
    pub fn all_ok(&self) -> bool {
        self.templates.iter().all(|(_, s)| *s == TemplateState::Ok) && self.privileges.iter().all(|p| p.2)
    }
}

/// Whether `perms` (from `GET /access/permissions`) grant `privilege` on `path`, directly or through a
/// parent path (ACLs propagate by default).
pub fn grants(perms: &Permissions, privilege: &str, path: &str) -> bool {
    perms.iter().any(|(p, privs)| {
        let covers = p == "/" || p == path || path.starts_with(&format!("{}/", p.trim_end_matches('/')));
        covers && privs.get(privilege).is_some_and(|v| *v == 1)
    })
}

/// Runs every check against the cluster.
pub async fn run(client: &Client, catalog: &[CatalogTemplate]) -> Result<CheckReport, PveError> {
    let version = client.version().await?;
    let nodes = client.nodes().await?;
    let mut templates = vec![];
    for t in catalog {
        let state = if t.kind.is_cloned() {
            match client.guest_status(&t.node, t.kind.guest_type(), t.vmid).await {
                Ok(s) if s.is_template() => TemplateState::Ok,
                Ok(_) => TemplateState::NotATemplate,
                Err(PveError::NotFound(_)) => TemplateState::Missing,
                Err(e) => TemplateState::Error(e.to_string()),
            }
        } else {
            iso_state(client, t).await
        };
        templates.push((t.clone(), state));
    }
    let perms = client.permissions().await?;
    let privileges = REQUIRED_PRIVILEGES.iter().map(|(p, path)| (*p, *path, grants(&perms, p, path))).collect();
    Ok(CheckReport { version, nodes, templates, privileges })
}

/// Whether every ISO of an ISO entry is in its storage on every node of the entry.
async fn iso_state(client: &Client, t: &CatalogTemplate) -> TemplateState {
    let nodes = if t.nodes.is_empty() { std::slice::from_ref(&t.node) } else { &t.nodes[..] };
    for node in nodes {
        for volid in &t.isos {
            let storage = volid.split(':').next().unwrap_or_default();
            match client.storage_content(node, storage, "iso").await {
                Ok(items) if items.iter().any(|i| &i.volid == volid) => {}
                Ok(_) => return TemplateState::MissingIso { node: node.clone(), volid: volid.clone() },
                Err(e) => return TemplateState::Error(format!("{node}: {e}")),
            }
        }
    }
    TemplateState::Ok
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Proxmox VE {} (release {}, repoid {})",
            self.version.version, self.version.release, self.version.repoid
        )?;
        writeln!(f, "\nNODE             STATUS")?;
        for n in &self.nodes {
            writeln!(f, "{:<16} {}", n.node, n.status)?;
        }
        writeln!(f, "\nCATALOG ENTRY            KIND            NODE         VMID       STATE")?;
        if self.templates.is_empty() {
            writeln!(f, "(the catalog is empty)")?;
        }
        for (t, s) in &self.templates {
            let state = match s {
                TemplateState::Ok => "ok".to_owned(),
                TemplateState::Missing => "missing".to_owned(),
                TemplateState::NotATemplate => "not a template".to_owned(),
                TemplateState::MissingIso { node, volid } => format!("{volid} missing on {node}"),
                TemplateState::Error(e) => format!("error: {e}"),
            };
            let vmid = if t.kind.is_cloned() { t.vmid.to_string() } else { "-".into() };
            writeln!(f, "{:<24} {:<15} {:<12} {vmid:<10} {state}", t.name, t.kind, t.node)?;
        }
        writeln!(f, "\nPRIVILEGE                 PATH                       STATE")?;
        for (p, path, ok) in &self.privileges {
            writeln!(f, "{p:<25} {path:<26} {}", if *ok { "ok" } else { "missing" })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_propagate_from_parent_paths() {
        let perms: Permissions = [("/".to_owned(), [("VM.Audit".to_owned(), 1)].into())].into();
        assert!(grants(&perms, "VM.Audit", "/vms"));
        assert!(!grants(&perms, "VM.Clone", "/vms"));
        let perms: Permissions = [("/vms".to_owned(), [("VM.Clone".to_owned(), 1)].into())].into();
        assert!(grants(&perms, "VM.Clone", "/vms"));
        assert!(!grants(&perms, "VM.Clone", "/storage"));
    }
}
