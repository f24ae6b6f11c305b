//! The console benchmark's parts: an RFB-speaking backend with echo/sink/source modes, and the three
//! client paths (the PVE simulator directly, proxdesk's relay, websockify).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A VNC-like backend: RFB 3.8, security type 2 accepting any response, then one mode byte:
/// `E` echo; `S` + u64 n: read n bytes, answer `K`; `O` + u64 n: write n bytes; anything else: idle.
pub async fn backend() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s));
        }
    });
    addr
}

async fn serve(mut s: TcpStream) -> std::io::Result<()> {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    s.write_all(b"RFB 003.008\n").await?;
    s.read_exact(&mut buf[..12]).await?;
    s.write_all(&[1, 2]).await?;
    s.read_exact(&mut buf[..1]).await?;
    s.write_all(&[7u8; 16]).await?;
    s.read_exact(&mut buf[..16]).await?;
    s.write_all(&[0, 0, 0, 0]).await?;
    s.read_exact(&mut buf[..1]).await?;
    match buf[0] {
        b'E' => loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n]).await?;
        },
        b'S' => {
            let mut left = s.read_u64().await?;
            while left > 0 {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                left -= n as u64;
            }
            s.write_all(b"K").await
        }
        b'O' => {
            let mut left = s.read_u64().await?;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                s.write_all(&buf[..n]).await?;
                left -= n as u64;
            }
            Ok(())
        }
        _ => {
            // Idle: hold the connection until the other side goes.
            while s.read(&mut buf).await? > 0 {}
            Ok(())
        }
    }
}

/// Opens a websocket with subprotocol `binary` and extra headers.
pub async fn open(url: &str, headers: &[(&'static str, String)]) -> Ws {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket opens");
    ws
}

/// Bytes from a websocket, buffered across frames.
#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    pub async fn exact(&mut self, ws: &mut Ws, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            match ws.next().await.expect("open").expect("no error") {
                Message::Binary(b) => self.buf.extend_from_slice(&b),
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
        self.buf.drain(..n).collect()
    }
}

/// RFB with the backend itself (direct and websockify paths): VNC auth with any response.
pub async fn rfb_direct(ws: &mut Ws, r: &mut Reader) {
    r.exact(ws, 12).await;
    ws.send(Message::binary(b"RFB 003.008\n".to_vec())).await.unwrap();
    r.exact(ws, 2).await;
    ws.send(Message::binary(vec![2])).await.unwrap();
    r.exact(ws, 16).await;
    ws.send(Message::binary(vec![0; 16])).await.unwrap();
    assert_eq!(r.exact(ws, 4).await, [0, 0, 0, 0]);
}

/// RFB with proxdesk's relay: it offers security type None.
pub async fn rfb_relay(ws: &mut Ws, r: &mut Reader) {
    r.exact(ws, 12).await;
    ws.send(Message::binary(b"RFB 003.008\n".to_vec())).await.unwrap();
    assert_eq!(r.exact(ws, 2).await, [1, 1]);
    ws.send(Message::binary(vec![1])).await.unwrap();
    assert_eq!(r.exact(ws, 4).await, [0, 0, 0, 0]);
}

/// MB/s of `total` bytes sent as 64 KiB binary messages (client → backend), until the backend has all.
pub async fn upload(ws: &mut Ws, r: &mut Reader, total: u64) -> f64 {
    let mut head = vec![b'S'];
    head.extend_from_slice(&total.to_be_bytes());
    ws.send(Message::binary(head)).await.unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let started = Instant::now();
    let mut sent = 0;
    while sent < total {
        ws.send(Message::binary(chunk.clone())).await.unwrap();
        sent += chunk.len() as u64;
    }
    assert_eq!(r.exact(ws, 1).await, b"K");
    total as f64 / 1e6 / started.elapsed().as_secs_f64()
}

/// MB/s of `total` bytes streamed backend → client.
pub async fn download(ws: &mut Ws, r: &mut Reader, total: u64) -> f64 {
    let mut head = vec![b'O'];
    head.extend_from_slice(&total.to_be_bytes());
    let started = Instant::now();
    ws.send(Message::binary(head)).await.unwrap();
    let mut got = r.buf.len() as u64;
    r.buf.clear();
    while got < total {
        match ws.next().await.expect("open").expect("no error") {
            Message::Binary(b) => got += b.len() as u64,
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
    total as f64 / 1e6 / started.elapsed().as_secs_f64()
}

/// Round trips of `size`-byte messages through an echoing backend: sorted durations.
pub async fn round_trips(ws: &mut Ws, r: &mut Reader, size: usize, count: usize) -> Vec<Duration> {
    ws.send(Message::binary(vec![b'E'])).await.unwrap();
    let msg = vec![0x42u8; size];
    let mut times = Vec::with_capacity(count);
    for i in 0..count + 100 {
        let t = Instant::now();
        ws.send(Message::binary(msg.clone())).await.unwrap();
        r.exact(ws, size).await;
        if i >= 100 {
            times.push(t.elapsed());
        }
    }
    times.sort();
    times
}

/// The `p`-th percentile of sorted durations, in microseconds.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    proc_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Proportional set size of a process and all its descendants (websockify forks per connection), KiB.
pub fn tree_pss_kib(root: u32) -> u64 {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid: Option<u32> =
            stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut pids = vec![root];
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        pids.extend(parent_of.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    pids.iter().map(|p| proc_field(&format!("/proc/{p}/smaps_rollup"), "Pss:")).sum()
}

fn proc_field(path: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
