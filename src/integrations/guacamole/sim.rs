//! A Guacamole simulator: a real HTTP server speaking the REST wire of the Java web app with the JDBC
//! extension (reference §11), with inspectable state, call counters, latency and fault injection.

mod groups;
mod patch;
mod routes;
pub mod state;
mod users;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::Server;
use poem::listener::TcpAcceptor;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use state::{Perms, SimConnection, SimGroup, SimState, SimUser};

/// How a simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The administrator account a fresh Guacamole has.
    pub admin_user: String,
    /// Its password.
    pub admin_password: String,
    /// The JDBC data source name.
    pub data_source: String,
    /// Idle time after which a token dies (`api-session-timeout`, 60 minutes by default).
    pub session_timeout: Duration,
    /// Delay added to every call.
    pub latency: Duration,
    /// Failed logins after which logins are refused with 429 (`ban-max-invalid-attempts`); 0: never.
    pub ban_after: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_user: "guacadmin".into(),
            admin_password: "guacadmin".into(),
            data_source: "postgresql".into(),
            session_timeout: Duration::from_secs(60 * 60),
            latency: Duration::ZERO,
            ban_after: 5,
        }
    }
}

/// A fault to answer instead of the real response.
#[derive(Debug, Clone)]
pub struct Fault {
    /// HTTP method to match (`GET`, `PATCH`…); `None`: any.
    pub method: Option<String>,
    /// Substring of the path after `/api/` to match, e.g. `session/data/postgresql/connections`.
    pub path_contains: String,
    /// Status to answer; the body is an `APIError` of the matching type.
    pub status: u16,
    /// How many matching calls fail; `None`: all of them.
    pub times: Option<u32>,
}

/// Counts of calls the simulator answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls by HTTP method.
    pub by_method: BTreeMap<String, u64>,
    /// Calls that change stored data (POST/PUT/PATCH/DELETE under `/api/session/data`).
    pub writes: u64,
    /// Logins (`POST /api/tokens`).
    pub logins: u64,
}

impl CallCounts {
    /// Every call answered.
    pub fn total(&self) -> u64 {
        self.by_method.values().sum()
    }
}

pub(crate) struct Shared {
    pub config: SimConfig,
    pub state: Mutex<SimState>,
    pub calls: Mutex<CallCounts>,
    pub faults: Mutex<Vec<Fault>>,
    pub latency: Mutex<Duration>,
    pub failed_logins: Mutex<u32>,
}

/// A running simulator; stops when dropped.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds `config.listen` and serves until the handle is dropped.
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let mut state = SimState::default();
        state.users.insert(
            config.admin_user.clone(),
            SimUser {
                username: config.admin_user.clone(),
                password: Some(config.admin_password.clone()),
                disabled: false,
                attributes: BTreeMap::new(),
                perms: Perms {
                    user: BTreeMap::from([(
                        config.admin_user.clone(),
                        state::ALL_OBJECT.iter().map(|s| s.to_string()).collect(),
                    )]),
                    system: [
                        "ADMINISTER",
                        "CREATE_USER",
                        "CREATE_USER_GROUP",
                        "CREATE_CONNECTION",
                        "CREATE_CONNECTION_GROUP",
                        "CREATE_SHARING_PROFILE",
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                    ..Perms::default()
                },
            },
        );
        let shared = Arc::new(Shared {
            latency: Mutex::new(config.latency),
            config,
            state: Mutex::new(state),
            calls: Mutex::new(CallCounts::default()),
            faults: Mutex::new(Vec::new()),
            failed_logins: Mutex::new(0),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let endpoint = routes::endpoint(shared.clone());
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    endpoint,
                    async {
                        let _ = stopped.await;
                    },
                    Some(Duration::from_secs(1)),
                )
                .await;
        });
        Ok(SimHandle { addr, shared, _stop: stop })
    }
}

impl SimHandle {
    /// The base URL, as `PROXDESK_GUAC_URL` takes it: `http://127.0.0.1:PORT/guacamole`.
    pub fn url(&self) -> String {
        format!("http://{}/guacamole", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of the stored state.
    pub fn state(&self) -> SimState {
        self.shared.state.lock().expect("sim state").clone()
    }

    /// Changes the stored state directly (behind Guacamole's back, as a database edit would).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        let mut state = self.shared.state.lock().expect("sim state");
        let out = f(&mut state);
        state.reindex();
        out
    }

    /// Calls answered so far.
    pub fn calls(&self) -> CallCounts {
        self.shared.calls.lock().expect("sim calls").clone()
    }

    /// Sets the call counters back to zero.
    pub fn reset_calls(&self) {
        *self.shared.calls.lock().expect("sim calls") = CallCounts::default();
    }

    /// Adds a fault; faults are matched in the order added.
    pub fn inject_fault(&self, fault: Fault) {
        self.shared.faults.lock().expect("sim faults").push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().expect("sim faults").clear();
    }

    /// Changes the delay added to every call.
    pub fn set_latency(&self, latency: Duration) {
        *self.shared.latency.lock().expect("sim latency") = latency;
    }

    /// Ends every session at once, as the idle timeout would.
    pub fn expire_sessions(&self) {
        self.shared.state.lock().expect("sim state").sessions.clear();
    }

    /// Creates a user with a password and the given system permissions.
    pub fn add_user(&self, username: &str, password: &str, system: &[&str]) {
        let mut perms = Perms::default();
        perms.user.insert(username.into(), BTreeSet::from(["READ".to_owned()]));
        perms.system = system.iter().map(|s| s.to_string()).collect();
        self.with_state(|s| {
            s.users.insert(
                username.into(),
                SimUser {
                    username: username.into(),
                    password: Some(password.into()),
                    disabled: false,
                    attributes: BTreeMap::new(),
                    perms,
                },
            )
        });
    }
}
