//! A Proxmox VE simulator: a real HTTP(S) server speaking PVE's wire format (pve-api.md §13), with
//! state that behaves like PVE's, fault injection, and consoles bridged to real backends.
//!
//! ```no_run
//! # async fn demo() {
//! use proxdesk::integrations::pve::sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::for_tests()).await.unwrap();
//! println!("{}", sim.url());
//! # }
//! ```

pub mod access;
mod auth;
mod cloudinit;
mod cluster;
mod console;
mod discovery;
mod drive;
mod faults;
mod generate;
mod guest_config;
mod guest_net;
mod http;
mod interfaces;
mod inventory;
mod lxc;
mod metrics;
mod nic;
mod params;
mod passwd;
mod qemu;
mod qemu_checks;
mod qemu_clone;
mod qemu_config;
mod qemu_create;
mod qemu_destroy;
mod qemu_power;
mod qemu_schema;
mod qemu_update;
mod reply;
mod routes;
mod server;
mod shacrypt;
mod snapshot_tree;
mod snapshots;
mod ssh;
mod state;
mod summary;
mod tasks;
mod volumes;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::oneshot;

pub use auth::{Acl, SimIdentity, admin_acl};
pub use cloudinit::CloudInitImage;
pub use faults::{CallCounter, Endpoint, Fault, Faults};
pub use generate::GeneratedInventory;
pub use guest_net::{AgentState, Dhcp, DockerBridge, GuestOs};
pub use passwd::{Account, Passwd};
pub use snapshot_tree::Snapshot;
pub use ssh::{RecordedCommand, SimSsh, SimSshConfig, SimSshHandle, write_client_key};
pub use state::{
    ConsoleSession, FinishRecord, Guest, GuestKind, NetworkDef, State, StorageDef, StorageFile, Task, TaskState,
};

/// SHA-256-crypt (`$5$`) as PVE stores `cipassword`: hash and check, for tests comparing what a guest
/// received with what was asked.
pub mod sha256_crypt {
    pub use super::shacrypt::{hash, verify};
}
pub use summary::InventorySummary;

