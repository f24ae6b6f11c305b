//! The meaning of entries: aliases, protocols, ports, settings and required fields (notes-syntax.md 3–6).

use std::collections::BTreeMap;

use super::scan::{Pair, RawEntry, scan};
use super::{NoteDiagnostic, Protocol, Severity, settings::filter_settings};

/// A password as the note holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotePassword {
    /// Written in clear.
    Plain(crate::secrets::Secret<String>),
    /// An `encrypted_password` value (Fernet token, base64-encoded once more).
    Encrypted(String),
}

/// One valid entry: a user, a password and the connections to make for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteEntry {
    /// 1-based line of the entry's first pair.
    pub line: usize,
    /// 1-based column of the entry's first pair.
    pub column: usize,
    /// Login on the VM.
    pub username: String,
    /// Its password.
    pub password: NotePassword,
    /// Valid protocols, in the order written, without repeats.
    pub protocols: Vec<Protocol>,
    /// `connection_name` / `confName`.
    pub name_template: Option<String>,
    /// The port of each protocol.
    pub ports: BTreeMap<Protocol, u16>,
    /// Allowed Guacamole parameters from `<proto>_settings`, by protocol.
    pub settings: BTreeMap<Protocol, BTreeMap<String, String>>,
    /// Allowed parameters from `wol_settings` (every protocol).
    pub wol_settings: BTreeMap<String, String>,
    /// `wol_disabled`.
    pub wol_disabled: bool,
}

/// A parsed note: its entries, the note-wide name template and every problem found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedNotes {
    /// Valid entries in order.
    pub entries: Vec<NoteEntry>,
    /// `default_conf_name` (the last one written).
    pub default_name: Option<String>,
    /// Problems, each with line and column.
    pub diagnostics: Vec<NoteDiagnostic>,
}

const KNOWN: &[&str] = &[
    "username",
    "user",
    "password",
    "pass",
    "encrypted_password",
    "protocols",
    "protos",
    "proto",
    "connection_name",
    "confName",
    "default_conf_name",
    "port",
    "rdp_port",
    "vnc_port",
    "ssh_port",
    "rdp_settings",
    "rdpSettings",
    "vnc_settings",
    "vncSettings",
    "wol_settings",
    "wolSettings",
    "wol_disabled",
    "wolDisabled",
];

/// Non-empty values by key; the last pair of a key wins.
fn values(pairs: &[Pair]) -> BTreeMap<&str, &Pair> {
    let mut map = BTreeMap::new();
    for p in pairs.iter().filter(|p| !p.value.is_empty()) {
        map.insert(p.key.as_str(), p);
    }
    map
}

/// The first of `keys` present (aliases: the first listed wins).
fn first<'a>(map: &BTreeMap<&str, &'a Pair>, keys: &[&str]) -> Option<&'a Pair> {
    keys.iter().find_map(|k| map.get(k).copied())
}

/// Parses a whole note. Never panics and never fails: bad entries become diagnostics.
pub fn parse(text: &str) -> ParsedNotes {
    let scanned = scan(text);
    let mut out = ParsedNotes { diagnostics: scanned.errors, ..ParsedNotes::default() };
    for entry in &scanned.entries {
        if let Some(p) = first(&values(&entry.pairs), &["default_conf_name"]) {
            out.default_name = Some(p.value.clone());
        }
    }
    let known_trailing =
        |k: &str| scanned.trailing.iter().find(|p| p.key == k || (k.is_empty() && KNOWN.contains(&p.key.as_str())));
    let unterminated = match known_trailing("default_conf_name") {
        Some(p) => Some((p, Severity::Error, "default_conf_name entry is not terminated by ';'; ignored")),
        None => known_trailing("").map(|p| (p, Severity::Warning, "text after the last ';' is not an entry; ignored")),
    };
    if let Some((p, severity, what)) = unterminated {
        out.diagnostics.push(NoteDiagnostic { line: p.line, column: p.column, severity, message: what.into() });
    }
    for entry in &scanned.entries {
        interpret(entry, &mut out);
    }
    out.diagnostics.sort_by_key(|d| (d.line, d.column));
    out
}

