//! The console websocket to PVE's `vncwebsocket` (pve-api.md §8.2): same host, same identity and same
//! TLS settings as the API calls, subprotocol `binary`. tungstenite client frames are masked and never
//! fragmented; callers keep each payload ≤ 128 KiB.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::{Client, PveError};

/// The largest payload PVE accepts in one client frame (pve-api.md §8.2).
pub const MAX_FRAME: usize = 128 * 1024;

/// A plain or TLS connection to pveproxy.
pub enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An open `vncwebsocket`.
pub type ConsoleSocket = WebSocketStream<Io>;

/// Limits for the console websockets (to PVE and to the browser): PVE's frames are ≤ 128 KiB, so a
/// megabyte per message is plenty and bounds what one message can make proxdesk hold. The read
/// buffer is 16 KiB instead of tungstenite's 128 KiB: it is allocated per socket, and an idle console
/// has two.
pub fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(1 << 20)).max_frame_size(Some(1 << 20)).read_buffer_size(16 * 1024)
}

impl Client {
    /// Opens `url` (from [`Client::vncwebsocket_url`]) right away: the ticket is valid for seconds.
    pub async fn open_console(&self, url: &str) -> Result<ConsoleSocket, PveError> {
        let parsed = url::Url::parse(url).map_err(|e| PveError::Setup(format!("console URL: {e}")))?;
        let host = parsed.host_str().ok_or_else(|| PveError::Setup("console URL has no host".into()))?.to_owned();
        let port = parsed.port_or_known_default().unwrap_or(8006);
        let mut request = url.into_client_request().map_err(|e| PveError::Setup(e.to_string()))?;
        let (name, value) = self.auth_header().await?;
        let headers = request.headers_mut();
        let value = HeaderValue::from_str(value.expose()).map_err(|e| PveError::Setup(e.to_string()))?;
        headers.insert(name, value);
        headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("binary"));
        let connect = async {
            let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
                .await
                .map_err(|e| PveError::Connection(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            let io = if parsed.scheme() == "wss" {
                let server_name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| PveError::Setup(format!("console host: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                    .connect(server_name, tcp)
                    .await
                    .map_err(|e| PveError::Tls(e.to_string()))?;
                Io::Tls(Box::new(tls))
            } else {
                Io::Plain(tcp)
            };
            tokio_tungstenite::client_async_with_config(request, io, Some(socket_config()))
                .await
                .map_err(handshake_error)
        };
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(result) => Ok(result?.0),
            Err(_) => Err(PveError::Timeout("opening the console websocket".into())),
        }
    }
}

fn handshake_error(e: tokio_tungstenite::tungstenite::Error) -> PveError {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(resp) => {
            let status = resp.status().as_u16();
            let message = resp.status().canonical_reason().unwrap_or("").to_owned();
            if status == 401 { PveError::Authentication(message) } else { PveError::Api { status, message } }
        }
        Error::Io(e) => PveError::Connection(e.to_string()),
        other => PveError::Connection(other.to_string()),
    }
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