/// How the simulator behaves. `Default` is for humans (PVE-like timings); see [`SimConfig::for_tests`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seeds MACs, IPs, PIDs, passwords and the signing key: same seed, same answers.
    pub seed: u64,
    /// Password of `root@pam` (ticket login; root tickets bypass every ACL).
    pub root_password: String,
    /// Further users (`name@realm` + password) and API tokens (`name@realm!id` + secret) with ACLs,
    /// added to `access` at start: each `(path, privileges)` becomes a custom role granted on `path`
    /// with propagation (see `access::seed`), so they are checked by PVE's evaluation like any user.
    pub identities: Vec<SimIdentity>,
    /// How long a clone task runs (source and target stay locked meanwhile).
    pub clone_duration: Duration,
    /// How long start/stop/shutdown/reboot/delete/resize tasks run.
    pub power_duration: Duration,
    /// How long snapshot create/rollback/delete tasks run (the guest holds its lock meanwhile).
    pub snapshot_duration: Duration,
    /// Delay between a CT starting and its IPv4 address showing in `interfaces`.
    pub ip_delay: Duration,
    /// PVE's deliberate delay before 401 answers (~3 s).
    pub auth_failure_delay: Duration,
    /// Added to every answer.
    pub latency: Duration,
    /// How long a new guest shows in `/cluster/resources` with `status: "unknown"` and no name, as
    /// pvestatd's RRD cache lags (~10 s on PVE, pve-api.md §5).
    pub rrd_lag: Duration,
    /// Serve HTTPS with a fresh self-signed certificate.
    pub tls: bool,
    /// A VNC server (RFB) the `vncwebsocket` of a `vncproxy` session is bridged to.
    pub vnc_backend: Option<SocketAddr>,
    /// A terminal (raw TCP, e.g. `socat … EXEC:bash,pty`) a `termproxy` session is bridged to.
    pub term_backend: Option<SocketAddr>,
    /// A TigerVNC password file (`-PasswordFile`) the simulator writes each `vncproxy` session's
    /// VNC password into, the way PVE sets QEMU's VNC password per session (pve-api.md §8.1).
    pub vnc_password_file: Option<std::path::PathBuf>,
    /// Behave like PVE before April 2026: no `password` in `vncproxy` answers, the ticket is the
    /// VNC password (its first 8 bytes count).
    pub legacy_vnc_tickets: bool,
    /// Start with the default inventory (3 nodes, templates 9000–9002 and 9100, a few VMs); else empty nodes.
    pub default_inventory: bool,
    /// Instead of the default inventory's sample VMs, N generated guests mixed like a real cluster's
    /// (see [`GeneratedInventory`]), on nodes `pve1…pveK`; the templates stay.
    pub generated: Option<GeneratedInventory>,
    /// How long PVE waits for a hung guest agent's ping before `QEMU guest agent is not running` (3 s).
    pub agent_timeout: Duration,
    /// Realms, users, groups, pools, roles and ACLs (seeds `State::access`).
    pub access: access::AccessConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            root_password: "proxdesk".into(),
            identities: vec![],
            clone_duration: Duration::from_secs(3),
            power_duration: Duration::from_secs(1),
            snapshot_duration: Duration::from_secs(2),
            ip_delay: Duration::from_secs(3),
            auth_failure_delay: Duration::from_secs(3),
            latency: Duration::ZERO,
            rrd_lag: Duration::from_secs(10),
            tls: false,
            vnc_backend: None,
            term_backend: None,
            vnc_password_file: None,
            legacy_vnc_tickets: false,
            default_inventory: true,
            generated: None,
            agent_timeout: Duration::from_secs(3),
            access: access::AccessConfig::default(),
        }
    }
}

impl SimConfig {
    /// Short durations (clone 100 ms, power 20 ms, IP 50 ms), no RRD lag and no 401 delay; the agent's
    /// ping timeout stays PVE's 3 s, as clients must budget for it.
    pub fn for_tests() -> Self {
        Self {
            rrd_lag: Duration::ZERO,
            clone_duration: Duration::from_millis(100),
            power_duration: Duration::from_millis(20),
            snapshot_duration: Duration::from_millis(50),
            ip_delay: Duration::from_millis(50),
            auth_failure_delay: Duration::ZERO,
            ..Self::default()
        }
    }

    /// Adds an API token (`user@realm!id`) with `secret` and its own ACL.
    pub fn with_token(mut self, authid: &str, secret: &str, acl: Acl) -> Self {
        self.identities.push(SimIdentity { authid: authid.into(), secret: secret.into(), acl });
        self
    }

    /// Adds a user (`user@realm`) with a password and an ACL.
    pub fn with_user(mut self, userid: &str, password: &str, acl: Acl) -> Self {
        self.identities.push(SimIdentity { authid: userid.into(), secret: password.into(), acl });
        self
    }
}

