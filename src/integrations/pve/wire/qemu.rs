//! The QEMU write side: create, clone, config with cloud-init keys (pve-qemu-day2.md §1–§2), and the
//! options of power and delete calls shared with containers.

use serde::Serialize;

use super::bool01;

/// `POST /nodes/{node}/qemu` (pve-qemu-day2.md §1.2). New disks are `<storage>:<GiB>` (a bare number of
/// GiB, no unit: `local-lvm:32`), the installer is `<volid>,media=cdrom`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QemuCreateRequest {
    pub vmid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    /// MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ostype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scsihw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scsi0: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ide2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net0: Option<String>,
    /// `order=scsi0;ide2;net0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// `1` opens the guest agent's channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bool01")]
    pub start: Option<bool>,
}

/// `POST /nodes/{node}/qemu/{vmid}/clone` (pve-qemu-day2.md §2.1). `full` defaults to linked for
/// templates; `storage` and `format` only go with full clones.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QemuCloneRequest {
    pub newid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bool01")]
    pub full: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// `PUT /nodes/{node}/qemu/{vmid}/config` (synchronous; pve-api.md §7, pve-qemu-day2.md §2.2–§3.2).
/// Cloud-init keys land at once even on a running VM; `cores`/`memory` of a running VM stay pending.
/// Unset fields are not sent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QemuConfigUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    /// MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net0: Option<String>,
    /// `none,media=cdrom` empties the CD drive; `<volid>,media=cdrom` inserts an ISO.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ide2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciuser: Option<String>,
    /// Sent in clear; PVE stores a `$5$` hash and shows `**********`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipassword: Option<String>,
    /// Already percent-encoded by [`encode_sshkeys`]; the form layer adds its own encoding on top.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sshkeys: Option<String>,
    /// `ip=dhcp` or `ip=192.0.2.10/24,gw=192.0.2.1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipconfig0: Option<String>,
    /// Space-separated: PVE's generator splits on whitespace only (pve-qemu-day2.md §2.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nameserver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searchdomain: Option<String>,
    /// The Notes; `""` removes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bool01")]
    pub onboot: Option<bool>,
    /// Comma-separated keys to remove.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<String>,
    /// Refuse the change if the config changed since this digest was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// `POST …/status/{cmd}`. `Reset` exists for QEMU only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerCommand {
    Start,
    Shutdown,
    Stop,
    Reboot,
    Reset,
}

impl PowerCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerCommand::Start => "start",
            PowerCommand::Shutdown => "shutdown",
            PowerCommand::Stop => "stop",
            PowerCommand::Reboot => "reboot",
            PowerCommand::Reset => "reset",
        }
    }
}

/// Query options of `DELETE /nodes/{node}/{lxc|qemu}/{vmid}` (pve-qemu-day2.md §5).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteOptions {
    /// Also remove the guest from backup and replication jobs and HA.
    pub purge: bool,
    /// Also delete volumes named for this VMID that the config does not reference.
    pub destroy_unreferenced_disks: bool,
}

/// `sshkeys` as PVE wants it before the form layer: the newline-joined keys percent-encoded like
/// JavaScript's `encodeURIComponent` (space `%20`, newline `%0A`; `/ + = @ :` encoded). PVE checks the
/// decoded form value against `^[-%a-zA-Z0-9_.!~*'()]*$`, decodes once more and runs `ssh-keygen -l`
/// per line; anything else fails (pve-qemu-day2.md §2.4).
pub fn encode_sshkeys<S: AsRef<str>>(keys: &[S]) -> String {
    let joined = keys.iter().map(|k| k.as_ref().trim()).filter(|k| !k.is_empty()).collect::<Vec<_>>().join("\n");
    let mut out = String::with_capacity(joined.len() * 3 / 2);
    for byte in joined.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The keys in an `sshkeys` value read back from a config (stored still encoded), blank lines dropped.
pub fn decode_sshkeys(encoded: &str) -> Vec<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3q+/Ab= alice@lab";

    #[test]
    fn keys_are_encoded_like_encode_uri_component_and_decode_back() {
        let encoded = encode_sshkeys(&[KEY, "ssh-rsa AAAAB3 bob"]);
        assert_eq!(
            encoded,
            "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIG3q%2B%2FAb%3D%20alice%40lab%0Assh-rsa%20AAAAB3%20bob"
        );
        // What PVE's schema accepts after the form layer's decoding.
        assert!(encoded.chars().all(|c| c.is_ascii_alphanumeric() || "-%_.!~*'()".contains(c)));
        assert_eq!(decode_sshkeys(&encoded), vec![KEY.to_owned(), "ssh-rsa AAAAB3 bob".to_owned()]);
    }

    #[test]
    fn the_form_layer_adds_its_own_encoding_on_top() {
        let update = QemuConfigUpdate { sshkeys: Some(encode_sshkeys(&[KEY])), ..Default::default() };
        let form = serde_urlencoded::to_string(&update).unwrap();
        assert!(form.starts_with("sshkeys=ssh-ed25519%2520AAAA"), "{form}");
    }
}
