//! The termproxy handshake (pve-api.md §8.4): `<authid>:<ticket>\n`, answered by `OK` (terminal
//! output may follow in the same frame). proxdesk sends it itself, so the browser never sees the ticket.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::ConsoleError;
use crate::integrations::pve::websocket::ConsoleSocket;
use crate::integrations::pve::wire::ConsoleTicket;

/// Logs in to termproxy; returns the terminal output that came with `OK`.
pub async fn login(ws: &mut ConsoleSocket, ticket: &ConsoleTicket) -> Result<Vec<u8>, ConsoleError> {
    let line = format!("{}:{}\n", ticket.user, ticket.ticket);
    ws.send(Message::binary(line.into_bytes())).await.map_err(|e| ConsoleError::Upstream(e.to_string()))?;
    let mut got = Vec::new();
    while got.len() < 2 {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => got.extend_from_slice(&b),
            Some(Ok(Message::Text(t))) => got.extend_from_slice(t.as_bytes()),
            Some(Ok(Message::Close(_))) | None => {
                return Err(ConsoleError::Auth("termproxy refused the ticket".into()));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ConsoleError::Upstream(e.to_string())),
        }
    }
    if !got.starts_with(b"OK") {
        return Err(ConsoleError::Protocol("termproxy did not answer OK".into()));
    }
    Ok(got.split_off(2))
}
