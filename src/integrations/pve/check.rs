//! `proxdesk check`: version, nodes, catalog templates and the privileges proxdesk needs.

use std::fmt;

use super::wire::{Node, Permissions, Version};
use super::{Client, PveError};

/// Privileges proxdesk uses, each with the ACL path it needs it on.
pub const REQUIRED_PRIVILEGES: &[(&str, &str)] = &[
    ("VM.Clone", "/vms"),
    ("VM.Allocate", "/vms"),
    ("VM.Config.CPU", "/vms"),
    ("VM.Config.Memory", "/vms"),
    ("VM.Config.Disk", "/vms"),
    ("VM.Config.Network", "/vms"),
    ("VM.Config.Options", "/vms"),
    ("VM.PowerMgmt", "/vms"),
    ("VM.Audit", "/vms"),
    ("VM.Console", "/vms"),
    ("Datastore.AllocateSpace", "/storage"),
    ("SDN.Use", "/sdn/zones/localnetwork"),
    ("Sys.Audit", "/nodes"),
];

/// A template from proxdesk's catalog, to look up on the cluster.
#[derive(Debug, Clone)]
pub struct CatalogTemplate {
    pub name: String,
    pub node: String,
    pub vmid: u64,
}

/// What was found for one catalog template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateState {
    /// Exists and is a template.
    Ok,
    /// No such container on that node.
    Missing,
    /// A container, but not a template.
    NotATemplate,
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
        let state = match client.lxc_status(&t.node, t.vmid).await {
            Ok(s) if s.is_template() => TemplateState::Ok,
            Ok(_) => TemplateState::NotATemplate,
            Err(PveError::NotFound(_)) => TemplateState::Missing,
            Err(e) => TemplateState::Error(e.to_string()),
        };
        templates.push((t.clone(), state));
    }
    let perms = client.permissions().await?;
    let privileges = REQUIRED_PRIVILEGES.iter().map(|(p, path)| (*p, *path, grants(&perms, p, path))).collect();
    Ok(CheckReport { version, nodes, templates, privileges })
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
        writeln!(f, "\nTEMPLATE                 NODE         VMID       STATE")?;
        if self.templates.is_empty() {
            writeln!(f, "(the catalog is empty)")?;
        }
        for (t, s) in &self.templates {
            let state = match s {
                TemplateState::Ok => "ok".to_owned(),
                TemplateState::Missing => "missing".to_owned(),
                TemplateState::NotATemplate => "not a template".to_owned(),
                TemplateState::Error(e) => format!("error: {e}"),
            };
            writeln!(f, "{:<24} {:<12} {:<10} {state}", t.name, t.node, t.vmid)?;
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
