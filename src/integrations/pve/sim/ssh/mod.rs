//! The simulated node's SSH side: a real SSH server (russh) that accepts only the configured public
//! keys and runs proxdesk's finishing command (`pct exec <vmid> -- sh -c '…'`) against the
//! simulator's state, so the whole provisioning path runs without OpenSSH or a real node.
//!
//! ```no_run
//! # async fn demo(key_line: String) -> std::io::Result<()> {
//! use proxdesk::integrations::pve::sim::{SimConfig, SimSsh, SimSshConfig, Simulator};
//! let sim = Simulator::start(SimConfig::for_tests()).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let ssh = SimSsh::start(listener, &sim, SimSshConfig::new(vec![key_line])).await?;
//! println!("PROXDESK_SSH_FINGERPRINTS={}", ssh.host_key_fingerprint());
//! # Ok(()) }
//! ```

mod exec;
mod server;
mod words;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::SimHandle;
use crate::integrations::ssh::{SshConfig, fingerprint};

/// Who may log in to the simulated node, and which node it is.
#[derive(Debug, Clone)]
pub struct SimSshConfig {
    /// Public keys in OpenSSH format (`ssh-ed25519 AAAA… comment`); only these may log in.
    pub authorized_keys: Vec<String>,
    /// The only login user accepted (`root` by default, like `PROXDESK_SSH_USER`).
    pub user: String,
    /// The node this server stands for; `None` serves the containers of every node.
    pub node: Option<String>,
    /// Seeds the ed25519 host key; `None` derives it from the simulator's seed, so the same seed
    /// gives the same fingerprint.
    pub host_key_seed: Option<u64>,
}

impl SimSshConfig {
    /// `root` with `authorized_keys`, serving every node, host key from the simulator's seed.
    pub fn new(authorized_keys: Vec<String>) -> Self {
        Self { authorized_keys, user: "root".into(), node: None, host_key_seed: None }
    }
}

/// One `exec` request the server handled. The password never appears: only a hash of stdin's first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCommand {
    /// The login user that ran it.
    pub user: String,
    /// The command line as received.
    pub command: String,
    /// SHA-256 (hex) of the first line of stdin (where the password travels); `None` when stdin was empty.
    pub stdin_first_line_sha256: Option<String>,
    /// What was written to stderr.
    pub stderr: String,
    /// The exit status sent back (`exit-status` request).
    pub exit_status: u32,
}

/// Starts the SSH side of a simulator.
pub struct SimSsh;

impl SimSsh {
    /// Serves SSH on `listener` for `sim`'s state until the handle is dropped or stopped. Fails when
    /// an authorized key is not a valid OpenSSH public key.
    pub async fn start(
        listener: tokio::net::TcpListener,
        sim: &SimHandle,
        config: SimSshConfig,
    ) -> std::io::Result<SimSshHandle> {
        let addr = listener.local_addr()?;
        let authorized = config
            .authorized_keys
            .iter()
            .map(|line| {
                PublicKey::from_openssh(line.trim()).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("authorized key {line:?}: {e}"))
                })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let seed = config.host_key_seed.unwrap_or(sim.sim.cfg.seed);
        let host_key = host_key(seed);
        let public = host_key.public_key().to_bytes().map_err(std::io::Error::other)?;
        let shared = Arc::new(server::Shared {
            sim: sim.sim.clone(),
            user: config.user.clone(),
            node: config.node.clone(),
            authorized,
            commands: Mutex::new(Vec::new()),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(server::serve(listener, host_key, shared.clone(), stop_rx));
        let nodes = match &config.node {
            Some(n) => vec![n.clone()],
            None => sim.state().nodes,
        };
        Ok(SimSshHandle { addr, public, shared, nodes, stop: Some(stop_tx) })
    }
}

/// Writes a fresh ed25519 private key (OpenSSH format, mode 0600) to `path` and returns its public
/// line (`ssh-ed25519 AAAA… comment`): a client key pair for demos and tests, to put in
/// [`SimSshConfig::authorized_keys`] and `PROXDESK_SSH_KEY_FILE`.
pub fn write_client_key(path: &Path, comment: &str) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&rand::random()));
    key.set_comment(comment);
    let pem = key.to_openssh(russh::keys::ssh_key::LineEnding::LF).map_err(std::io::Error::other)?;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(pem.as_bytes())?;
    key.public_key().to_openssh().map_err(std::io::Error::other)
}

/// The ed25519 host key for `seed`: the same seed gives the same key.
fn host_key(seed: u64) -> PrivateKey {
    let mut hash = Sha256::new();
    hash.update(b"proxdesk simulated node ssh host key");
    hash.update(seed.to_le_bytes());
    PrivateKey::from(Ed25519Keypair::from_seed(&hash.finalize().into()))
}

/// A running SSH server of the simulator. Dropping it stops accepting connections.
pub struct SimSshHandle {
    addr: SocketAddr,
    /// The host key's public blob (SSH wire encoding).
    public: Vec<u8>,
    shared: Arc<server::Shared>,
    nodes: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
}

impl SimSshHandle {
    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host key's fingerprint as OpenSSH prints it (`SHA256:<base64, no padding>`), the form of
    /// `PROXDESK_SSH_FINGERPRINTS`.
    pub fn host_key_fingerprint(&self) -> String {
        fingerprint(&self.public)
    }

    /// The host key as a known_hosts line: `[host]:port ssh-ed25519 AAAA…` (plain `host` on port 22).
    pub fn known_hosts_line(&self, host: &str, port: u16) -> String {
        let key = base64::engine::general_purpose::STANDARD.encode(&self.public);
        match port {
            22 => format!("{host} ssh-ed25519 {key}"),
            _ => format!("[{host}]:{port} ssh-ed25519 {key}"),
        }
    }

    /// Every exec request handled so far, oldest first.
    pub fn commands(&self) -> Vec<RecordedCommand> {
        self.shared.commands.lock().expect("commands").clone()
    }

    /// The `PROXDESK_SSH_*` settings that point proxdesk at this server, with the private key at `key_file`.
    pub fn settings(&self, key_file: &Path) -> Vec<(&'static str, String)> {
        vec![
            ("PROXDESK_SSH_KEY_FILE", key_file.display().to_string()),
            ("PROXDESK_SSH_USER", self.shared.user.clone()),
            ("PROXDESK_SSH_FINGERPRINTS", self.host_key_fingerprint()),
            (
                "PROXDESK_SSH_NODES",
                self.nodes.iter().map(|n| format!("{n}={}", self.addr)).collect::<Vec<_>>().join(","),
            ),
        ]
    }

    /// An [`SshConfig`] equal to what [`SimSshHandle::settings`] would configure: fingerprint pinned,
    /// every served node mapped to this server.
    pub fn ssh_config(&self, key_file: &Path) -> SshConfig {
        SshConfig {
            user: self.shared.user.clone(),
            key_file: key_file.to_owned(),
            known_hosts: None,
            fingerprints: vec![self.host_key_fingerprint()],
            nodes: self.nodes.iter().map(|n| (n.clone(), (self.addr.ip().to_string(), self.addr.port()))).collect(),
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
        }
    }

    /// Stops accepting connections.
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for SimSshHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
