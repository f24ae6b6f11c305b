//! The command line: `serve`, `migrate`, `user add`, `token create`, `backup`, `restore`, `demo`, `check`,
//! `guac`, `sim`.

use std::io::Read;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, RawSettings, Settings};
use crate::domain::roles::Role;
use crate::secrets::Secret;
use crate::services::{self, ServiceError};
use crate::startup::{App, StartupError, shutdown_signal};

mod check;
mod sim;

pub use sim::SimPveArgs;

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
    Demo {
        /// Fill the simulated cluster with this many generated guests, in the mix a real cluster has
        /// (agents in every state, Windows, Docker bridges, static addresses, credential notes).
        #[arg(long)]
        guests: Option<usize>,
    },
    /// Write a consistent copy of the SQLite database to FILE while the desk keeps serving (on
    /// PostgreSQL use pg_dump, see the README).
    Backup { file: std::path::PathBuf },
    /// Fill the configured, empty database from FILE (a backup file, or a pg_dump archive on PostgreSQL),
    /// then apply newer migrations. Refuses a database that holds anything.
    Restore { file: std::path::PathBuf },
    /// Check the configured Proxmox VE cluster (version, nodes, catalog templates, token privileges),
    /// SSH to its nodes (host keys, `pct`) and the Guacamole account (login, data source, permissions).
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
    Backup(#[from] crate::db::backup::BackupError),
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
    crate::telemetry::init_as(raw.get("log").unwrap_or("info"), raw.get("log_format"));
    warn_unknown_keys(&raw);
    Ok(raw.into_settings()?)
}

/// A key proxdesk does not know is most likely a typo: say so, but start. The same for a PVE or
/// Guacamole URL that would carry tokens and passwords in clear over the network.
pub(crate) fn warn_unknown_keys(raw: &RawSettings) {
    for key in raw.unknown_keys() {
        tracing::warn!(%key, "unknown setting ignored (see the README's configuration tables)");
    }
    for (key, url) in raw.plain_http_urls() {
        tracing::warn!(%key, %url, "plain http to another host: its tokens and passwords cross the network in clear; use https");
    }
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
        Command::Backup { file } => {
            let settings = load_settings()?;
            let held = crate::db::backup::backup(&settings.database_url, &file).await?;
            println!("backed up {held} to {}", file.display());
        }
        Command::Restore { file } => {
            let settings = load_settings()?;
            let held = crate::db::backup::restore(&settings.database_url, &file, &settings.secret_key).await?;
            println!("restored {held} from {}", file.display());
        }
        Command::Demo { guests } => crate::demo::run(guests).await?,
        Command::Guac(GuacCommand::Sync { dry_run }) => guac_sync(dry_run).await?,
        Command::Guac(GuacCommand::EncryptNotes { dry_run }) => encrypt_notes(dry_run).await?,
        Command::Check => check::run().await?,
        Command::Sim(SimCommand::Pve(args)) => sim::pve(*args).await?,
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
