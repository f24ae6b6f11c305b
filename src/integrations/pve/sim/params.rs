//! Parameter checking with PVE's texts (pve-api.md §1, §3.1).

use std::collections::BTreeMap;

use super::reply::ApiError;

/// The request's parameters after merging body and query (query wins), `_dc` dropped.
pub(crate) type Params = BTreeMap<String, String>;

/// A parameter's type in a schema.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    Int(i64, i64),
    Bool,
    Str(usize),
    Vmid,
    DnsName,
    StorageId,
    Tags,
    Net,
    Size,
    Enum(&'static [&'static str]),
    /// A QEMU drive property string (`scsi0`, `ide2`…).
    Drive,
    /// A QEMU `netN`.
    QemuNet,
    /// A cloud-init `ipconfigN`.
    Ipconfig,
    /// JSONSchema's `urlencoded` format (`sshkeys`).
    Urlencoded,
    /// QEMU `boot`.
    Boot,
    /// QEMU `memory`: `[current=]<MiB>`, at least 16.
    Memory,
}

/// `(name, type, required)`.
pub(crate) type Schema = &'static [(&'static str, Ty, bool)];

const NOT_IN_SCHEMA: &str = "property is not defined in schema and the schema does not allow additional properties";

fn dns_name(v: &str) -> bool {
    v.len() <= 255
        && v.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

fn check_value(key: &str, ty: Ty, v: &str) -> Result<(), String> {
    let int = |v: &str| -> Result<i64, String> {
        let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("type check ('integer') failed - got '{v}'"));
        }
        v.parse().map_err(|_| format!("type check ('integer') failed - got '{v}'"))
    };
    match ty {
        Ty::Int(min, max) => {
            let n = int(v)?;
            if n < min {
                return Err(format!("value must have a minimum value of {min}"));
            }
            if n > max {
                return Err(format!("value must have a maximum value of {max}"));
            }
        }
        Ty::Bool if v != "0" && v != "1" => return Err(format!("type check ('boolean') failed - got '{v}'")),
        Ty::Bool => {}
        Ty::Str(max) if v.chars().count() > max => return Err(format!("value may only be {max} characters long")),
        Ty::Str(_) => {}
        Ty::Vmid => {
            let n = int(v)?;
            if !(100..=999_999_999).contains(&n) {
                return Err("invalid format - value does not look like a valid VM ID\n".into());
            }
        }
        Ty::DnsName if !dns_name(v) => {
            return Err("invalid format - value does not look like a valid DNS name\n".into());
        }
        Ty::DnsName => {}
        Ty::StorageId => {
            let ok = v.len() >= 2
                && v.starts_with(|c: char| c.is_ascii_alphabetic())
                && v.ends_with(|c: char| c.is_ascii_alphanumeric())
                && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err("invalid format - storage ID '".to_owned() + v + "' contains illegal characters\n");
            }
        }
        Ty::Tags => {
            let ok = v.split([',', ';', ' ']).filter(|t| !t.is_empty()).all(|t| {
                t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    && t.chars().all(|c| c.is_ascii_alphanumeric() || "_-+.".contains(c))
            });
            if !ok {
                return Err("invalid format - invalid characters in tag\n".into());
            }
        }
        Ty::Net => check_net(v)?,
        Ty::Size => {
            let body = v.strip_prefix('+').unwrap_or(v);
            let num = body.strip_suffix(['K', 'M', 'G', 'T']).unwrap_or(body);
            let ok = !num.is_empty()
                && num.split_once('.').map_or(num.bytes().all(|c| c.is_ascii_digit()), |(a, b)| {
                    !a.is_empty() && !b.is_empty() && (a.to_owned() + b).bytes().all(|c| c.is_ascii_digit())
                });
            if !ok {
                return Err("value does not match the regex pattern".into());
            }
        }
        Ty::Enum(values) if !values.contains(&v) => {
            return Err(format!("value '{v}' does not have a value in the enumeration '{}'", values.join(", ")));
        }
        Ty::Enum(_) => {}
        Ty::Drive => {
            super::drive::Drive::parse(key, v)?;
        }
        Ty::QemuNet => {
            super::drive::Nic::parse(key, v)?;
        }
        Ty::Ipconfig => super::cloudinit::check_ipconfig(key, v)?,
        Ty::Urlencoded => super::cloudinit::check_urlencoded(v)?,
        Ty::Boot => {
            super::drive::parse_boot(v)?;
        }
        Ty::Memory => {
            let current = v.strip_prefix("current=").unwrap_or(v);
            let path = format!("{key}.current");
            match int(current) {
                Err(_) => {
                    return Err(format!(
                        "invalid format - format error\n{path}: type check ('integer') failed - got '{current}'\n"
                    ));
                }
                Ok(n) if n < 16 => {
                    return Err(format!(
                        "invalid format - format error\n{path}: value must have a minimum value of 16\n"
                    ));
                }
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

const NET_KEYS: &[&str] = &[
    "name",
    "bridge",
    "hwaddr",
    "ip",
    "gw",
    "ip6",
    "gw6",
    "firewall",
    "tag",
    "trunks",
    "rate",
    "mtu",
    "link_down",
    "host-managed",
    "type",
];

fn check_net(v: &str) -> Result<(), String> {
    let mut has_name = false;
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (k, _) = part.split_once('=').unwrap_or((part, ""));
        if !NET_KEYS.contains(&k) {
            return Err(format!("invalid format - invalid key in comma-separated list property: {k}\n"));
        }
        has_name |= k == "name";
    }
    if !has_name {
        return Err("invalid format - format error\nnet0.name: property is missing and it is not optional\n".into());
    }
    Ok(())
}

/// Checks `params` against `schema`: unknown keys, missing required ones, types and formats.
pub(crate) fn check(params: &Params, schema: Schema) -> Result<(), ApiError> {
    let mut errors = BTreeMap::new();
    for (k, v) in params {
        match schema.iter().find(|(name, _, _)| name == k) {
            None => {
                errors.insert(k.clone(), NOT_IN_SCHEMA.to_owned());
            }
            Some((_, ty, _)) => {
                if let Err(e) = check_value(k, *ty, v) {
                    errors.insert(k.clone(), e);
                }
            }
        }
    }
    for (name, _, required) in schema {
        if *required && !params.contains_key(*name) {
            errors.insert(name.to_string(), "property is missing and it is not optional".into());
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::params(errors)) }
}

/// [`check`] for schemas whose keys follow patterns (`scsi0`…`scsi30`, `net0`…): `lookup` gives a
/// key's type, `None` for keys outside the schema.
pub(crate) fn check_by(
    params: &Params,
    lookup: impl Fn(&str) -> Option<Ty>,
    required: &[&str],
) -> Result<(), ApiError> {
    let mut errors = BTreeMap::new();
    for (k, v) in params {
        match lookup(k) {
            None => {
                errors.insert(k.clone(), NOT_IN_SCHEMA.to_owned());
            }
            Some(ty) => {
                if let Err(e) = check_value(k, ty, v) {
                    errors.insert(k.clone(), e);
                }
            }
        }
    }
    for name in required.iter().filter(|n| !params.contains_key(**n)) {
        errors.insert(name.to_string(), "property is missing and it is not optional".into());
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::params(errors)) }
}

