//! The two-way pump between the browser's websocket and PVE's. Each direction holds at most one
//! message at a time and waits until it is written before reading the next, so a side that stops
//! reading stops the other side through TCP (backpressure) instead of growing a buffer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use poem::web::websocket::{Message as BrowserMessage, WebSocketStream};
use tokio_tungstenite::tungstenite::Message;

use tokio::sync::watch;

use super::{CloseReason, ConsoleKind, Counters, Limits};
use crate::integrations::pve::websocket::{ConsoleSocket, MAX_FRAME};

/// Why a relayed session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The browser closed or went away: nobody is left to tell.
    Browser,
    /// The browser never completed its side of the RFB handshake.
    BrowserHandshake,
    /// Anything else; the browser is told with a close code.
    Close(CloseReason),
}

impl EndReason {
    /// The name recorded in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Browser => "browser",
            EndReason::BrowserHandshake => "browser_handshake",
            EndReason::Close(r) => r.name(),
        }
    }
}

/// The browser's sending half, handed back so the caller can send the close frame it decides on.
pub type BrowserSink = futures_util::stream::SplitSink<WebSocketStream, BrowserMessage>;

// termproxy wants a keep-alive now and then (pve-api.md §8.4); Proxmox's page sends one every 30 s.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// Relays until one side ends, the idle timeout, the maximum length or `stop` says why to end.
/// `to_browser` is sent first (bytes PVE sent during the handshake), `to_upstream` likewise. PVE's
/// side is closed on return; the browser's is handed back unclosed.
pub async fn pump(
    browser: WebSocketStream,
    upstream: ConsoleSocket,
    kind: ConsoleKind,
    first: (Vec<u8>, Vec<u8>),
    limits: Limits,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<Option<CloseReason>>,
) -> (EndReason, BrowserSink) {
    let started = Instant::now();
    let (mut b_tx, mut b_rx) = browser.split();
    let (mut u_tx, mut u_rx) = upstream.split();
    let touch = |c: &Counters| c.last_activity_ms.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    let (to_browser, to_upstream) = first;

    let down = async {
        if !to_browser.is_empty() {
            counters.to_browser.fetch_add(to_browser.len() as u64, Ordering::Relaxed);
            if b_tx.send(BrowserMessage::Binary(to_browser)).await.is_err() {
                return EndReason::Browser;
            }
        }
        loop {
            let data = match u_rx.next().await {
                Some(Ok(Message::Binary(b))) => b.to_vec(),
                Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                // An orderly close: the console program on PVE's side ended; anything else broke.
                Some(Ok(Message::Close(_))) => return EndReason::Close(CloseReason::GuestClosed),
                None | Some(Err(_)) => return EndReason::Close(CloseReason::PveClosed),
                Some(Ok(_)) => continue,
            };
            let n = data.len();
            counters.hold(n);
            touch(&counters);
            let sent = b_tx.send(BrowserMessage::Binary(data)).await;
            counters.release(n);
            if sent.is_err() {
                return EndReason::Browser;
            }
            counters.to_browser.fetch_add(n as u64, Ordering::Relaxed);
        }
    };

    let up = async {
        if !to_upstream.is_empty() && send_upstream(&mut u_tx, to_upstream, kind, &counters).await.is_err() {
            return EndReason::Close(CloseReason::PveClosed);
        }
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            let msg = tokio::select! {
                m = b_rx.next() => m,
                _ = keepalive.tick(), if kind == ConsoleKind::Terminal => {
                    if u_tx.send(Message::binary(b"2".to_vec())).await.is_err() {
                        return EndReason::Close(CloseReason::PveClosed);
                    }
                    continue;
                }
            };
            let data = match msg {
                Some(Ok(BrowserMessage::Binary(b))) => b,
                Some(Ok(BrowserMessage::Text(t))) => t.into_bytes(),
                Some(Ok(BrowserMessage::Close(_))) | None | Some(Err(_)) => return EndReason::Browser,
                Some(Ok(_)) => continue,
            };
            touch(&counters);
            if send_upstream(&mut u_tx, data, kind, &counters).await.is_err() {
                return EndReason::Close(CloseReason::PveClosed);
            }
        }
    };

    let watchdog = async {
        let deadline = tokio::time::Instant::now() + limits.max;
        loop {
            let last = Duration::from_millis(counters.last_activity_ms.load(Ordering::Relaxed));
            let idle_at = tokio::time::Instant::from_std(started + last + limits.idle);
            if idle_at >= deadline {
                tokio::time::sleep_until(deadline).await;
                return EndReason::Close(CloseReason::MaxLength);
            }
            tokio::time::sleep_until(idle_at).await;
            let now = started.elapsed();
            if now >= Duration::from_millis(counters.last_activity_ms.load(Ordering::Relaxed)) + limits.idle {
                return EndReason::Close(CloseReason::IdleTimeout);
            }
        }
    };

    let told = async {
        loop {
            if let Some(reason) = *stop.borrow_and_update() {
                return EndReason::Close(reason);
            }
            if stop.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    };

    let reason = tokio::select! {
        r = down => r,
        r = up => r,
        r = watchdog => r,
        r = told => r,
    };
    // Say goodbye to PVE, without waiting on a side that no longer reads.
    let _ = tokio::time::timeout(Duration::from_secs(1), u_tx.send(Message::Close(None))).await;
    (reason, b_tx)
}

