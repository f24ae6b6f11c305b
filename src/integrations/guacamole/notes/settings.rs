//! The allow-list of Guacamole parameters a note may set (notes-syntax.md, "Per-protocol settings are
//! allow-listed"): display and behaviour only; nothing that reaches files, other hosts, commands or
//! credentials.

use std::collections::BTreeMap;

use super::Protocol;

const COMMON: &[&str] =
    &["read-only", "color-depth", "force-lossless", "clipboard-buffer-size", "disable-copy", "disable-paste"];

/// Not `ignore-cert` nor `disable-auth`: whoever may edit a VM's notes could otherwise make guacd send the
/// stored credentials to any host that answers with any certificate, or skip authentication altogether.
const RDP: &[&str] = &[
    "security",
    "cert-tofu",
    "cert-fingerprints",
    "domain",
    "timeout",
    "server-layout",
    "timezone",
    "enable-touch",
    "console",
    "client-name",
    "width",
    "height",
    "dpi",
    "resize-method",
    "normalize-clipboard",
    "console-audio",
    "disable-audio",
    "enable-audio-input",
    "enable-wallpaper",
    "enable-theming",
    "enable-font-smoothing",
    "enable-full-window-drag",
    "enable-desktop-composition",
    "enable-menu-animations",
    "disable-bitmap-caching",
    "disable-offscreen-caching",
    "disable-glyph-caching",
    "disable-gfx",
];

const VNC: &[&str] = &[
    "disable-server-input",
    "disable-display-resize",
    "swap-red-blue",
    "cursor",
    "compress-level",
    "quality-level",
    "encodings",
    "clipboard-encoding",
];

/// WoL parameters a note may tune; proxdesk sets `wol-send-packet` and `wol-mac-addr` itself, and a
/// broadcast address would send packets to another network.
const WOL: &[&str] = &["wol-udp-port", "wol-wait-time"];

/// Splits a `name=value,…` list at the first `=` of each item; items without `=` are ignored.
fn items(list: &str) -> impl Iterator<Item = (String, String)> + '_ {
    list.split(',').filter_map(|item| {
        let (name, value) = item.split_once('=')?;
        let name = name.trim();
        (!name.is_empty()).then(|| (name.to_ascii_lowercase(), value.trim().to_owned()))
    })
}

fn split(list: &str, allowed: impl Fn(&str) -> bool) -> (BTreeMap<String, String>, Vec<String>) {
    let mut kept = BTreeMap::new();
    let mut refused = Vec::new();
    for (name, value) in items(list) {
        if allowed(&name) {
            kept.insert(name, value);
        } else if !refused.contains(&name) {
            refused.push(name);
        }
    }
    (kept, refused)
}

/// The allowed parameters of a `<proto>_settings` list, and the names refused.
pub fn filter_settings(protocol: Protocol, list: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let specific: &[&str] = match protocol {
        Protocol::Rdp => RDP,
        Protocol::Vnc => VNC,
        Protocol::Ssh => &[],
    };
    split(list, |n| COMMON.contains(&n) || specific.contains(&n))
}

/// The allowed parameters of a `wol_settings` list, and the names refused.
pub fn filter_wol(list: &str) -> (BTreeMap<String, String>, Vec<String>) {
    split(list, |n| WOL.contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_settings_pass_and_redirections_are_refused() {
        let (kept, refused) = filter_settings(
            Protocol::Rdp,
            "hostname=evil.example,enable-drive=true,drive-path=/x,color-depth=16, security = nla ,junk",
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept["security"], "nla");
        assert_eq!(refused, ["hostname", "enable-drive", "drive-path"]);
        let (kept, refused) = filter_settings(Protocol::Vnc, "read-only=true,a=b=c,sftp-root-directory=/");
        assert_eq!(kept["read-only"], "true");
        assert_eq!(refused, ["a", "sftp-root-directory"]);
        let (_, refused) = filter_wol("wol-broadcast-addr=10.0.0.255,wol-wait-time=30");
        assert_eq!(refused, ["wol-broadcast-addr"]);
    }

    #[test]
    fn notes_cannot_switch_off_the_rdp_checks() {
        let (kept, refused) =
            filter_settings(Protocol::Rdp, "ignore-cert=true,disable-auth=true,security=nla,cert-tofu=true");
        assert_eq!(refused, ["ignore-cert", "disable-auth"]);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["cert-tofu", "security"]);
    }
}
