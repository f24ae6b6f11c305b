//! The client's one error type, and how PVE's status codes and texts map onto it (pve-api.md §3).

use std::collections::BTreeMap;

/// Everything a call to Proxmox VE can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PveError {
    /// The guest, node, storage, pool or task does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A 403: the identity lacks `privilege` on `path` (both absent for bare `Permission check failed`).
    #[error("permission denied on {} ({})", path.as_deref().unwrap_or("?"), privilege.as_deref().unwrap_or("?"))]
    PermissionDenied { path: Option<String>, privilege: Option<String>, message: String },
    /// A 400 with PVE's per-parameter messages.
    #[error("invalid parameters: {}", fmt_fields(.0))]
    Parameters(BTreeMap<String, String>),
    /// The guest's config carries a lock (`CT is locked (disk)`).
    #[error("{message}")]
    Locked { lock: String, message: String },
    /// A VMID or name is already taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The config changed since its `digest` was read (someone else edited it): read again and decide anew.
    #[error("{0}")]
    ConfigChanged(String),
    /// A task ended with an error; `log_tail` holds its last log lines.
    #[error("task {upid} failed: {exit_status}")]
    TaskFailed { upid: String, exit_status: String, log_tail: Vec<String> },
    /// A call ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A task was still running when the wait for it ended; it may still finish, or be stopped.
    #[error("task {upid} still running after {waited:?}")]
    TaskRunning { upid: String, waited: std::time::Duration },
    /// Credentials were refused (401); the reason phrase is kept.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// The server could not be reached or the connection broke.
    #[error("connection error: {0}")]
    Connection(String),
    /// The TLS handshake failed (unknown issuer, fingerprint mismatch…).
    #[error("TLS error: {0}")]
    Tls(String),
    /// Any other error status, with PVE's message (or its reason phrase on older servers).
    #[error("PVE answered {status}: {message}")]
    Api { status: u16, message: String },
    /// The answer did not have the expected shape.
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// The client could not be built (bad URL, TLS setup).
    #[error("client setup: {0}")]
    Setup(String),
}

fn fmt_fields(errors: &BTreeMap<String, String>) -> String {
    errors.iter().map(|(k, v)| format!("{k}: {}", v.trim_end())).collect::<Vec<_>>().join("; ")
}

impl PveError {
    /// Whether an idempotent call may be repeated after this error.
    pub fn is_transient(&self) -> bool {
        match self {
            PveError::Connection(_) | PveError::Timeout(_) => true,
            // 595–599 are pveproxy's proxy pseudo-statuses (pve-api.md §3); `got timeout` is a config
            // lock wait that bpg also retries.
            PveError::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Builds the error for an HTTP error answer from its status, reason phrase and JSON body.
    pub(crate) fn from_response(status: u16, reason: &str, body: &[u8]) -> Self {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        // Older servers send no `message`: the reason phrase carries the text (pve-api.md §0, §3).
        let message = json
            .get("message")
            .and_then(|m| m.as_str())
            .map(|m| m.trim_end().to_owned())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| reason.to_owned());
        match status {
            400 => {
                let errors: BTreeMap<String, String> = json
                    .get("errors")
                    .and_then(|e| e.as_object())
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                    .unwrap_or_default();
                if let Some(text) = errors.get("upid").filter(|t| t.contains("no such task")) {
                    return PveError::NotFound(text.clone());
                }
                if errors.values().any(|v| v.contains("already exists")) {
                    return PveError::AlreadyExists(fmt_fields(&errors));
                }
                if errors.is_empty() {
                    return PveError::Parameters(BTreeMap::from([(String::new(), message)]));
                }
                PveError::Parameters(errors)
            }
            401 => PveError::Authentication(message),
            403 => {
                let (path, privilege) = parse_permission(&message);
                PveError::PermissionDenied { path, privilege, message }
            }
            _ => classify_text(status, message),
        }
    }
}

fn classify_text(status: u16, message: String) -> PveError {
    if message.contains("does not exist") || message.starts_with("hostname lookup") {
        return PveError::NotFound(message);
    }
    if message.contains("already exists") {
        return PveError::AlreadyExists(message);
    }
    if message.starts_with("detected modified configuration") {
        return PveError::ConfigChanged(message);
    }
    if let Some(rest) = message.split_once("is locked (").map(|(_, r)| r) {
        let lock = rest.split(')').next().unwrap_or_default().to_owned();
        return PveError::Locked { lock, message };
    }
    PveError::Api { status, message }
}

/// `Permission check failed (/vms/100, VM.Audit)` → path and privilege (pve-api.md §3).
fn parse_permission(message: &str) -> (Option<String>, Option<String>) {
    let Some(inner) = message.split_once('(').and_then(|(_, r)| r.rsplit_once(')')).map(|(i, _)| i) else {
        return (None, None);
    };
    match inner.split_once(", ") {
        Some((path, privilege)) => (Some(path.to_owned()), Some(privilege.to_owned())),
        None => (None, None),
    }
}

impl From<reqwest::Error> for PveError {
    fn from(e: reqwest::Error) -> Self {
        let chain = error_chain(&e);
        if e.is_timeout() {
            PveError::Timeout(chain)
        } else if is_tls(&e) {
            PveError::Tls(chain)
        } else if e.is_decode() {
            PveError::Decode(chain)
        } else if e.is_builder() {
            PveError::Setup(chain)
        } else {
            PveError::Connection(chain)
        }
    }
}

fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<rustls::Error>() {
            return true;
        }
        // hyper-util boxes the handshake's io::Error; its Debug still names the rustls variant.
        let debug = format!("{err:?}");
        if ["InvalidCertificate", "General(", "AlertReceived", "PeerIncompatible", "PeerMisbehaved"]
            .iter()
            .any(|m| debug.contains(m))
        {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        cur = err.source();
    }
    false
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pve_texts_map_to_variants() {
        let e = PveError::from_response(
            403,
            "x",
            br#"{"data":null,"message":"Permission check failed (/vms/100, VM.Audit)\n"}"#,
        );
        assert!(
            matches!(e, PveError::PermissionDenied { path: Some(ref p), privilege: Some(ref v), .. } if p == "/vms/100" && v == "VM.Audit")
        );
        let e = PveError::from_response(500, "CT is locked (disk)", b"");
        assert!(matches!(e, PveError::Locked { ref lock, .. } if lock == "disk"));
        let e = PveError::from_response(400, "x", br#"{"errors":{"cores":"value must have a minimum value of 1"}}"#);
        assert!(matches!(e, PveError::Parameters(ref m) if m["cores"].starts_with("value must")));
        let e = PveError::from_response(500, "Configuration file 'nodes/pve1/lxc/5.conf' does not exist", b"");
        assert!(matches!(e, PveError::NotFound(_)));
        let digest =
            br#"{"data":null,"message":"detected modified configuration - file changed by other user? Try again.\n"}"#;
        assert!(matches!(PveError::from_response(500, "x", digest), PveError::ConfigChanged(_)));
    }
}
