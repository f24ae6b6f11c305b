//! `proxdesk sim pve`: the Proxmox VE simulator (and its nodes' SSH side) as a process.

use super::CliError;
use crate::startup::shutdown_signal;

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

pub(super) async fn pve(args: SimPveArgs) -> Result<(), CliError> {
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
        (Some(addr), Some(key_file)) => Some(ssh(&sim, addr, key_file).await?),
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
async fn ssh(
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