fn interpret(entry: &RawEntry, out: &mut ParsedNotes) {
    let known: Vec<&Pair> = entry.pairs.iter().filter(|p| KNOWN.contains(&p.key.as_str())).collect();
    // Free text with a `;` in it, or a note-wide `default_conf_name` entry: not a connection entry.
    if known.iter().all(|p| p.key == "default_conf_name") {
        return;
    }
    let (line, column) = (entry.pairs[0].line, entry.pairs[0].column);
    let mut diag = |severity, message: String| {
        out.diagnostics.push(NoteDiagnostic { line, column, severity, message });
    };
    let map = values(&entry.pairs);
    let username = first(&map, &["username", "user"]).map(|p| p.value.clone());
    let password = match (first(&map, &["password", "pass"]), map.get("encrypted_password")) {
        (Some(p), _) => Some(NotePassword::Plain(crate::secrets::Secret::new(p.value.clone()))),
        (None, Some(e)) => Some(NotePassword::Encrypted(e.value.clone())),
        (None, None) => None,
    };
    let mut protocols = Vec::new();
    if let Some(p) = first(&map, &["protocols", "protos", "proto"]) {
        for item in p.value.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()) {
            match Protocol::parse(&item) {
                Some(proto) if !protocols.contains(&proto) => protocols.push(proto),
                Some(_) => {}
                None => diag(Severity::Warning, format!("unknown protocol {item:?} dropped (valid: rdp, vnc, ssh)")),
            }
        }
    }
    let missing: Vec<&str> = [
        (username.is_none(), "a username"),
        (password.is_none(), "a password"),
        (protocols.is_empty(), "a valid protocol"),
    ]
    .iter()
    .filter(|(m, _)| *m)
    .map(|(_, w)| *w)
    .collect();
    if !missing.is_empty() {
        diag(Severity::Error, format!("entry skipped: it lacks {}", missing.join(", ")));
        return;
    }
    let mut ports = BTreeMap::new();
    for proto in &protocols {
        let key = format!("{}_port", proto.as_str());
        let port = match first(&map, &[key.as_str(), "port"]) {
            None => proto.default_port(),
            Some(p) => match p.value.trim().parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => {
                    diag(Severity::Error, format!("entry skipped: {} {:?} is not a port number", p.key, p.value));
                    return;
                }
            },
        };
        ports.insert(*proto, port);
    }
    let mut settings = BTreeMap::new();
    for (proto, keys) in
        [(Protocol::Rdp, ["rdp_settings", "rdpSettings"]), (Protocol::Vnc, ["vnc_settings", "vncSettings"])]
    {
        if let Some(p) = first(&map, &keys) {
            let (kept, refused) = filter_settings(proto, &p.value);
            for r in refused {
                diag(Severity::Warning, format!("{}: parameter {r:?} is not allowed from notes; ignored", p.key));
            }
            settings.insert(proto, kept);
        }
    }
    let mut wol_settings = BTreeMap::new();
    if let Some(p) = first(&map, &["wol_settings", "wolSettings"]) {
        let (kept, refused) = super::settings::filter_wol(&p.value);
        for r in refused {
            diag(Severity::Warning, format!("{}: parameter {r:?} is not allowed from notes; ignored", p.key));
        }
        wol_settings = kept;
    }
    let wol_disabled = first(&map, &["wol_disabled", "wolDisabled"])
        .is_some_and(|p| matches!(p.value.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    out.entries.push(NoteEntry {
        line,
        column,
        username: username.expect("checked above"),
        password: password.expect("checked above"),
        protocols,
        name_template: first(&map, &["connection_name", "confName"]).map(|p| p.value.clone()),
        ports,
        settings,
        wol_settings,
        wol_disabled,
    });
}