/// The shared core every handler sees.
pub(crate) struct Sim {
    pub(crate) cfg: SimConfig,
    pub(crate) state: Mutex<State>,
    pub(crate) faults: Faults,
    pub(crate) calls: CallCounter,
    pub(crate) rng: Mutex<StdRng>,
    pub(crate) signer: auth::Signer,
    pub(crate) kills: server::Kills,
    pub(crate) cert_pem: String,
    /// What stopping a running task undoes (a clone's target and locks), by UPID.
    pub(crate) stoppers: Mutex<std::collections::HashMap<String, tasks::Work>>,
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds `127.0.0.1:0` and serves until the handle is dropped.
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::start_on(listener, config).await
    }

    /// Serves on `listener` until the handle is dropped or [`SimHandle::stop`] is called.
    pub async fn start_on(listener: tokio::net::TcpListener, config: SimConfig) -> std::io::Result<SimHandle> {
        crate::integrations::install_tls_provider();
        let addr = listener.local_addr()?;
        let (tls, cert_pem, fingerprint) = if config.tls {
            let (tls, pem, fp) = server::self_signed().map_err(std::io::Error::other)?;
            (Some(tls), pem, Some(fp))
        } else {
            (None, String::new(), None)
        };
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rng, &mut key);
        let state = inventory::build(&config, &mut rng);
        let kills = server::Kills::default();
        let sim = Arc::new(Sim {
            cfg: config,
            state: Mutex::new(state),
            faults: Faults::default(),
            calls: CallCounter::default(),
            rng: Mutex::new(rng),
            signer: auth::Signer::new(key),
            kills: kills.clone(),
            cert_pem,
            stoppers: Mutex::default(),
        });
        let acceptor = server::SimAcceptor::new(listener, tls, kills)?;
        let app = http::app(sim.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let server = poem::Server::new_with_acceptor(acceptor);
            let _ = server
                .run_with_graceful_shutdown(
                    app,
                    async { stop_rx.await.ok().unwrap_or(()) },
                    Some(Duration::from_secs(1)),
                )
                .await;
        });
        let scheme = if fingerprint.is_some() { "https" } else { "http" };
        Ok(SimHandle { sim, addr, url: format!("{scheme}://{addr}"), fingerprint, stop: Some(stop_tx) })
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    sim: Arc<Sim>,
    addr: SocketAddr,
    url: String,
    fingerprint: Option<String>,
    stop: Option<oneshot::Sender<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT` (or `https://…`), the form users configure as `PROXDESK_PVE_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// SHA-256 fingerprint of the certificate (`AB:CD:…`) when serving TLS.
    pub fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }
    /// A copy of the whole state, for assertions.
    pub fn state(&self) -> State {
        self.sim.state.lock().expect("state").clone()
    }
    /// Changes the state directly (test set-up: a lock, a running guest…).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.sim.state.lock().expect("state"))
    }
    /// Changes access control at run time (a user disabled, an ACL entry removed…); the next call sees it.
    pub fn with_access<R>(&self, f: impl FnOnce(&mut access::AccessConfig) -> R) -> R {
        f(&mut self.sim.state.lock().expect("state").access)
    }
    /// The inventory's mix (kinds, agents, addresses, notes), templates left out.
    pub fn summary(&self) -> InventorySummary {
        InventorySummary::of(&self.sim.state.lock().expect("state"))
    }
    /// Fault injection per endpoint.
    pub fn faults(&self) -> &Faults {
        &self.sim.faults
    }
    /// Calls received per endpoint.
    pub fn calls(&self) -> &CallCounter {
        &self.sim.calls
    }
    /// Marks the OS of VM `vmid` installed (an ISO VM after its installer ran): its guest agent answers
    /// and its NIC gets a DHCP lease, at once when it is running. Returns whether the VM exists.
    pub fn install_os(&self, vmid: u64) -> bool {
        let lease = {
            let mut rng = self.sim.rng.lock().expect("rng");
            std::net::Ipv4Addr::new(10, 30, (vmid % 250) as u8, rand::Rng::random_range(&mut *rng, 2..250))
        };
        let mut state = self.sim.state.lock().expect("state");
        let Some(g) = state.guests.get_mut(&vmid) else { return false };
        g.agent = AgentState::Responsive;
        g.dhcp = Dhcp::Answers;
        if g.running {
            g.ip = Some(g.ip.unwrap_or(lease));
            g.ip_ready_at = Some(std::time::Instant::now());
        }
        true
    }
    /// Invalidates every ticket issued so far (as if the auth key had been rotated twice and the old
    /// tickets had expired), so a client must log in again.
    pub fn revoke_tickets(&self) {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut *self.sim.rng.lock().expect("rng"), &mut key);
        self.sim.signer.rotate(key);
    }
    /// Stops serving.
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