type UpstreamSink = futures_util::stream::SplitSink<ConsoleSocket, Message>;

/// Sends browser bytes to PVE in frames PVE accepts: ≤ 128 KiB each. Terminal input keeps the
/// termproxy framing: a long `0:<len>:<data>` is split into several input frames.
async fn send_upstream(
    u_tx: &mut UpstreamSink,
    data: Vec<u8>,
    kind: ConsoleKind,
    counters: &Counters,
) -> Result<(), ()> {
    let n = data.len();
    counters.hold(n);
    let frames = match kind {
        ConsoleKind::Vnc => data.chunks(MAX_FRAME).map(<[u8]>::to_vec).collect(),
        ConsoleKind::Terminal => terminal_frames(&data),
    };
    let mut result = Ok(());
    for frame in frames {
        if u_tx.send(Message::binary(frame)).await.is_err() {
            result = Err(());
            break;
        }
    }
    counters.release(n);
    counters.from_browser.fetch_add(n as u64, Ordering::Relaxed);
    result
}

/// Re-frames one termproxy client message so that each frame stays ≤ 128 KiB.
pub fn terminal_frames(data: &[u8]) -> Vec<Vec<u8>> {
    if data.len() <= MAX_FRAME {
        return vec![data.to_vec()];
    }
    let Some(payload) = input_payload(data) else { return vec![] };
    payload
        .chunks(MAX_FRAME - 16)
        .map(|c| {
            let mut f = format!("0:{}:", c.len()).into_bytes();
            f.extend_from_slice(c);
            f
        })
        .collect()
}

fn input_payload(frame: &[u8]) -> Option<&[u8]> {
    let rest = frame.strip_prefix(b"0:")?;
    let colon = rest.iter().position(|b| *b == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let data = &rest[colon + 1..];
    Some(&data[..len.min(data.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_terminal_input_is_split_into_valid_frames() {
        let data = vec![b'x'; 300 * 1024];
        let mut msg = format!("0:{}:", data.len()).into_bytes();
        msg.extend_from_slice(&data);
        let frames = terminal_frames(&msg);
        assert!(frames.len() >= 3);
        let mut joined = Vec::new();
        for f in &frames {
            assert!(f.len() <= MAX_FRAME);
            joined.extend_from_slice(input_payload(f).unwrap());
        }
        assert_eq!(joined, data);
        assert_eq!(terminal_frames(b"1:80:24:"), vec![b"1:80:24:".to_vec()]);
    }
}
