//! `proxdesk check`, SSH part: each node is reached with the configured key and host-key policy, and
//! `pct list` must run there, since finishing a container is `pct exec` on its node.

use std::fmt;
use std::time::Duration;

use super::{SshConfig, SshError, SshTarget, run};

/// The probe run on each node: it needs `pct` and the rights to list the node's containers.
pub const PROBE: &str = "pct list";

/// A probe may not wait as long as a finishing command does.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// What one node answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// `pct list` ran; the number of containers it listed.
    Ok { containers: usize },
    /// The node's host key is not the pinned or known one (unknown or changed).
    HostKey(String),
    /// The key was refused.
    Auth(String),
    /// No connection (address, port, firewall, timeout).
    Unreachable(String),
    /// Logged in, but `pct` is not there (not a Proxmox node, or a PATH without it).
    NoPct(String),
    /// `pct list` failed otherwise (no rights, a broken node).
    Failed(String),
}

impl NodeState {
    pub fn is_ok(&self) -> bool {
        matches!(self, NodeState::Ok { .. })
    }
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct NodeCheck {
    pub node: String,
    pub target: SshTarget,
    pub state: NodeState,
}

/// The SSH part of the report; `Display` prints it as a table.
#[derive(Debug, Clone)]
pub struct SshReport {
    pub user: String,
    pub nodes: Vec<NodeCheck>,
}

impl SshReport {
    pub fn all_ok(&self) -> bool {
        self.nodes.iter().all(|n| n.state.is_ok())
    }
}

/// Checks every node in `nodes`, one after another (a handful of nodes; each bounded in time).
pub async fn run_checks(config: &SshConfig, nodes: &[String]) -> SshReport {
    let mut probe_config = config.clone();
    probe_config.command_timeout = config.command_timeout.min(PROBE_TIMEOUT);
    let mut rows = Vec::with_capacity(nodes.len());
    for node in nodes {
        let target = config.target_for_node(node);
        let state = probe(&probe_config, &target).await;
        rows.push(NodeCheck { node: node.clone(), target, state });
    }
    SshReport { user: config.user.clone(), nodes: rows }
}

async fn probe(config: &SshConfig, target: &SshTarget) -> NodeState {
    match run(config, target, PROBE, None).await {
        Ok(out) if out.success() => {
            // The first line is the header (`VMID Status Lock Name`); no containers prints nothing.
            let containers = out.stdout.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
            NodeState::Ok { containers }
        }
        Ok(out) if out.exit_status == 127 => NodeState::NoPct(first_line(&out.stderr)),
        Ok(out) => NodeState::Failed(format!("exit {}: {}", out.exit_status, first_line(&out.stderr))),
        Err(e @ (SshError::UnknownHostKey { .. } | SshError::HostKeyMismatch { .. } | SshError::NoHostKeyPolicy)) => {
            NodeState::HostKey(e.to_string())
        }
        Err(e @ SshError::Auth { .. }) => NodeState::Auth(e.to_string()),
        Err(e @ (SshError::Connect { .. } | SshError::Timeout { .. })) => NodeState::Unreachable(e.to_string()),
        Err(e @ SshError::Protocol { .. }) => NodeState::Failed(e.to_string()),
    }
}

fn first_line(text: &str) -> String {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no message)").trim().to_owned()
}

impl fmt::Display for SshReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nSSH NODE         TARGET                   STATE (as {}, `{PROBE}`)", self.user)?;
        if self.nodes.is_empty() {
            writeln!(f, "(no online node to check)")?;
        }
        for n in &self.nodes {
            let state = match &n.state {
                NodeState::Ok { containers } => format!("ok ({containers} containers)"),
                NodeState::HostKey(m) => format!("host key refused: {m}"),
                NodeState::Auth(m) => format!("login refused: {m}"),
                NodeState::Unreachable(m) => format!("unreachable: {m}"),
                NodeState::NoPct(m) => format!("pct not found: {m}"),
                NodeState::Failed(m) => format!("failed: {m}"),
            };
            writeln!(f, "{:<16} {:<24} {state}", n.node, n.target.to_string())?;
        }
        Ok(())
    }
}
