//! The listening side: plain TCP or TLS (self-signed, ring), and connections a handler can cut
//! (the `Drop` fault), keyed by the peer address poem hands to handlers.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Kill switches of open connections, by peer address.
#[derive(Clone, Default)]
pub(crate) struct Kills(Arc<Mutex<HashMap<SocketAddr, Arc<AtomicBool>>>>);

impl Kills {
    /// Makes every further read or write on the connection from `peer` fail, so hyper drops it unanswered.
    pub(crate) fn kill(&self, peer: SocketAddr) {
        if let Some(flag) = self.0.lock().expect("kills").get(&peer) {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

/// A connection that can be cut from a handler.
pub(crate) struct KillableIo {
    inner: Box<dyn Io>,
    killed: Arc<AtomicBool>,
    peer: SocketAddr,
    kills: Kills,
}

impl Drop for KillableIo {
    fn drop(&mut self) {
        self.kills.0.lock().expect("kills").remove(&self.peer);
    }
}

fn cut() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection dropped by fault injection")
}

impl AsyncRead for KillableIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Accepted = (KillableIo, LocalAddr, RemoteAddr, Scheme);

/// Feeds poem connections accepted (and TLS-handshaken) in the background.
pub(crate) struct SimAcceptor {
    local: SocketAddr,
    rx: mpsc::Receiver<Accepted>,
}

impl SimAcceptor {
    pub(crate) fn new(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, kills: Kills) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(256);
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = tx.closed() => break,
                };
                let Ok((tcp, peer)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let (tx, acceptor, kills) = (tx.clone(), acceptor.clone(), kills.clone());
                tokio::spawn(async move {
                    let (inner, scheme): (Box<dyn Io>, Scheme) = match acceptor {
                        None => (Box::new(tcp), Scheme::HTTP),
                        Some(a) => match a.accept(tcp).await {
                            Ok(s) => (Box::new(s), Scheme::HTTPS),
                            Err(_) => return,
                        },
                    };
                    let killed = Arc::new(AtomicBool::new(false));
                    kills.0.lock().expect("kills").insert(peer, killed.clone());
                    let io = KillableIo { inner, killed, peer, kills };
                    let _ = tx.send((io, LocalAddr(local.into()), RemoteAddr(peer.into()), scheme)).await;
                });
            }
        });
        Ok(Self { local, rx })
    }
}

impl Acceptor for SimAcceptor {
    type Io = KillableIo;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![LocalAddr(self.local.into())]
    }

    async fn accept(&mut self) -> io::Result<Accepted> {
        self.rx.recv().await.ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "listener closed"))
    }
}

/// A self-signed certificate for `localhost`/`127.0.0.1`: the TLS config, the PEM and its fingerprint.
pub(crate) fn self_signed() -> Result<(Arc<rustls::ServerConfig>, String, String), String> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "pve1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    let der = certified.cert.der().clone();
    let fingerprint = crate::integrations::pve::tls::fingerprint_of(der.as_ref());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![der], key)
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(config), certified.cert.pem(), fingerprint))
}
