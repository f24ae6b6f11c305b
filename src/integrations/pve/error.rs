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
    /// The guest is stopped and the call needs it running (`VM 100 is not running`, `CT 101 not running`).
    #[error("{0}")]
    NotRunning(String),
    /// The guest already runs (`CT 101 already running`): for a start, the goal is reached.
    #[error("{0}")]
    AlreadyRunning(String),
    /// The QEMU guest agent cannot be asked: not configured (`No QEMU guest agent configured`), or
    /// configured but not answering (`QEMU guest agent is not running`, at once or after PVE's 3 s ping).
    #[error("{message}")]
    AgentUnavailable { configured: bool, message: String },
    /// PVE could not get a config lock or a worker in time (`… - got timeout`, `got no worker upid`):
    /// the call did nothing and may be tried again.
    #[error("{0}")]
    Busy(String),
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
    /// The server could not be reached: no connection was made, so nothing was sent.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The connection broke after the request was sent: PVE may have acted on it.
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

/// Whether trying again may give another answer (pve-api.md §3, §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transience {
    /// The network, pveproxy's link to another node (595–599), or a lock or worker wait: worth a retry.
    Transient,
    /// PVE decided (every other `die` of a handler, 4xx, a failed task): the same call fails the same way.
    Permanent,
}

impl PveError {
    /// How this error is to be treated. Only a few failures are worth repeating: PVE answers 500 for
    /// every `die` in a handler, and nearly all of those (`VM 123 is not running`, a missing config,
    /// `No QEMU guest agent configured`) will say the same thing again.
    pub fn transience(&self) -> Transience {
        match self {
            PveError::Unreachable(_) | PveError::Connection(_) | PveError::Timeout(_) | PveError::Busy(_) => {
                Transience::Transient
            }
            PveError::Api { status, .. } if (595..=599).contains(status) => Transience::Transient,
            _ => Transience::Permanent,
        }
    }

    /// Whether an idempotent call may be repeated after this error.
    pub fn is_transient(&self) -> bool {
        self.transience() == Transience::Transient
    }

    /// Whether PVE may have carried out the call although no answer said so: the connection broke or
    /// timed out after the request went out, or pveproxy lost the node's reply (596–599). A write that
    /// ends like this must be checked against PVE's state before it is sent again.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            PveError::Connection(_) | PveError::Timeout(_) => true,
            PveError::Api { status, .. } => (596..=599).contains(status),
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
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), field_text(v))).collect())
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

