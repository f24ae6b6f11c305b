//! The command line: `serve`, `migrate`, `user add`, `token create`, `demo`, `sim`.

use std::io::Read;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, RawSettings, Settings};
use crate::domain::roles::Role;
use crate::secrets::Secret;
use crate::services::{self, ServiceError};
use crate::startup::{App, StartupError, shutdown_signal};

#[derive(Debug, Parser)]
#[command(name = "proxdesk", version, about = "Self-service desk for Proxmox VE")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (migrations are applied first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run a self-contained demo: seeded users, catalog and quotas, on a temporary data dir unless
    /// PROXDESK_DATA_DIR is set.
    Demo,
    /// Check the configured Proxmox VE cluster: version, nodes, catalog templates, token privileges.
    Check,
    /// Keep Apache Guacamole in step with the cluster.
    #[command(subcommand)]
    Guac(GuacCommand),
    /// Run a simulator of a system proxdesk drives.
    #[command(subcommand)]
    Sim(SimCommand),
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve a Proxmox VE simulator (3 nodes, templates 9000-9002, a few VMs, or --guests N) until Ctrl-C.
    Pve(Box<SimPveArgs>),
    /// Simulate Apache Guacamole's REST API (JDBC data source `postgresql`) until Ctrl-C.
    Guacamole {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        /// Administrator username, as a fresh Guacamole has.
        #[arg(long, default_value = "guacadmin")]
        user: String,
        /// Administrator password.
        #[arg(long, default_value = "guacadmin")]
        password: String,
        /// Delay added to every call, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
}

