//! SSH settings: `PROXDESK_SSH_*`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{ConfigError, RawSettings};

/// How proxdesk logs in to nodes.
#[derive(Debug, Clone)]
pub struct SshConfig {
    /// Login user on the node (`PROXDESK_SSH_USER`, default `root`).
    pub user: String,
    /// Private key file (`PROXDESK_SSH_KEY_FILE`).
    pub key_file: PathBuf,
    /// OpenSSH known_hosts file (`PROXDESK_SSH_KNOWN_HOSTS`).
    pub known_hosts: Option<PathBuf>,
    /// Pinned host key fingerprints, `SHA256:…` as `ssh-keygen -lf` prints them (`PROXDESK_SSH_FINGERPRINTS`).
    pub fingerprints: Vec<String>,
    /// Node name → `host:port` (`PROXDESK_SSH_NODES`, e.g. `pve1=10.0.0.11:22,pve2=10.0.0.12`).
    pub nodes: HashMap<String, (String, u16)>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Parses `host[:port]`, port 22 by default.
fn host_port(s: &str) -> Option<(String, u16)> {
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => p.parse().ok().map(|p| (h.to_owned(), p)),
        Some(_) => None,
        None if !s.is_empty() => Some((s.to_owned(), 22)),
        None => None,
    }
}

impl SshConfig {
    /// Reads the `ssh_*` keys; `None` when no key file is configured (SSH finishing is off).
    pub fn from_settings(raw: &RawSettings) -> Result<Option<SshConfig>, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("PROXDESK_{}", key.to_uppercase()),
            message,
        };
        let Some(key_file) = raw.get("ssh_key_file") else {
            return Ok(None);
        };
        let mut nodes = HashMap::new();
        for item in raw.get("ssh_nodes").unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (node, addr) = item
                .split_once('=')
                .ok_or_else(|| invalid("ssh_nodes", format!("{item:?}: expected node=host[:port]")))?;
            let hp = host_port(addr.trim())
                .ok_or_else(|| invalid("ssh_nodes", format!("{item:?}: expected node=host[:port]")))?;
            nodes.insert(node.trim().to_owned(), hp);
        }
        let fingerprints: Vec<String> = raw
            .get("ssh_fingerprints")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = fingerprints.iter().find(|f| !f.starts_with("SHA256:")) {
            return Err(invalid("ssh_fingerprints", format!("{bad:?}: expected SHA256:… as ssh-keygen -lf prints it")));
        }
        let known_hosts = raw.get("ssh_known_hosts").map(PathBuf::from);
        if known_hosts.is_none() && fingerprints.is_empty() {
            return Err(invalid(
                "ssh_known_hosts",
                "set a known_hosts file or pinned fingerprints: host keys are always checked".into(),
            ));
        }
        Ok(Some(SshConfig {
            user: raw.get("ssh_user").unwrap_or("root").to_owned(),
            key_file: PathBuf::from(key_file),
            known_hosts,
            fingerprints,
            nodes,
            connect_timeout: Duration::from_secs(raw.parse("ssh_connect_timeout_secs")?.unwrap_or(10)),
            command_timeout: Duration::from_secs(raw.parse("ssh_command_timeout_secs")?.unwrap_or(120)),
        }))
    }

    /// Where node `node` is reached: its `PROXDESK_SSH_NODES` entry, else the node name on port 22.
    pub fn target_for_node(&self, node: &str) -> SshTarget {
        match self.nodes.get(node) {
            Some((host, port)) => SshTarget { host: host.clone(), port: *port },
            None => SshTarget { host: node.to_owned(), port: 22 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_map_parses_with_default_port() {
        let mut raw = RawSettings::defaults();
        raw.set("ssh_key_file", "/k");
        raw.set("ssh_fingerprints", "SHA256:abc");
        raw.set("ssh_nodes", "pve1=10.0.0.11:2222, pve2=10.0.0.12");
        let c = SshConfig::from_settings(&raw).unwrap().unwrap();
        assert_eq!(c.target_for_node("pve1"), SshTarget { host: "10.0.0.11".into(), port: 2222 });
        assert_eq!(c.target_for_node("pve2"), SshTarget { host: "10.0.0.12".into(), port: 22 });
        assert_eq!(c.target_for_node("pve3"), SshTarget { host: "pve3".into(), port: 22 });
        raw.set("ssh_nodes", "pve1");
        assert!(SshConfig::from_settings(&raw).is_err());
    }

    #[test]
    fn host_keys_must_be_checked_somehow() {
        let mut raw = RawSettings::defaults();
        raw.set("ssh_key_file", "/k");
        assert!(SshConfig::from_settings(&raw).is_err());
        raw.set("ssh_fingerprints", "MD5:aa");
        assert!(SshConfig::from_settings(&raw).is_err());
    }
}
