//! RFB (VNC) handshakes on both sides of the relay (console-relay.md §4): proxdesk authenticates to
//! PVE with VNC Authentication itself, then plays an RFB 3.8 server offering only security type None
//! to the browser. After that every byte passes through unchanged.

use des::Des;
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockEncrypt, KeyInit};
use futures_util::{SinkExt, StreamExt};
use poem::web::websocket::{Message as BrowserMessage, WebSocketStream};
use tokio_tungstenite::tungstenite::Message;

use super::ConsoleError;
use crate::integrations::pve::websocket::ConsoleSocket;
use crate::integrations::pve::wire::ConsoleTicket;

const NONE: u8 = 1;
const VNC_AUTH: u8 = 2;

/// The VNC password for a ticket: `password` when PVE returned one, else the ticket itself (only its
/// first 8 bytes count) — the portable rule of pve-api.md §8.1.
pub fn vnc_password(ticket: &ConsoleTicket) -> &str {
    ticket.password.as_deref().filter(|p| !p.is_empty()).unwrap_or(&ticket.ticket)
}

/// The 16-byte answer to a VNC Authentication challenge: DES-ECB keyed by the password's first 8
/// bytes, zero-padded, each byte bit-reversed (RFB's key rule).
pub fn des_response(password: &[u8], challenge: &[u8; 16]) -> [u8; 16] {
    let mut key = [0u8; 8];
    for (k, p) in key.iter_mut().zip(password) {
        *k = p.reverse_bits();
    }
    let cipher = Des::new_from_slice(&key).expect("DES takes 8-byte keys");
    let mut out = *challenge;
    for block in out.chunks_exact_mut(8) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    out
}

/// The 8 bytes of a TigerVNC/RealVNC password file (`vncpasswd -f`): the password DES-encrypted with
/// the fixed key VNC servers use to obfuscate stored passwords. The PVE simulator writes it.
pub fn tigervnc_password_file(password: &[u8]) -> [u8; 8] {
    const FIXED_KEY: [u8; 8] = [23, 82, 107, 6, 35, 78, 88, 7];
    let mut block = [0u8; 16];
    for (b, p) in block.iter_mut().zip(password.iter().take(8)) {
        *b = *p;
    }
    let out = des_response(&FIXED_KEY, &block);
    out[..8].try_into().expect("8 bytes")
}

/// Bytes read from a message stream, with what was read beyond the last request kept for later.
#[derive(Default)]
pub struct Buffered {
    buf: Vec<u8>,
}

