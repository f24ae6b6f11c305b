//! SSH to Proxmox nodes (or straight to guests) with ssh2, run on the blocking pool.
//!
//! Host keys are always checked: against an OpenSSH `known_hosts` file and/or pinned SHA-256
//! fingerprints. An unknown or changed key is a refusal, never a prompt.

pub mod check;
mod config;
mod finish;
mod quote;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};
use ssh2::{CheckResult, KnownHostFileKind, Session};

pub use config::{SshConfig, SshTarget};
pub use finish::{EXIT_SYSTEM_ACCOUNT, FinishMode, FinishSpec, LOGIN_UID_MAX, LOGIN_UID_MIN, finish_command};
pub use quote::shell_quote;

/// What went wrong talking SSH.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },
    #[error("host key of {target} ({fingerprint}) is not known; add it to known_hosts or pin its fingerprint")]
    UnknownHostKey { target: String, fingerprint: String },
    #[error("host key of {target} changed (now {fingerprint}); refusing to connect")]
    HostKeyMismatch { target: String, fingerprint: String },
    #[error("no host key check configured: set PROXDESK_SSH_KNOWN_HOSTS or PROXDESK_SSH_FINGERPRINTS")]
    NoHostKeyPolicy,
    #[error("authentication as {user} on {target} failed: {message}")]
    Auth { target: String, user: String, message: String },
    #[error("ssh to {target}: {message}")]
    Protocol { target: String, message: String },
    #[error("command on {target} timed out after {secs} s")]
    Timeout { target: String, secs: u64 },
}

/// A finished remote command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub exit_status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.exit_status == 0
    }
}

/// Runs `command` on `target`, writing `stdin` to it (secrets go there, never into the command line).
pub async fn run(
    config: &SshConfig,
    target: &SshTarget,
    command: &str,
    stdin: Option<&[u8]>,
) -> Result<CommandOutput, SshError> {
    let (config, target, command) = (config.clone(), target.clone(), command.to_owned());
    let stdin = stdin.map(<[u8]>::to_vec);
    tokio::task::spawn_blocking(move || run_blocking(&config, &target, &command, stdin.as_deref()))
        .await
        .unwrap_or_else(|e| Err(SshError::Protocol { target: String::new(), message: format!("ssh task failed: {e}") }))
}

/// The SHA-256 fingerprint of a host key as OpenSSH prints it: `SHA256:<base64, no padding>`.
pub fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(key)))
}

fn run_blocking(
    config: &SshConfig,
    target: &SshTarget,
    command: &str,
    stdin: Option<&[u8]>,
) -> Result<CommandOutput, SshError> {
    let name = target.to_string();
    let proto = |e: ssh2::Error| SshError::Protocol { target: name.clone(), message: e.message().to_owned() };
    let connect_err = |message: String| SshError::Connect { target: name.clone(), message };
    let addr = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| connect_err(e.to_string()))?
        .next()
        .ok_or_else(|| connect_err("no address".into()))?;
    let tcp = TcpStream::connect_timeout(&addr, config.connect_timeout).map_err(|e| connect_err(e.to_string()))?;
    let mut session = Session::new().map_err(proto)?;
    session.set_tcp_stream(tcp);
    session.set_timeout(config.connect_timeout.as_millis() as u32);
    session.handshake().map_err(|e| connect_err(e.message().to_owned()))?;
    check_host_key(config, target, &session)?;
    session.userauth_pubkey_file(&config.user, None, &config.key_file, None).map_err(|e| SshError::Auth {
        target: name.clone(),
        user: config.user.clone(),
        message: e.message().to_owned(),
    })?;

    session.set_timeout(config.command_timeout.as_millis() as u32);
    // libssh2 reports its timeout as LIBSSH2_ERROR_TIMEOUT (-9); reads surface it as io::TimedOut.
    let timeout = |e: ssh2::Error| {
        if e.code() == ssh2::ErrorCode::Session(-9) {
            SshError::Timeout { target: name.clone(), secs: config.command_timeout.as_secs() }
        } else {
            proto(e)
        }
    };
    let read_err = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::TimedOut {
            SshError::Timeout { target: name.clone(), secs: config.command_timeout.as_secs() }
        } else {
            io_err(&name, e)
        }
    };
    let mut channel = session.channel_session().map_err(proto)?;
    channel.exec(command).map_err(proto)?;
    if let Some(input) = stdin {
        channel.write_all(input).map_err(|e| io_err(&name, e))?;
    }
    channel.send_eof().map_err(proto)?;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    read_limited(&mut channel, &mut stdout).map_err(read_err)?;
    read_limited(&mut channel.stderr(), &mut stderr).map_err(read_err)?;
    channel.wait_close().map_err(timeout)?;
    let exit_status = channel.exit_status().map_err(proto)?;
    Ok(CommandOutput {
        exit_status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

fn io_err(target: &str, e: std::io::Error) -> SshError {
    SshError::Protocol { target: target.to_owned(), message: e.to_string() }
}

/// Reads at most 1 MiB; the rest is drained and dropped so the channel can close.
fn read_limited(r: &mut impl Read, out: &mut Vec<u8>) -> std::io::Result<()> {
    const LIMIT: usize = 1 << 20;
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let room = LIMIT.saturating_sub(out.len());
        out.extend_from_slice(&buf[..n.min(room)]);
    }
}

fn check_host_key(config: &SshConfig, target: &SshTarget, session: &Session) -> Result<(), SshError> {
    let name = target.to_string();
    let (key, _) = session
        .host_key()
        .ok_or_else(|| SshError::Protocol { target: name.clone(), message: "server sent no host key".into() })?;
    let fp = fingerprint(key);
    if config.fingerprints.is_empty() && config.known_hosts.is_none() {
        return Err(SshError::NoHostKeyPolicy);
    }
    if config.fingerprints.iter().any(|pinned| pinned == &fp) {
        return Ok(());
    }
    let Some(path) = &config.known_hosts else {
        return Err(SshError::UnknownHostKey { target: name, fingerprint: fp });
    };
    let mut known = session
        .known_hosts()
        .map_err(|e| SshError::Protocol { target: name.clone(), message: e.message().to_owned() })?;
    known.read_file(path, KnownHostFileKind::OpenSSH).map_err(|e| SshError::Protocol {
        target: name.clone(),
        message: format!("known_hosts {}: {}", path.display(), e.message()),
    })?;
    match known.check_port(&target.host, target.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(SshError::HostKeyMismatch { target: name, fingerprint: fp }),
        CheckResult::NotFound | CheckResult::Failure => Err(SshError::UnknownHostKey { target: name, fingerprint: fp }),
    }
}

/// Bounded for the whole exchange, including reading output.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
