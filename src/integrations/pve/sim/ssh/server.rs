//! The russh side: accept loop, public-key authentication, and one exec per session channel, run
//! when the client closes stdin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Config, Msg, Session};
use russh::{Channel, ChannelId, CryptoVec, MethodKind, MethodSet};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::super::Sim;
use super::RecordedCommand;
use super::exec;

/// Stdin beyond this is dropped (the finishing command sends one line).
const STDIN_LIMIT: usize = 64 << 10;

/// What every connection of one server shares.
pub(super) struct Shared {
    pub sim: Arc<Sim>,
    pub user: String,
    pub node: Option<String>,
    pub authorized: Vec<PublicKey>,
    pub commands: Mutex<Vec<RecordedCommand>>,
}

impl Shared {
    fn allows(&self, user: &str, key: &PublicKey) -> bool {
        user == self.user && self.authorized.iter().any(|k| k.key_data() == key.key_data())
    }
}

/// Accepts connections until `stop` fires (or its sender is dropped).
pub(super) async fn serve(
    listener: TcpListener,
    host_key: PrivateKey,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let config = Arc::new(Config {
        keys: vec![host_key],
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(50),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(300)),
        nodelay: true,
        ..Config::default()
    });
    loop {
        let socket = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(e) => {
                    tracing::warn!("simulated ssh: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let conn = Conn { shared: shared.clone(), user: String::new(), channels: HashMap::new() };
        let config = config.clone();
        tokio::spawn(async move {
            match russh::server::run_stream(config, socket, conn).await {
                Ok(session) => {
                    if let Err(e) = session.await {
                        tracing::debug!("simulated ssh: session ended: {e}");
                    }
                }
                Err(e) => tracing::debug!("simulated ssh: handshake failed: {e}"),
            }
        });
    }
}

/// One exec channel: its command once requested, and stdin so far.
#[derive(Default)]
struct Pending {
    command: Option<String>,
    stdin: Vec<u8>,
}

/// One client connection.
struct Conn {
    shared: Arc<Shared>,
    user: String,
    channels: HashMap<ChannelId, Pending>,
}

impl Conn {
    /// Runs the channel's command and answers: output, exit status, EOF, close.
    fn finish(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), russh::Error> {
        let Some(Pending { command: Some(command), stdin }) = self.channels.remove(&channel) else {
            return Ok(());
        };
        let outcome = exec::run(&self.shared.sim, self.shared.node.as_deref(), &command, &stdin);
        self.shared.commands.lock().expect("commands").push(RecordedCommand {
            user: self.user.clone(),
            command,
            stdin_first_line_sha256: exec::first_line_sha256(&stdin),
            stderr: outcome.stderr.clone(),
            exit_status: outcome.exit_status,
        });
        if !outcome.stdout.is_empty() {
            session.data(channel, CryptoVec::from(outcome.stdout.into_bytes()))?;
        }
        if !outcome.stderr.is_empty() {
            session.extended_data(channel, 1, CryptoVec::from(outcome.stderr.into_bytes()))?;
        }
        session.exit_status_request(channel, outcome.exit_status)?;
        session.eof(channel)?;
        session.close(channel)
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey_offered(&mut self, user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        Ok(if self.shared.allows(user, key) { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(&mut self, user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        if !self.shared.allows(user, key) {
            return Ok(Auth::reject());
        }
        self.user = user.to_owned();
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.channels.insert(channel.id(), Pending::default());
        Ok(true)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(pending) if pending.command.is_none() => {
                pending.command = Some(String::from_utf8_lossy(data).into_owned());
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], _session: &mut Session) -> Result<(), Self::Error> {
        if let Some(pending) = self.channels.get_mut(&channel) {
            let room = STDIN_LIMIT.saturating_sub(pending.stdin.len());
            pending.stdin.extend_from_slice(&data[..data.len().min(room)]);
        }
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        self.finish(channel, session)
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }
}
