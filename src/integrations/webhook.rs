//! Delivering webhook events: a JSON body POSTed with a timestamp and an HMAC-SHA256 signature of
//! `"<timestamp>.<body>"` under the webhook's secret, so a receiver can check who sent it and when.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secrets::Secret;

/// Seconds since the Unix epoch when the request was signed.
pub const TIMESTAMP_HEADER: &str = "X-Proxdesk-Timestamp";
/// Lower-case hex of HMAC-SHA256(secret, "<timestamp>.<body>").
pub const SIGNATURE_HEADER: &str = "X-Proxdesk-Signature";
/// The event's id, the same on every retry (receivers drop repeats by it).
pub const EVENT_ID_HEADER: &str = "X-Proxdesk-Event-Id";

/// The signature of `body` sent at `timestamp` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Why a delivery did not succeed; every one is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver answered, but not with 2xx.
    #[error("the receiver answered {0}")]
    Status(u16),
    /// No answer: refused, reset, or past the timeout.
    #[error("no answer: {0}")]
    Transport(String),
}

impl DeliveryError {
    /// The status the receiver answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Status(s) => Some(*s),
            DeliveryError::Transport(_) => None,
        }
    }
}

/// POSTs signed events, each bounded by the timeout.
#[derive(Clone, Debug)]
pub struct WebhookClient {
    http: reqwest::Client,
}

impl WebhookClient {
    /// A client whose deliveries each end within `timeout` (connecting included); redirects are not
    /// followed.
    pub fn new(timeout: Duration) -> Result<WebhookClient, String> {
        crate::integrations::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A webhook is one URL: a redirect elsewhere is not followed with a signed body.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("proxdesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(WebhookClient { http })
    }

    /// Sends `body` (the event's JSON) to `url`, signed at `timestamp`; answers the 2xx status.
    pub async fn deliver(
        &self,
        url: &str,
        secret: &Secret<String>,
        event_id: &str,
        body: &str,
        timestamp: i64,
    ) -> Result<u16, DeliveryError> {
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(secret.expose(), timestamp, body))
            .header(EVENT_ID_HEADER, event_id)
            .body(body.to_owned())
            .send()
            .await
            // Without the URL: it may carry a token of the receiver's in its query.
            .map_err(|e| DeliveryError::Transport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if response.status().is_success() { Ok(status) } else { Err(DeliveryError::Status(status)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() {
        // As `printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac Jefe` prints it.
        let sig = signature("Jefe", 1700000000, "{\"a\":1}");
        assert_eq!(sig, "fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a");
        assert_ne!(sig, signature("Jefe", 1700000001, "{\"a\":1}"), "the timestamp is signed");
        assert_ne!(sig, signature("Jefe", 1700000000, "{\"a\":2}"), "the body is signed");
        assert_ne!(sig, signature("jefe", 1700000000, "{\"a\":1}"), "the secret matters");
    }
}
