//! Consoles through the simulator: vncproxy/termproxy tickets, the websocket upgrade and the bridge.

use futures_util::{SinkExt, StreamExt};
use proxdesk::integrations::pve::sim::{SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::pve_client::{TOKEN_ID, TOKEN_SECRET, config, token_client};

fn ws_request(url: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = url.into_client_request().unwrap();
    let headers = req.headers_mut();
    headers.insert("Authorization", format!("PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}").parse().unwrap());
    headers.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    req
}

#[tokio::test]
async fn termproxy_handshake_answers_ok_and_relays_input() {
    let sim = Simulator::start(config()).await.unwrap();
    let pve = token_client(&sim);
    let ticket = pve.lxc_termproxy("pve1", 9000).await.unwrap();
    assert!(ticket.ticket.starts_with("PVEVNC:"));
    assert!((5900..=5999).contains(&ticket.port));
    let url = pve.vncwebsocket_url("pve1", "lxc", 9000, &ticket);
    let (mut ws, resp) = tokio_tungstenite::connect_async(ws_request(&url)).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "binary", "subprotocol echoed");
    ws.send(Message::text(format!("{TOKEN_ID}:{}\n", ticket.ticket))).await.unwrap();
    let ok = ws.next().await.unwrap().unwrap();
    assert_eq!(ok.into_data().as_ref(), b"OK");
    ws.send(Message::binary(b"1:120:40:".to_vec())).await.unwrap();
    ws.send(Message::binary(b"0:6:hello\n".to_vec())).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_data().as_ref(), b"hello\n");
}

#[tokio::test]
async fn vnc_websocket_is_bridged_to_the_backend() {
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_addr = backend.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        s.write_all(b"RFB 003.008\n").await.unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
    });
    let sim = Simulator::start(SimConfig { vnc_backend: Some(backend_addr), ..config() }).await.unwrap();
    let pve = token_client(&sim);
    let ticket = pve.lxc_vncproxy("pve1", 9000).await.unwrap();
    let url = pve.vncwebsocket_url("pve1", "lxc", 9000, &ticket);
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(&url)).await.unwrap();
    let banner = ws.next().await.unwrap().unwrap();
    assert!(banner.is_binary());
    assert_eq!(banner.into_data().as_ref(), b"RFB 003.008\n");
    ws.send(Message::binary(b"RFB 003.008\n".to_vec())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().as_ref(), b"RFB 003.008\n");
    assert!(sim.state().consoles.is_empty(), "a console port serves one connection");
}

#[tokio::test]
async fn a_websocket_with_a_wrong_ticket_is_refused() {
    let sim = Simulator::start(config()).await.unwrap();
    let pve = token_client(&sim);
    let mut ticket = pve.lxc_termproxy("pve1", 9000).await.unwrap();
    ticket.port = if ticket.port == 5900 { 5901 } else { 5900 };
    let url = pve.vncwebsocket_url("pve1", "lxc", 9000, &ticket);
    let e = tokio_tungstenite::connect_async(ws_request(&url)).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = e else { panic!("{e:?}") };
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn termproxy_is_bridged_to_a_terminal_backend() {
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let term_backend = Some(backend.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ls\n", "only the input frame's data reaches the terminal");
        s.write_all(b"bin  etc  home\r\n").await.unwrap();
    });
    let sim = Simulator::start(SimConfig { term_backend, ..config() }).await.unwrap();
    let pve = token_client(&sim);
    let ticket = pve.lxc_termproxy("pve1", 9000).await.unwrap();
    let url = pve.vncwebsocket_url("pve1", "lxc", 9000, &ticket);
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(&url)).await.unwrap();
    ws.send(Message::binary(format!("{TOKEN_ID}:{}\n", ticket.ticket).into_bytes())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().as_ref(), b"OK");
    ws.send(Message::binary(b"2".to_vec())).await.unwrap();
    ws.send(Message::binary(b"0:3:ls\n".to_vec())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().as_ref(), b"bin  etc  home\r\n");
}