/// A per-parameter message; PVE sends strings, anything else is kept as its JSON text, not dropped.
fn field_text(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

fn classify_text(status: u16, message: String) -> PveError {
    if (595..=599).contains(&status) {
        return PveError::Api { status, message };
    }
    if message.contains("does not exist") || message.starts_with("hostname lookup") {
        return PveError::NotFound(message);
    }
    if message.ends_with("got timeout") || message.contains("got no worker upid") {
        return PveError::Busy(message);
    }
    if message == "No QEMU guest agent configured" {
        return PveError::AgentUnavailable { configured: false, message };
    }
    if message == "QEMU guest agent is not running" {
        return PveError::AgentUnavailable { configured: true, message };
    }
    if message.ends_with(" not running") && (message.starts_with("VM ") || message.starts_with("CT ")) {
        return PveError::NotRunning(message);
    }
    if message.ends_with(" already running") {
        return PveError::AlreadyRunning(message);
    }
    if message.contains("already exists") {
        return PveError::AlreadyExists(message);
    }
    // LXC's text, then QEMU's (config PUT/POST and resize, pve-qemu-day2.md §11).
    if message.starts_with("detected modified configuration") || message.starts_with("checksum mismatch (file change") {
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
        } else if e.is_connect() && !is_tls(&e) {
            PveError::Unreachable(chain)
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
mod fuzz;
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

    fn status_500(text: &str) -> PveError {
        let body = serde_json::json!({"data": null, "message": format!("{text}\n")}).to_string();
        PveError::from_response(500, text, body.as_bytes())
    }

    type Case = (&'static str, fn(&PveError) -> bool, Transience);

    /// The exact texts of pve-api.md §3.2 and §7, what they become, and whether a read repeats them.
    #[test]
    fn pve_answers_are_classified_by_their_exact_texts() {
        use Transience::{Permanent, Transient};
        let cases: &[Case] = &[
            (
                "Configuration file 'nodes/pve1/lxc/101.conf' does not exist",
                |e| matches!(e, PveError::NotFound(_)),
                Permanent,
            ),
            (
                "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist",
                |e| matches!(e, PveError::NotFound(_)),
                Permanent,
            ),
            ("CT is locked (backup)", |e| matches!(e, PveError::Locked { lock, .. } if lock == "backup"), Permanent),
            ("VM is locked (clone)", |e| matches!(e, PveError::Locked { lock, .. } if lock == "clone"), Permanent),
            ("CT 101 already running", |e| matches!(e, PveError::AlreadyRunning(_)), Permanent),
            ("CT 101 not running", |e| matches!(e, PveError::NotRunning(_)), Permanent),
            ("VM 101 not running", |e| matches!(e, PveError::NotRunning(_)), Permanent),
            ("VM 123 is not running", |e| matches!(e, PveError::NotRunning(_)), Permanent),
            ("CT 200 already exists on node 'pve1'", |e| matches!(e, PveError::AlreadyExists(_)), Permanent),
            (
                "unable to create VM 200: config file already exists",
                |e| matches!(e, PveError::AlreadyExists(_)),
                Permanent,
            ),
            (
                "detected modified configuration - file changed by other user? Try again.",
                |e| matches!(e, PveError::ConfigChanged(_)),
                Permanent,
            ),
            ("checksum mismatch (file change by other user?)", |e| matches!(e, PveError::ConfigChanged(_)), Permanent),
            ("no options specified", |e| matches!(e, PveError::Api { status: 500, .. }), Permanent),
            (
                "can't lock file '/run/lock/lxc/pve-config-101.lock' - got timeout",
                |e| matches!(e, PveError::Busy(_)),
                Transient,
            ),
            (
                "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout",
                |e| matches!(e, PveError::Busy(_)),
                Transient,
            ),
            ("got no worker upid - start worker failed", |e| matches!(e, PveError::Busy(_)), Transient),
            ("unable to find free port (5900-6000)", |e| matches!(e, PveError::Api { status: 500, .. }), Permanent),
            (
                "No QEMU guest agent configured",
                |e| matches!(e, PveError::AgentUnavailable { configured: false, .. }),
                Permanent,
            ),
            (
                "QEMU guest agent is not running",
                |e| matches!(e, PveError::AgentUnavailable { configured: true, .. }),
                Permanent,
            ),
            ("Agent error: Guest agent command failed", |e| matches!(e, PveError::Api { status: 500, .. }), Permanent),
            (
                "hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known",
                |e| matches!(e, PveError::NotFound(_)),
                Permanent,
            ),
        ];
        for (text, is, transience) in cases {
            let e = status_500(text);
            assert!(is(&e), "{text:?} became {e:?}");
            assert_eq!(e.transience(), *transience, "{text:?}");
            assert!(!e.outcome_unknown(), "{text:?} is PVE's own answer: it acted or refused");
            assert_eq!(e.to_string().trim_end(), e.to_string(), "no trailing newline kept");
        }
    }

    #[test]
    fn proxy_pseudo_statuses_and_transport_failures_are_transient() {
        for (code, reason, unknown) in [
            (595, "Connection refused", false),
            (596, "Broken pipe", true),
            (597, "Connection reset by peer", true),
            (599, "Connection timed out", true),
        ] {
            // pveproxy sends them with an empty body; the reason phrase is the text (pve-api.md §3).
            let e = PveError::from_response(code, reason, b"");
            assert!(matches!(e, PveError::Api { status, ref message } if status == code && message == reason), "{e:?}");
            assert!(e.is_transient(), "{code}");
            assert_eq!(e.outcome_unknown(), unknown, "{code}");
        }
        assert!(PveError::Unreachable("refused".into()).is_transient());
        assert!(!PveError::Unreachable("refused".into()).outcome_unknown(), "nothing was sent");
        assert!(PveError::Connection("reset".into()).outcome_unknown());
        assert!(PveError::Timeout("30 s".into()).outcome_unknown());
        for permanent in [
            PveError::from_response(
                400,
                "Parameter verification failed.",
                br#"{"errors":{"cores":"value must have a minimum value of 1"}}"#,
            ),
            PveError::from_response(401, "authentication failure", b""),
            PveError::from_response(403, "Permission check failed (/vms/100, VM.Audit)", b""),
            PveError::from_response(501, "Method 'GET /nodes/pve1/foo' not implemented", b""),
        ] {
            assert_eq!(permanent.transience(), Transience::Permanent, "{permanent:?}");
        }
    }
}
