//! Connection credentials in Proxmox notes (`../shared/reference/notes-syntax.md`): a quote-aware
//! parser with per-entry diagnostics, Fernet-encrypted passwords compatible with the existing sync tool,
//! name templates, the settings allow-list and the plain-to-encrypted migration.

pub mod fernet;
pub mod parse;
pub mod rewrite;
pub mod scan;
pub mod settings;
pub mod template;

use std::collections::BTreeMap;

pub use fernet::{FernetError, FernetKey};
pub use parse::{NoteEntry, NotePassword, ParsedNotes, parse};
pub use rewrite::{Rewrite, encrypt_plain_passwords};
pub use template::{TemplateVars, render};

use crate::secrets::Secret;

/// A protocol a note may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Remote Desktop.
    Rdp,
    /// VNC.
    Vnc,
    /// SSH.
    Ssh,
}

impl Protocol {
    /// `rdp`, `vnc` or `ssh`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rdp" => Some(Protocol::Rdp),
            "vnc" => Some(Protocol::Vnc),
            "ssh" => Some(Protocol::Ssh),
            _ => None,
        }
    }
    /// Guacamole's protocol name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rdp => "rdp",
            Protocol::Vnc => "vnc",
            Protocol::Ssh => "ssh",
        }
    }
    /// rdp 3389, vnc 5900, ssh 22.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Rdp => 3389,
            Protocol::Vnc => 5900,
            Protocol::Ssh => 22,
        }
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something was dropped but the entry still counts.
    Warning,
    /// The entry (or the construct) was skipped.
    Error,
}

/// A problem in a note, at a line and column (1-based, columns in characters).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoteDiagnostic {
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
    /// Warning or error.
    pub severity: Severity,
    /// What is wrong, never containing a password.
    pub message: String,
}

/// One connection a note asks for, with its password opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteConnection {
    /// Line of the entry it comes from.
    pub line: usize,
    /// Login.
    pub username: String,
    /// Password.
    pub password: Secret<String>,
    /// Protocol.
    pub protocol: Protocol,
    /// Port.
    pub port: u16,
    /// Rendered connection name (at most 128 characters, Guacamole's limit).
    pub name: String,
    /// Extra Guacamole parameters (allow-listed settings and WoL).
    pub parameters: BTreeMap<String, String>,
}

/// What a VM contributes to name templates and WoL.
#[derive(Debug, Clone, Default)]
pub struct VmContext<'a> {
    /// VM name.
    pub name: &'a str,
    /// VM id.
    pub vmid: u32,
    /// Node.
    pub node: &'a str,
    /// IPv4 address, when known.
    pub ip: Option<&'a str>,
    /// MAC address of the first NIC, for Wake-on-LAN.
    pub mac: Option<&'a str>,
    /// Short host name of the machine running the sync.
    pub host: &'a str,
}

/// Guacamole's `varchar(128)` for names.
const NAME_LIMIT: usize = 128;

/// The connections a VM's note asks for, and every problem found. Entries whose encrypted password
/// does not open are skipped with an error; they never stop the others.
pub fn note_connections(
    notes: &str,
    vm: &VmContext<'_>,
    key: Option<&FernetKey>,
) -> (Vec<NoteConnection>, Vec<NoteDiagnostic>) {
    let parsed = parse(notes);
    let mut diagnostics = parsed.diagnostics;
    let mut out = Vec::new();
    for e in &parsed.entries {
        let password = match &e.password {
            NotePassword::Plain(p) => p.clone(),
            NotePassword::Encrypted(v) => match key.map(|k| k.decrypt_note_password(v)) {
                Some(Ok(p)) => p,
                Some(Err(err)) => {
                    diagnostics.push(NoteDiagnostic {
                        line: e.line,
                        column: e.column,
                        severity: Severity::Error,
                        message: format!("entry skipped: encrypted_password: {err}"),
                    });
                    continue;
                }
                None => {
                    diagnostics.push(NoteDiagnostic {
                        line: e.line,
                        column: e.column,
                        severity: Severity::Error,
                        message: "entry skipped: encrypted_password needs PROXDESK_NOTES_KEY".into(),
                    });
                    continue;
                }
            },
        };
        let template =
            e.name_template.as_deref().or(parsed.default_name.as_deref()).unwrap_or("{user}@{vmname}-{proto}");
        for proto in &e.protocols {
            let port = e.ports[proto];
            let vars = TemplateVars {
                vmname: vm.name,
                user: &e.username,
                proto: proto.as_str(),
                vmid: vm.vmid,
                node: vm.node,
                ip: vm.ip.unwrap_or(""),
                host: vm.host,
                port,
            };
            let mut name = render(template, &vars);
            if name.chars().count() > NAME_LIMIT {
                name = name.chars().take(NAME_LIMIT).collect();
                diagnostics.push(NoteDiagnostic {
                    line: e.line,
                    column: e.column,
                    severity: Severity::Warning,
                    message: format!("connection name cut to {NAME_LIMIT} characters"),
                });
            }
            if name.trim().is_empty() {
                diagnostics.push(NoteDiagnostic {
                    line: e.line,
                    column: e.column,
                    severity: Severity::Error,
                    message: "connection skipped: its name template renders empty".into(),
                });
                continue;
            }
            let mut parameters = e.settings.get(proto).cloned().unwrap_or_default();
            if let Some(mac) = vm.mac.filter(|_| !e.wol_disabled) {
                parameters.extend(e.wol_settings.clone());
                parameters.insert("wol-send-packet".into(), "true".into());
                parameters.insert("wol-mac-addr".into(), mac.to_owned());
            }
            out.push(NoteConnection {
                line: e.line,
                username: e.username.clone(),
                password: password.clone(),
                protocol: *proto,
                port,
                name,
                parameters,
            });
        }
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    (out, diagnostics)
}

#[cfg(test)]
mod tests;