#[derive(Debug, clap::Args)]
pub struct SimPveArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8006")]
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS with a fresh self-signed certificate (its fingerprint is printed).
    #[arg(long)]
    pub tls: bool,
    /// Password of root@pam.
    #[arg(long, default_value = "proxdesk")]
    pub root_password: String,
    /// API token USER@REALM!ID=SECRET with every privilege on / (repeatable).
    #[arg(long)]
    pub token: Vec<String>,
    /// Latency added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Seed for MACs, IPs, PIDs and console passwords, and for the generated inventory.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Replace the sample VMs 100-102 with N generated guests mixed like a real cluster's (QEMU and
    /// LXC, guest agents in every state, Windows, docker0, static and missing addresses, notes) on
    /// nodes pve1..pveK, K = max(3, N/400); the templates 9000-9002 stay.
    #[arg(long)]
    pub guests: Option<usize>,
    /// How long a hung guest agent keeps a call waiting before `QEMU guest agent is not running`.
    #[arg(long, default_value_t = 3000)]
    pub agent_timeout_ms: u64,
    /// Answer 401s at once instead of after PVE's ~3 s delay.
    #[arg(long)]
    pub no_auth_delay: bool,
    /// Duration of clone tasks, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub clone_ms: u64,
    /// Duration of start/stop/shutdown/reboot/delete/resize tasks, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub power_ms: u64,
    /// Delay between a container starting and its IPv4 address showing, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub ip_delay_ms: u64,
    /// VNC server (host:port) that vncproxy websockets are bridged to.
    #[arg(long)]
    pub vnc_backend: Option<std::net::SocketAddr>,
    /// Terminal server (host:port, raw TCP) that termproxy websockets are bridged to; default: echo.
    #[arg(long)]
    pub term_backend: Option<std::net::SocketAddr>,
    /// TigerVNC password file (`Xvnc -PasswordFile`) to write each vncproxy session's VNC password into.
    #[arg(long)]
    pub vnc_password_file: Option<std::path::PathBuf>,
    /// Old-style VNC tickets: no `password` in vncproxy answers, the ticket is the VNC password.
    #[arg(long)]
    pub legacy_vnc_tickets: bool,
    /// Fault ENDPOINT=FAULT (repeatable): latency:MS, status:CODE:MESSAGE, drop, task-error:MESSAGE,
    /// task-hang; endpoints like lxc-clone, lxc-start, version, task-status.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Also serve the nodes' SSH side here (e.g. 127.0.0.1:2222): `pct exec` runs proxdesk's
    /// finishing command against the simulated containers.
    #[arg(long, requires = "ssh_authorized_key")]
    pub ssh_listen: Option<std::net::SocketAddr>,
    /// OpenSSH public key file (one key a line, like authorized_keys) allowed to log in as root.
    #[arg(long, requires = "ssh_listen")]
    pub ssh_authorized_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum GuacCommand {
    /// Sync now: print the plan as a table; without --dry-run also apply it and print what changed.
    Sync {
        #[arg(long)]
        dry_run: bool,
    },
    /// Encrypt the plain passwords in VM notes with PROXDESK_NOTES_KEY, writing the notes back through
    /// Proxmox VE (a VM edited meanwhile is left alone). Prints what changed per VM, never a password.
    EncryptNotes {
        /// Only print what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. Prints a generated password once, or reads one from stdin with --password-stdin.
    Add {
        name: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print it once.
    Create {
        user: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Startup(#[from] StartupError),
    #[error("{0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Jobs(#[from] jobs::JobError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Pve(#[from] crate::integrations::pve::PveError),
    #[error("{0}")]
    PveConfig(#[from] crate::integrations::pve::PveConfigError),
}

impl From<ServiceError> for CliError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(errors) => CliError::Usage(
                errors
                    .0
                    .iter()
                    .map(|e| format!("{}: {}", e.field, crate::http::i18n::message("en", e.code, &e.params)))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => CliError::Usage(other.to_string()),
        }
    }
}

fn load_settings() -> Result<Settings, CliError> {
    let raw = RawSettings::load()?;
    crate::telemetry::init(raw.get("log").unwrap_or("info"));
    Ok(raw.into_settings()?)
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    crate::integrations::install_tls_provider();
    match cli.command {
        Command::Serve => {
            let settings = load_settings()?;
            crate::http::assets::ensure_vendor(&crate::http::assets::static_dir(&settings));
            let listener = tokio::net::TcpListener::bind(settings.listen).await?;
            let app = App::build(settings, listener).await?;
            app.run_until_stopped(shutdown_signal()).await?;
        }
        Command::Migrate => {
            let settings = load_settings()?;
            let db = crate::db::connect(&settings.database_url, 1).await?;
            crate::db::migrate(&db).await?;
            println!("migrations applied");
        }
        Command::User(UserCommand::Add { name, admin, password_stdin }) => {
            let settings = load_settings()?;
            let db = crate::db::connect(&settings.database_url, 1).await?;
            crate::db::migrate(&db).await?;
            let password = if password_stdin {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                Some(Secret::new(s.trim_end_matches(['\r', '\n']).to_owned()))
            } else {
                None
            };
            let role = if admin { Role::Admin } else { Role::User };
            let new = services::users::NewUser { username: name, role, password };
            let (user, generated) = services::users::create(&db, None, new).await?;
            println!("created {} ({})", user.username, user.role);
            if let Some(pw) = generated {
                println!("password: {}", pw.expose());
            }
        }
        Command::Token(TokenCommand::Create { user, name }) => {
            let settings = load_settings()?;
            let db = crate::db::connect(&settings.database_url, 1).await?;
            crate::db::migrate(&db).await?;
            let owner = services::users::find_by_name(&db, &user)
                .await?
                .ok_or_else(|| CliError::Usage(format!("no user named {user}")))?;
            let (_, token) = services::tokens::create(&db, None, owner.id, &name).await?;
            println!("{}", token.expose());
        }
        Command::Demo => crate::demo::run().await?,
        Command::Guac(GuacCommand::Sync { dry_run }) => guac_sync(dry_run).await?,
        Command::Guac(GuacCommand::EncryptNotes { dry_run }) => encrypt_notes(dry_run).await?,
        Command::Check => check().await?,
        Command::Sim(SimCommand::Pve(args)) => sim_pve(*args).await?,
        Command::Sim(SimCommand::Guacamole { listen, user, password, latency_ms }) => {
            use crate::integrations::guacamole::sim::{SimConfig, Simulator};
            crate::telemetry::init("info");
            let sim = Simulator::start(SimConfig {
                listen,
                admin_user: user,
                admin_password: password,
                latency: std::time::Duration::from_millis(latency_ms),
                ..SimConfig::default()
            })
            .await?;
            println!("Guacamole simulator at {}", sim.url());
            shutdown_signal().await;
        }
    }
    Ok(())
}

async fn check() -> Result<(), CliError> {
    use crate::integrations::pve::{self, check::CatalogTemplate};
    use sea_orm::EntityTrait;
    let settings = load_settings()?;
    let config = pve::PveConfig::from_settings(&settings)?
        .ok_or_else(|| CliError::Usage("PROXDESK_PVE_URL is not set".into()))?;
    let client = pve::Client::new(config)?;
    let db = crate::db::connect(&settings.database_url, 1).await?;
    crate::db::migrate(&db).await?;
    let catalog: Vec<CatalogTemplate> = entities::template::Entity::find()
        .all(&db)
        .await?
        .into_iter()
        .map(|t| CatalogTemplate { name: t.name, node: t.node, vmid: t.vmid as u64 })
        .collect();
    let report = pve::check::run(&client, &catalog).await?;
    println!("{report}");
    if report.all_ok() { Ok(()) } else { Err(CliError::Usage("some checks failed (see above)".into())) }
}

async fn sim_pve(args: SimPveArgs) -> Result<(), CliError> {
    use crate::integrations::pve::sim::{Fault, GeneratedInventory, SimConfig, Simulator, admin_acl};
    use std::time::Duration;
    crate::telemetry::init("info");
    let mut config = SimConfig {
        seed: args.seed,
        root_password: args.root_password.clone(),
        clone_duration: Duration::from_millis(args.clone_ms),
        power_duration: Duration::from_millis(args.power_ms),
        ip_delay: Duration::from_millis(args.ip_delay_ms),
        latency: Duration::from_millis(args.latency_ms),
        tls: args.tls,
        vnc_backend: args.vnc_backend,
        term_backend: args.term_backend,
        vnc_password_file: args.vnc_password_file.clone(),
        legacy_vnc_tickets: args.legacy_vnc_tickets,
        generated: args.guests.map(|guests| GeneratedInventory { guests, seed: args.seed }),
        agent_timeout: Duration::from_millis(args.agent_timeout_ms),
        ..SimConfig::default()
    };
    if args.no_auth_delay {
        config.auth_failure_delay = Duration::ZERO;
    }
    for token in &args.token {
        let (id, secret) = token
            .rsplit_once('=')
            .filter(|(id, _)| id.contains('!') && id.contains('@'))
            .ok_or_else(|| CliError::Usage(format!("--token {token:?}: expected USER@REALM!ID=SECRET")))?;
        config = config.with_token(id, secret, admin_acl());
    }
    let faults =
        args.faults.iter().map(|f| Fault::parse_spec(f)).collect::<Result<Vec<_>, _>>().map_err(CliError::Usage)?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let sim = Simulator::start_on(listener, config).await?;
    for (endpoint, fault) in faults {
        sim.faults().inject(endpoint, fault);
    }
    println!("Proxmox VE simulator listening on {}", sim.url());
    if args.guests.is_some() {
        println!("  inventory: {}", sim.summary());
    }
    println!("  PROXDESK_PVE_URL={}", sim.url());
    if let Some(fp) = sim.fingerprint() {
        println!("  PROXDESK_PVE_FINGERPRINT={fp}");
    }
    for token in &args.token {
        println!("  PROXDESK_PVE_TOKEN={token}");
    }
    println!("  root@pam password: {}", args.root_password);
    let ssh = match (args.ssh_listen, &args.ssh_authorized_key) {
        (Some(addr), Some(key_file)) => Some(sim_ssh(&sim, addr, key_file).await?),
        _ => None,
    };
    println!("  call counts and guests: {}/_sim/stats", sim.url());
    shutdown_signal().await;
    if let Some(ssh) = ssh {
        ssh.stop();
    }
    sim.stop();
    Ok(())
}

/// Starts the simulator's SSH side and prints the `PROXDESK_SSH_*` settings that reach it.
async fn sim_ssh(
    sim: &crate::integrations::pve::sim::SimHandle,
    addr: std::net::SocketAddr,
    key_file: &std::path::Path,
) -> Result<crate::integrations::pve::sim::SimSshHandle, CliError> {
    use crate::integrations::pve::sim::{SimSsh, SimSshConfig};
    let text = std::fs::read_to_string(key_file)
        .map_err(|e| CliError::Usage(format!("--ssh-authorized-key {}: {e}", key_file.display())))?;
    let keys: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect();
    if keys.is_empty() {
        return Err(CliError::Usage(format!("--ssh-authorized-key {}: no public key in it", key_file.display())));
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let ssh = SimSsh::start(listener, sim, SimSshConfig::new(keys)).await?;
    println!("Simulated node SSH listening on {} (host key {})", ssh.addr(), ssh.host_key_fingerprint());
    // proxdesk needs the private key: by OpenSSH's naming, the public key file without `.pub`.
    let full = std::fs::canonicalize(key_file).unwrap_or_else(|_| key_file.to_owned());
    let private = match full.extension() {
        Some(e) if e == "pub" => full.with_extension(""),
        _ => "PRIVATE_KEY_FILE".into(),
    };
    for (name, value) in ssh.settings(&private) {
        println!("  {name}={value}");
    }
    println!("  known_hosts: {}", ssh.known_hosts_line(&ssh.addr().ip().to_string(), ssh.addr().port()));
    Ok(ssh)
}

async fn guac_sync(dry_run: bool) -> Result<(), CliError> {
    crate::integrations::install_tls_provider();
    let settings = load_settings()?;
    let raw = RawSettings(settings.raw.clone());
    let db = crate::db::connect(&settings.database_url, 2).await?;
    crate::db::migrate(&db).await?;
    let pve = match crate::integrations::pve::PveConfig::from_settings(&settings)
        .map_err(|e| CliError::Usage(e.to_string()))?
    {
        Some(c) => Some(crate::integrations::pve::Client::new(c).map_err(|e| CliError::Usage(e.to_string()))?),
        None => return Err(CliError::Usage("PROXDESK_PVE_URL is not set".into())),
    };
    let Some((sync, _)) = crate::startup::guac_sync(&db, pve.as_ref(), &raw, &settings)? else {
        return Err(CliError::Usage(
            "PROXDESK_GUAC_URL, PROXDESK_GUAC_USER and PROXDESK_GUAC_PASSWORD are not set".into(),
        ));
    };
    let report = sync.run(&db, dry_run).await.map_err(|e| CliError::Usage(e.to_string()))?;
    println!("{}", report.table);
    for d in &report.diagnostics {
        println!("{d}");
    }
    if !dry_run {
        println!("applied: {:?}", report.applied);
    }
    Ok(())
}

async fn encrypt_notes(dry_run: bool) -> Result<(), CliError> {
    use crate::integrations::guacamole::notes::FernetKey;
    let settings = load_settings()?;
    let Some(passphrase) = settings.raw.get("notes_key").filter(|k| !k.is_empty()) else {
        return Err(CliError::Usage("PROXDESK_NOTES_KEY is not set".into()));
    };
    let key = FernetKey::from_passphrase(&Secret::new(passphrase.clone()));
    let config = crate::integrations::pve::PveConfig::from_settings(&settings)?
        .ok_or_else(|| CliError::Usage("PROXDESK_PVE_URL is not set".into()))?;
    let pve = crate::integrations::pve::Client::new(config)?;
    let done = crate::workflows::guac_notes::encrypt_notes(&pve, &key, dry_run).await.map_err(CliError::Usage)?;
    let verb = if dry_run { "would encrypt" } else { "encrypted" };
    for c in &done.vms {
        let lines = c.lines.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
        println!("vm {} ({}): {verb} {} password(s), notes line(s) {lines}", c.vmid, c.name, c.entries);
    }
    for e in &done.errors {
        println!("{e}");
    }
    if done.vms.is_empty() && done.errors.is_empty() {
        println!("no plain passwords in any notes");
    }
    if done.errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Usage(format!("{} VM(s) not rewritten (see above)", done.errors.len())))
    }
}