/// Normalises a `net0` value like PVE: `type=veth`, a generated `hwaddr`, `name` first then sorted.
pub(crate) fn normalise_net(v: &str, mac: impl FnOnce() -> String) -> String {
    let mut kv: BTreeMap<String, String> = v
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    kv.insert("type".into(), "veth".into());
    kv.entry("hwaddr".into()).or_insert_with(mac);
    let name = kv.remove("name").unwrap_or_default();
    std::iter::once(format!("name={name}"))
        .chain(kv.into_iter().map(|(k, v)| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// `Web,portal web` → `portal;web` (pve-api.md §9).
pub(crate) fn normalise_tags(v: &str) -> String {
    let mut tags: Vec<String> = v.split([',', ';', ' ']).filter(|t| !t.is_empty()).map(str::to_lowercase).collect();
    tags.sort();
    tags.dedup();
    tags.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net0_is_normalised_like_pve() {
        let n = normalise_net("name=eth0,ip=10.0.0.5/24,bridge=vmbr0,gw=10.0.0.1,firewall=1", || {
            "BC:24:11:2A:3B:4C".into()
        });
        assert_eq!(
            n,
            "name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,hwaddr=BC:24:11:2A:3B:4C,ip=10.0.0.5/24,type=veth"
        );
        assert_eq!(normalise_tags("Web,portal web"), "portal;web");
    }

    #[test]
    fn booleans_in_forms_are_only_0_and_1() {
        let schema: Schema = &[("onboot", Ty::Bool, false)];
        let p = Params::from([("onboot".to_owned(), "true".to_owned())]);
        let e = check(&p, schema).unwrap_err();
        assert_eq!(e.errors.unwrap()["onboot"], "type check ('boolean') failed - got 'true'");
    }
}
