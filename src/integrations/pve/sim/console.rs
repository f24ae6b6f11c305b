//! Consoles: `vncproxy`/`termproxy` hand out a port and a `PVEVNC:` ticket; `vncwebsocket` checks it,
//! upgrades (echoing the subprotocol) and bridges binary frames to a real backend (pve-api.md §6.9, §8).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use poem::web::websocket::{Message, WebSocket};
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use rand::Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Sim;
use super::auth::now;
use super::http::Ctx;
use super::params::{self, Ty};
use super::reply::{self, ApiError};
use super::state::{ConsoleSession, GuestKind, TaskState};
use super::tasks;

// The console worker waits this long for its one connection (pve-api.md §8.1).
const CONNECT_WINDOW: Duration = Duration::from_secs(10);
const MAX_CLIENT_FRAME: usize = 128 * 1024;

/// `POST …/vncproxy` (`terminal = false`) or `…/termproxy` (`true`).
pub(crate) fn proxy(ctx: &Ctx, terminal: bool) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Console"])?;
    let vmid = ctx.vmid()?;
    let schema: params::Schema = if terminal && ctx.kind == GuestKind::Qemu {
        &[("serial", Ty::Enum(&["serial0", "serial1", "serial2", "serial3"]), false)]
    } else if terminal {
        &[]
    } else {
        &[
            ("websocket", Ty::Bool, false),
            ("width", Ty::Int(16, 4096), false),
            ("height", Ty::Int(16, 2160), false),
            ("generate-password", Ty::Bool, false),
        ]
    };
    params::check(&ctx.params, schema)?;
    let authid = ctx.authid();
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, "vncproxy", &vmid.to_string(), &authid);
    let mut state = ctx.sim.state.lock().expect("state");
    let g = state.guest(&ctx.node, ctx.kind, vmid)?;
    // A QEMU display that is a serial terminal (`vga: serialN`) needs no VNC password (pve-api.md §7).
    let serial_vga = g.config.get("vga").and_then(|v| v.split(',').next()).is_some_and(|v| v.starts_with("serial"));
    state.consoles.retain(|_, s| s.created.elapsed() < CONNECT_WINDOW);
    let port = (5900u16..=5999)
        .find(|p| !state.consoles.contains_key(p))
        .ok_or_else(|| ApiError::internal("unable to find free port (5900-6000)"))?;
    let mut ticket = ctx.sim.signer.vnc_ticket(&authid, vmid, port, now());
    let websocket = ctx.params.get("websocket").is_some_and(|w| w == "1");
    let mut answer = json!({"user": authid, "port": port.to_string(), "upid": upid.as_str()});
    if !terminal {
        answer["cert"] = json!(ctx.sim.cert_pem);
        let mut vnc_password = ticket.clone();
        let generate = ctx.params.get("generate-password").is_some_and(|g| g == "1");
        let wants_password = match (ctx.kind, ctx.sim.cfg.legacy_vnc_tickets) {
            (_, true) => generate && ctx.kind == GuestKind::Qemu,
            (GuestKind::Lxc, false) => websocket,
            (GuestKind::Qemu, false) => generate || websocket || !serial_vga,
        };
        if wants_password {
            // 8 characters from `!` to `` ` ``, prefixed to the ticket (pve-api.md §8.1).
            let mut rng = ctx.sim.rng.lock().expect("rng");
            let password: String = (0..8).map(|_| rng.random_range(0x21u8..=0x60) as char).collect();
            ticket = format!("{password}:{ticket}");
            answer["password"] = json!(password);
            vnc_password = password;
        }
        if let Some(path) = &ctx.sim.cfg.vnc_password_file {
            let obfuscated = crate::console::rfb::tigervnc_password_file(vnc_password.as_bytes());
            std::fs::write(path, obfuscated).map_err(|e| ApiError::internal(format!("VNC password: {e}")))?;
        }
    }
    answer["ticket"] = json!(ticket);
    state
        .tasks
        .insert(upid.to_string(), super::state::Task { upid: upid.clone(), state: TaskState::Running, log: vec![] });
    state.consoles.insert(
        port,
        ConsoleSession {
            authid,
            vmid,
            ticket,
            terminal,
            created: Instant::now(),
            upid: upid.to_string(),
            kind: ctx.kind,
            serial: ctx.params.get("serial").cloned(),
        },
    );
    drop(state);
    let sim = ctx.sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(CONNECT_WINDOW).await;
        let mut state = sim.state.lock().expect("state");
        let expired = state.consoles.get(&port).is_some_and(|s| s.upid == upid.as_str());
        if expired {
            state.consoles.remove(&port);
            finish(&mut state, upid.as_str(), "unable to connect - timeout");
        }
    });
    Ok(answer)
}