impl Buffered {
    /// Reads exactly `n` bytes from PVE.
    async fn upstream(&mut self, ws: &mut ConsoleSocket, n: usize) -> Result<Vec<u8>, ConsoleError> {
        while self.buf.len() < n {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(Message::Text(t))) => self.buf.extend_from_slice(t.as_bytes()),
                Some(Ok(Message::Close(_))) | None => {
                    return Err(ConsoleError::Upstream("PVE closed the console".into()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(ConsoleError::Upstream(e.to_string())),
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads exactly `n` bytes from the browser.
    async fn browser(&mut self, ws: &mut WebSocketStream, n: usize) -> Result<Vec<u8>, ConsoleError> {
        while self.buf.len() < n {
            match ws.next().await {
                Some(Ok(BrowserMessage::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(BrowserMessage::Text(t))) => self.buf.extend_from_slice(t.as_bytes()),
                Some(Ok(BrowserMessage::Close(_))) | None | Some(Err(_)) => return Err(ConsoleError::BrowserGone),
                Some(Ok(_)) => {}
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Whatever was read but not consumed.
    pub fn rest(self) -> Vec<u8> {
        self.buf
    }
}

/// The ProtocolVersion message: exactly `RFB xxx.yyy\n` with three digits on each side (RFC 6143
/// §7.1.1). Signs, spaces or short numbers are no RFB peer's banner.
fn version(banner: &[u8]) -> Result<(u32, u32), ConsoleError> {
    let refuse = || ConsoleError::Protocol(format!("not an RFB server: {:?}", String::from_utf8_lossy(banner)));
    let digits = |b: &[u8]| -> Option<u32> {
        b.iter().all(u8::is_ascii_digit).then(|| b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    match banner {
        [b'R', b'F', b'B', b' ', major @ .., b'.', _, _, _, b'\n'] if major.len() == 3 => {
            Ok((digits(major).ok_or_else(refuse)?, digits(&banner[8..11]).ok_or_else(refuse)?))
        }
        _ => Err(refuse()),
    }
}

/// RFB 3.3's security type is a u32 chosen by the server; 0 is a refusal (handled by the caller),
/// and a value past a byte is no type at all rather than one to truncate.
fn security_type_v33(t: u32) -> Result<u8, ConsoleError> {
    u8::try_from(t).map_err(|_| ConsoleError::Protocol(format!("unsupported security type {t}")))
}

fn u32_of(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

async fn send_up(ws: &mut ConsoleSocket, data: &[u8]) -> Result<(), ConsoleError> {
    ws.send(Message::binary(data.to_vec())).await.map_err(|e| ConsoleError::Upstream(e.to_string()))
}

/// Runs the client side of RFB with PVE up to a successful SecurityResult. Returns any bytes PVE sent
/// beyond it (to be passed on to the browser).
pub async fn authenticate_upstream(ws: &mut ConsoleSocket, password: &str) -> Result<Vec<u8>, ConsoleError> {
    let mut r = Buffered::default();
    let (major, minor) = version(&r.upstream(ws, 12).await?)?;
    let minor = if major > 3 || minor >= 8 {
        8
    } else if minor >= 7 {
        7
    } else {
        3
    };
    send_up(ws, format!("RFB 003.{minor:03}\n").as_bytes()).await?;
    let chosen = if minor == 3 {
        let t = u32_of(&r.upstream(ws, 4).await?);
        if t == 0 {
            let len = u32_of(&r.upstream(ws, 4).await?) as usize;
            let reason = r.upstream(ws, len.min(4096)).await?;
            return Err(ConsoleError::Auth(String::from_utf8_lossy(&reason).into_owned()));
        }
        security_type_v33(t)?
    } else {
        let n = r.upstream(ws, 1).await?[0] as usize;
        if n == 0 {
            let len = u32_of(&r.upstream(ws, 4).await?) as usize;
            let reason = r.upstream(ws, len.min(4096)).await?;
            return Err(ConsoleError::Auth(String::from_utf8_lossy(&reason).into_owned()));
        }
        let types = r.upstream(ws, n).await?;
        let chosen = [VNC_AUTH, NONE]
            .into_iter()
            .find(|t| types.contains(t))
            .ok_or_else(|| ConsoleError::Protocol(format!("no supported security type in {types:?}")))?;
        send_up(ws, &[chosen]).await?;
        chosen
    };
    match chosen {
        VNC_AUTH => {
            let challenge: [u8; 16] = r.upstream(ws, 16).await?.try_into().expect("16 bytes");
            send_up(ws, &des_response(password.as_bytes(), &challenge)).await?;
        }
        NONE if minor < 8 => return Ok(r.rest()),
        NONE => {}
        other => return Err(ConsoleError::Protocol(format!("unsupported security type {other}"))),
    }
    if u32_of(&r.upstream(ws, 4).await?) != 0 {
        let reason = if minor >= 8 {
            let len = u32_of(&r.upstream(ws, 4).await?) as usize;
            String::from_utf8_lossy(&r.upstream(ws, len.min(4096)).await?).into_owned()
        } else {
            "authentication failed".into()
        };
        return Err(ConsoleError::Auth(reason));
    }
    Ok(r.rest())
}

/// Plays the RFB server's part to the browser up to SecurityResult, offering only type None (the
/// session is already authenticated). Returns bytes the browser sent beyond it (its ClientInit).
pub async fn greet_browser(ws: &mut WebSocketStream) -> Result<Vec<u8>, ConsoleError> {
    let mut r = Buffered::default();
    let send = |data: &[u8]| BrowserMessage::Binary(data.to_vec());
    ws.send(send(b"RFB 003.008\n")).await.map_err(|_| ConsoleError::BrowserGone)?;
    let (_, minor) = version(&r.browser(ws, 12).await?)?;
    if minor < 7 {
        // RFB 3.3: the server decides, as a u32, and sends no SecurityResult for None.
        ws.send(send(&[0, 0, 0, NONE])).await.map_err(|_| ConsoleError::BrowserGone)?;
        return Ok(r.rest());
    }
    ws.send(send(&[1, NONE])).await.map_err(|_| ConsoleError::BrowserGone)?;
    let choice = r.browser(ws, 1).await?[0];
    if choice != NONE {
        return Err(ConsoleError::Protocol(format!("browser chose security type {choice}")));
    }
    if minor >= 8 {
        ws.send(send(&[0, 0, 0, 0])).await.map_err(|_| ConsoleError::BrowserGone)?;
    }
    Ok(r.rest())
}

/// Tells an RFB client why there is no console: version, then zero security types and a reason.
pub async fn refuse_browser(ws: &mut WebSocketStream, reason: &str) {
    let mut msg = b"RFB 003.008\n".to_vec();
    let _ = ws.send(BrowserMessage::Binary(msg.clone())).await;
    let mut r = Buffered::default();
    if tokio::time::timeout(std::time::Duration::from_secs(5), r.browser(ws, 12)).await.is_ok() {
        msg.clear();
        msg.push(0);
        msg.extend_from_slice(&(reason.len() as u32).to_be_bytes());
        msg.extend_from_slice(reason.as_bytes());
        let _ = ws.send(BrowserMessage::Binary(msg)).await;
    }
    let _ = ws.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn des_uses_the_bit_reversed_key() {
        // TigerVNC's password file is the password DES-encrypted with a fixed key under the same
        // bit-reversal rule; for `secret12` it is always 24 b5 ae 4c e1 55 03 c6 (console-relay.md §9).
        assert_eq!(tigervnc_password_file(b"secret12"), [0x24, 0xb5, 0xae, 0x4c, 0xe1, 0x55, 0x03, 0xc6]);
    }

    #[test]
    fn the_password_is_preferred_to_the_ticket() {
        let mut t = ConsoleTicket {
            user: "u@pve".into(),
            ticket: "ab:cd!ef:PVEVNC:1234".into(),
            port: 5900,
            upid: String::new(),
            cert: None,
            password: Some("ab:cd!ef".into()),
        };
        assert_eq!(vnc_password(&t), "ab:cd!ef");
        t.password = None;
        t.ticket = "PVEVNC:ABCDEF::sig".into();
        assert_eq!(vnc_password(&t), "PVEVNC:ABCDEF::sig", "old style: the ticket is the password");
        assert_eq!(des_response(b"PVEVNC:A", &[7; 16]), des_response(b"PVEVNC:ABCDEF::sig", &[7; 16]));
    }

    #[test]
    fn versions_parse() {
        assert_eq!(version(b"RFB 003.008\n").unwrap(), (3, 8));
        assert_eq!(version(b"RFB 003.889\n").unwrap(), (3, 889));
        assert!(version(b"HTTP/1.1 200").is_err());
    }

    use proptest::prelude::*;

    proptest! {
        /// Any 12 bytes: a version or a typed error; the banner of every version reads back.
        #[test]
        fn fuzz_rfb_version_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..16), major in 0u32..1000, minor in 0u32..1000) {
            let _ = version(&bytes);
            prop_assert_eq!(version(format!("RFB {major:03}.{minor:03}\n").as_bytes()).unwrap(), (major, minor));
        }

        /// Signs, spaces and short numbers are refused instead of read as a version.
        #[test]
        fn fuzz_rfb_version_rejects_near_misses(major in "[0-9]{3}", bad in "[ +-][0-9]{2}|[0-9]{2}[ a-f]|[0-9]{2}") {
            for banner in [format!("RFB {major}.{bad}\n"), format!("RFB {bad}.{major}\n"), format!("RFB {major}.{major}\r")] {
                prop_assert!(version(banner.as_bytes()).is_err(), "{:?}", banner);
            }
        }

        /// A 3.3 security type that does not fit a byte is an error, not the type its low byte names.
        #[test]
        fn fuzz_rfb_33_security_type_is_never_truncated(t in any::<u32>()) {
            match security_type_v33(t) {
                Ok(b) => prop_assert_eq!(u32::from(b), t),
                Err(_) => prop_assert!(t > 255),
            }
        }
    }
}
