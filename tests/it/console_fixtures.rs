//! Real consoles behind the PVE simulator: TigerVNC's `Xvnc`, a shell under `socat`, and an app on a
//! simulator configured with them; plus an RFB client for the browser's side.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{SimConfig, SimHandle, Simulator, admin_acl};
use proxdesk::secrets::Secret;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::external::require;
use crate::helpers::{TestApp, spawn_app_with};
use crate::provision::{TOKEN_ID, TOKEN_SECRET, approved_request, settle};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_listening(port: u16, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TigerVNC server (VNC Authentication, 640×480, desktop name `fixture`) on 127.0.0.1; its
/// password file is rewritten by the simulator for every `vncproxy`, like PVE does with QEMU.
pub struct Xvnc {
    pub port: u16,
    pub password_file: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Xvnc {
    pub fn start() -> Option<Xvnc> {
        let xvnc = require("Xvnc", &["/usr/bin/Xvnc", "/usr/bin/Xtigervnc"])?;
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("passwd");
        std::fs::write(&password_file, proxdesk::console::rfb::tigervnc_password_file(b"unused00")).unwrap();
        for _ in 0..20 {
            let port = free_port();
            let display = 100 + (port as u32 * 7 + std::process::id()) % 800;
            if std::path::Path::new(&format!("/tmp/.X{display}-lock")).exists() {
                continue;
            }
            let mut child = Command::new(&xvnc)
                .arg(format!(":{display}"))
                .args(["-rfbport", &port.to_string(), "-localhost", "-SecurityTypes", "VncAuth", "-PasswordFile"])
                .arg(&password_file)
                .args(["-geometry", "640x480", "-depth", "24", "-desktop", "fixture", "-UseBlacklist=0"])
                .args(["-nolisten", "tcp", "-retro"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvnc starts");
            let until = Instant::now() + Duration::from_secs(10);
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Xvnc { port, password_file, child, _dir: dir });
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > until {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("Xvnc did not start");
    }
}

impl Drop for Xvnc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/bin/sh` on a pty behind `socat`, one shell per connection.
pub struct Shell {
    pub port: u16,
    child: Child,
}

impl Shell {
    pub fn start() -> Option<Shell> {
        let socat = require("socat", &["/usr/bin/socat"])?;
        let port = free_port();
        let child = Command::new(socat)
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
            .arg("EXEC:/bin/sh,pty,stderr,setsid,sigint,sane")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat starts");
        wait_listening(port, "socat");
        Some(Shell { port, child })
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The simulator (with proxdesk's token and `sim`'s consoles) and an app pointed at it.
pub async fn app_on(
    sim: SimConfig,
    configure: impl FnOnce(&mut proxdesk::config::RawSettings, &SimHandle),
) -> (TestApp, SimHandle) {
    let sim = Simulator::start(sim.with_token(TOKEN_ID, TOKEN_SECRET, admin_acl())).await.unwrap();
    let url = sim.url().to_owned();
    let app = spawn_app_with(|raw| {
        raw.set("pve_url", url);
        raw.set("pve_token", format!("{TOKEN_ID}={TOKEN_SECRET}"));
        raw.set("provision_poll_ms", "20");
        raw.set("provision_backoff_ms", "50");
        raw.set("provision_ip_timeout_secs", "5");
        raw.set("provision_task_timeout_secs", "5");
        configure(raw, &sim);
    })
    .await;
    (app, sim)
}

/// Alice's ready machine: (machine id, alice's API token, alice's session cookie value).
pub async fn ready_machine(app: &TestApp) -> (i64, String, String) {
    let (token, request) = approved_request(app, "none").await;
    let done = settle(app, &token, request).await;
    assert_eq!(done["status"], "ready", "{done}");
    let machines: Value = app.get(&token, "/api/v1/machines").await.json().await.unwrap();
    let id = machines["items"][0]["id"].as_i64().unwrap();
    let session = proxdesk::services::auth::login(&app.db, "alice", &Secret::new("alice-password-123".into()), "t", 1)
        .await
        .unwrap();
    (id, token, session.token.expose().clone())
}

/// Another user's session cookie value.
pub async fn other_session(app: &TestApp, name: &str) -> String {
    let (_, password) = app.user(name, Role::User).await;
    let s = proxdesk::services::auth::login(&app.db, name, &Secret::new(password), "t", 1).await.unwrap();
    s.token.expose().clone()
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `path` on the app as a browser would: cookie, `Origin`, subprotocol `binary`.
pub async fn connect(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = app.url(path).replacen("http://", "ws://", 1).into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    if let Some(c) = cookie {
        h.insert("Cookie", format!("proxdesk_session={c}").parse().unwrap());
    }
    if let Some(o) = origin {
        h.insert("Origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
}

/// The HTTP status a refused websocket got.
pub fn refused_status(r: Result<Ws, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e:?}"),
        Ok(_) => panic!("expected a refusal, the websocket opened"),
    }
}

/// Reads exactly `n` bytes of the relayed stream.
pub async fn read_n(ws: &mut Ws, buf: &mut Vec<u8>, n: usize) -> Vec<u8> {
    while buf.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("data in time");
        match msg.expect("open").expect("no error") {
            Message::Binary(b) => buf.extend_from_slice(&b),
            Message::Close(c) => panic!("closed: {c:?}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    buf.drain(..n).collect()
}

pub async fn send(ws: &mut Ws, data: &[u8]) {
    ws.send(Message::binary(data.to_vec())).await.unwrap();
}

/// Types `echo <word>-$((6*7))` into a relayed terminal and waits for `<word>-42` to come back.
pub async fn shell_echoes(ws: &mut Ws, word: &str) {
    send(ws, b"1:100:30:").await;
    let line = format!("echo {word}-$((6*7))\n");
    let mut input = format!("0:{}:", line.len()).into_bytes();
    input.extend_from_slice(line.as_bytes());
    send(ws, &input).await;
    let (mut seen, mut buf) = (Vec::new(), Vec::new());
    let want = format!("{word}-42");
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while !String::from_utf8_lossy(&seen).contains(&want) {
            seen.extend(read_n(ws, &mut buf, 1).await);
        }
    })
    .await;
    assert!(found.is_ok(), "shell output: {:?}", String::from_utf8_lossy(&seen));
}

/// An RFB server that accepts any VNC authentication, then counts the bytes it receives.
pub async fn counting_rfb_backend() -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                s.write_all(b"RFB 003.008\n").await?;
                s.read_exact(&mut buf[..12]).await?;
                s.write_all(&[1, 2]).await?;
                s.read_exact(&mut buf[..1]).await?;
                s.write_all(&[9; 16]).await?;
                s.read_exact(&mut buf[..16]).await?;
                s.write_all(&[0, 0, 0, 0]).await?;
                loop {
                    let n = s.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    (addr, count)
}

/// The close frame a console socket ends with: its code and reason. Data before it is skipped.
pub async fn close_frame(ws: &mut Ws, within: Duration) -> (u16, String) {
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), frame.reason.to_string()),
                Some(Ok(Message::Close(None))) => panic!("closed without a code"),
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    };
    tokio::time::timeout(within, read).await.expect("a close frame in time")
}

/// Opens a console socket that proxdesk accepts only to close: returns the close frame.
pub async fn refused_with(r: Result<Ws, tokio_tungstenite::tungstenite::Error>) -> (u16, String) {
    let mut ws = r.expect("the upgrade is answered so that the close code reaches the browser");
    close_frame(&mut ws, Duration::from_secs(10)).await
}

/// A terminal backend under the test's control: each connection gets `greeting`, then stays open
/// until [`Hangup::now`] closes every connection (as a shell that exits would).
pub struct Hangup {
    pub addr: std::net::SocketAddr,
    notify: std::sync::Arc<tokio::sync::Notify>,
}

impl Hangup {
    pub async fn start(greeting: &'static [u8]) -> Hangup {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let notify = std::sync::Arc::new(tokio::sync::Notify::new());
        let hangup = notify.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let hangup = hangup.clone();
                tokio::spawn(async move {
                    let _ = s.write_all(greeting).await;
                    hangup.notified().await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Hangup { addr, notify }
    }

    /// Closes every open connection.
    pub fn now(&self) {
        self.notify.notify_waiters();
    }
}