fn finish(state: &mut super::state::State, upid: &str, exit: &str) {
    if let Some(t) = state.tasks.get_mut(upid) {
        t.log.push(if exit == "OK" { "TASK OK".into() } else { format!("TASK ERROR: {exit}") });
        t.state = TaskState::Stopped { exit_status: exit.into() };
    }
}

/// `GET …/vncwebsocket?port=&vncticket=`: JSON without `Upgrade`, else 101 and the bridge.
pub(crate) async fn websocket(ctx: Ctx, req: Request) -> Result<Response, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Console"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[("port", Ty::Int(5900, 5999), true), ("vncticket", Ty::Str(512), true)])?;
    let port: u16 = ctx.params["port"].parse().expect("checked");
    let authid = ctx.authid();
    if !ctx.sim.signer.check_vnc_ticket(&ctx.params["vncticket"], &authid, vmid, port) {
        if !ctx.sim.cfg.auth_failure_delay.is_zero() {
            tokio::time::sleep(ctx.sim.cfg.auth_failure_delay).await;
        }
        return Err(ApiError::status(401, "permission denied - invalid PVEVNC ticket"));
    }
    if ctx.kind == GuestKind::Qemu {
        ctx.sim.state.lock().expect("state").guest(&ctx.node, ctx.kind, vmid)?;
    }
    if req.headers().get("upgrade").is_none() {
        return Ok(reply::ok(json!({"port": port.to_string()})));
    }
    let session = ctx.sim.state.lock().expect("state").consoles.remove(&port);
    let offered: Vec<String> = req
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|p| p.trim().to_owned()).collect())
        .unwrap_or_default();
    let ws = WebSocket::from_request(&req, &mut RequestBody::new(poem::Body::empty()))
        .await
        .map_err(|e| ApiError::status(400, e.to_string()))?;
    let sim = ctx.sim.clone();
    // pveproxy drops a connection whose client frame exceeds 128 KiB (pve-api.md §8.2).
    let limits = poem::web::websocket::WebSocketConfig::default().max_frame_size(Some(MAX_CLIENT_FRAME));
    Ok(ws
        .protocols(offered)
        .config(limits)
        .on_upgrade(move |socket| async move {
            let Some(session) = session else { return };
            let exit = bridge(&sim, &session, socket).await;
            finish(&mut sim.state.lock().expect("state"), &session.upid, &exit);
        })
        .into_response())
}

