//! QEMU NICs (`netN`): `[model=]<model>[=<MAC>],bridge=…` parsed with qemu-server's schema texts and
//! written back model=MAC first, the rest sorted (pve-qemu-day2.md §1.4).

use std::collections::BTreeMap;

use super::drive::{FormatError, invalid_key};

const NET_MODELS: &[&str] = &[
    "e1000",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "virtio",
    "vmxnet3",
];
const NET_KEYS: &[&str] = &["bridge", "firewall", "link_down", "mtu", "queues", "rate", "tag", "trunks"];

/// A QEMU NIC: `model`, `macaddr` and the other keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Nic {
    pub model: String,
    pub mac: Option<String>,
    pub opts: BTreeMap<String, String>,
}

fn mac_ok(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Nic {
    /// `[model=]<model>[=<MAC>],bridge=…` (also `macaddr=`), with PVE's schema texts on failure.
    pub(crate) fn parse(key: &str, value: &str) -> Result<Nic, FormatError> {
        let (mut model, mut mac, mut opts) = (None, None, BTreeMap::new());
        for part in value.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            match k {
                "model" => model = Some(v.to_owned()),
                "macaddr" => mac = Some(v.to_owned()),
                m if NET_MODELS.contains(&m) => {
                    model = Some(m.to_owned());
                    if !v.is_empty() {
                        mac = Some(v.to_owned());
                    }
                }
                k if NET_KEYS.contains(&k) => {
                    opts.insert(k.to_owned(), v.to_owned());
                }
                k => return Err(invalid_key(k)),
            }
        }
        let Some(model) = model else {
            return Err(format!(
                "invalid format - format error\n{key}.model: property is missing and it is not optional\n"
            ));
        };
        if !NET_MODELS.contains(&model.as_str()) {
            let allowed = NET_MODELS.join(", ");
            return Err(format!(
                "invalid format - format error\n{key}.model: value '{model}' does not have a value in the enumeration '{allowed}'\n"
            ));
        }
        if let Some(m) = mac.as_deref().filter(|m| !mac_ok(m)) {
            return Err(format!(
                "invalid format - format error\n{key}.macaddr: invalid format - value does not look like a valid MAC address: {m}\n\n"
            ));
        }
        Ok(Nic { model, mac: mac.map(|m| m.to_uppercase()), opts })
    }

    /// `virtio=BC:24:11:…,bridge=vmbr0,firewall=1`: model=MAC first, the rest sorted.
    pub(crate) fn print(&self) -> String {
        let head = match &self.mac {
            Some(mac) => format!("{}={mac}", self.model),
            None => self.model.clone(),
        };
        std::iter::once(head).chain(self.opts.iter().map(|(k, v)| format!("{k}={v}"))).collect::<Vec<_>>().join(",")
    }

    /// The bridge the NIC is plugged into.
    pub(crate) fn bridge(&self) -> Option<&str> {
        self.opts.get("bridge").map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nics_put_model_and_mac_first() {
        let n = Nic::parse("net0", "virtio,firewall=1,bridge=vmbr0").unwrap();
        assert_eq!(n.mac, None);
        let n = Nic { mac: Some("BC:24:11:5E:7A:01".into()), ..n };
        assert_eq!(n.print(), "virtio=BC:24:11:5E:7A:01,bridge=vmbr0,firewall=1");
        let n = Nic::parse("net1", "model=e1000,macaddr=bc:24:11:00:00:01,bridge=vmbr1").unwrap();
        assert_eq!(n.print(), "e1000=BC:24:11:00:00:01,bridge=vmbr1");
        assert_eq!(
            Nic::parse("net0", "bridge=vmbr0").unwrap_err(),
            "invalid format - format error\nnet0.model: property is missing and it is not optional\n"
        );
        assert!(Nic::parse("net0", "virtio,name=eth0").unwrap_err().contains("invalid key"));
    }
}