async fn bridge(sim: &Sim, session: &ConsoleSession, socket: poem::web::websocket::WebSocketStream) -> String {
    let (mut tx, mut rx) = socket.split();
    let terminal = session.terminal;
    if terminal {
        // termproxy: `<authid>:<ticket>\n` within 10 s, checked against the issued ticket (§8.4).
        let first = tokio::time::timeout(CONNECT_WINDOW, rx.next()).await;
        let text = match first {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(Message::Binary(b)))) => String::from_utf8_lossy(&b).into_owned(),
            _ => return "no handshake".into(),
        };
        let line = text.trim_end_matches('\n');
        let ok = line.split_once(':').is_some_and(|(a, t)| a == session.authid && t == session.ticket);
        if !ok {
            return "authentication failed".into();
        }
    }
    // `qm vncproxy` finds no VNC socket of a stopped VM: the worker fails and the websocket closes.
    if !terminal && session.kind == GuestKind::Qemu {
        let running = sim.state.lock().expect("state").guests.get(&session.vmid).is_some_and(|g| g.running);
        if !running {
            let _ = tx.close().await;
            return "Failed to run vncproxy.".into();
        }
    }
    let backend = if terminal { sim.cfg.term_backend } else { sim.cfg.vnc_backend };
    let stream = match backend {
        Some(addr) => match TcpStream::connect(addr).await {
            Ok(s) => Some(s),
            Err(e) => return format!("unable to connect to backend - {e}"),
        },
        None if terminal => None,
        None => return "no VNC backend configured".into(),
    };
    if terminal && tx.send(Message::Binary(b"OK".to_vec())).await.is_err() {
        return "OK".into();
    }
    // `qm terminal` refuses before anything is bridged; termproxy shows its message, then closes.
    if let Err(e) = qemu_terminal(sim, session) {
        let _ = tx.send(Message::Binary(format!("{e}\r\n").into_bytes())).await;
        let _ = tx.close().await;
        return format!("command 'qm terminal {} -escape 0' failed: exit code 255 ({e})", session.vmid);
    }
    let Some(stream) = stream else {
        // No terminal backend: a line echo, enough to see input arrive.
        while let Some(Ok(msg)) = rx.next().await {
            let data = match msg {
                Message::Text(t) => t.into_bytes(),
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            if let Some(input) = term_input(&data)
                && tx.send(Message::Binary(input)).await.is_err()
            {
                break;
            }
        }
        return "OK".into();
    };
    let (mut back_rx, mut back_tx) = stream.into_split();
    let upstream = async {
        while let Some(Ok(msg)) = rx.next().await {
            let data = match msg {
                Message::Text(t) => t.into_bytes(),
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            let payload = if terminal { term_input(&data) } else { Some(data) };
            if let Some(p) = payload
                && back_tx.write_all(&p).await.is_err()
            {
                break;
            }
        }
        let _ = back_tx.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match back_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Message::Binary(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.close().await;
    };
    tokio::select! {
        _ = upstream => {},
        _ = downstream => {},
    }
    "OK".into()
}

/// `qm terminal <vmid> [-iface serialN]`'s checks (qemu-server `src/PVE/CLI/qm.pm`, terminal): the
/// interface configured and a socket, else the first socket one; the VM running.
fn qemu_terminal(sim: &Sim, session: &ConsoleSession) -> Result<(), String> {
    if !session.terminal || session.kind != GuestKind::Qemu {
        return Ok(());
    }
    let state = sim.state.lock().expect("state");
    let g = state.guests.get(&session.vmid).ok_or_else(|| format!("VM {} does not exist", session.vmid))?;
    let vga_serial = g.config.get("vga").and_then(|v| v.split(',').next()).filter(|v| v.starts_with("serial"));
    match session.serial.as_deref().or(vga_serial) {
        Some(iface) => match g.config.get(iface).map(String::as_str) {
            None => return Err(format!("serial interface '{iface}' is not configured")),
            Some(v) if v != "socket" => return Err(format!("wrong serial type on interface '{iface}'")),
            Some(_) => {}
        },
        None => {
            let any = (0..4).any(|i| g.config.get(&format!("serial{i}")).is_some_and(|v| v == "socket"));
            if !any {
                return Err("unable to find a serial interface".into());
            }
        }
    }
    if !g.running {
        return Err(format!("VM {} not running", session.vmid));
    }
    Ok(())
}

/// termproxy framing: `0:<len>:<data>` is input, `1:<cols>:<rows>:` resize and `2` keep-alive (§8.4).
fn term_input(frame: &[u8]) -> Option<Vec<u8>> {
    let rest = frame.strip_prefix(b"0:")?;
    let colon = rest.iter().position(|b| *b == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let data = &rest[colon + 1..];
    Some(data[..len.min(data.len())].to_vec())
}

#[cfg(test)]
mod tests {
    use super::term_input;

    #[test]
    fn only_input_frames_reach_the_terminal() {
        assert_eq!(term_input(b"0:3:ls\n").as_deref(), Some(&b"ls\n"[..]));
        assert_eq!(term_input(b"1:80:24:"), None);
        assert_eq!(term_input(b"2"), None);
    }
}
