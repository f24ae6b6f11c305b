//! Connection name templates (notes-syntax.md 7): plain substitution of known placeholders; unknown ones
//! stay as written, and `{password}` is never substituted.

/// The values a name template may use.
#[derive(Debug, Clone, Default)]
pub struct TemplateVars<'a> {
    /// VM name in PVE.
    pub vmname: &'a str,
    /// Login of the entry.
    pub user: &'a str,
    /// `rdp`, `vnc` or `ssh`.
    pub proto: &'a str,
    /// VM id.
    pub vmid: u32,
    /// PVE node.
    pub node: &'a str,
    /// The VM's IPv4 address, or empty.
    pub ip: &'a str,
    /// Short host name of the machine running the sync.
    pub host: &'a str,
    /// The connection's port.
    pub port: u16,
}

/// `template` with every known `{placeholder}` replaced.
pub fn render(template: &str, v: &TemplateVars<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            out.push_str(after);
            return out;
        };
        let name = &after[1..close];
        let value = match name {
            "vmname" => Some(v.vmname.to_owned()),
            "user" | "username" => Some(v.user.to_owned()),
            "proto" | "protocol" => Some(v.proto.to_owned()),
            "vmid" | "vm_id" => Some(v.vmid.to_string()),
            "node" | "vmnode" | "vm_node" => Some(v.node.to_owned()),
            "ip" | "vmip" | "vm_ip" => Some(v.ip.to_owned()),
            "hostname" | "host" => Some(v.host.to_owned()),
            "port" => Some(v.port.to_string()),
            _ => None,
        };
        match value {
            Some(val) => {
                out.push_str(&val);
                rest = &after[close + 1..];
            }
            None => {
                // Keep the brace and rescan after it, so `{{vmname}` still substitutes the inner one.
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_placeholders_substitute_and_others_stay() {
        let v = TemplateVars {
            vmname: "web01",
            user: "admin",
            proto: "rdp",
            vmid: 101,
            node: "pve1",
            ip: "10.0.0.5",
            host: "sync",
            port: 3389,
        };
        assert_eq!(render("{user}@{vmname}-{proto}", &v), "admin@web01-rdp");
        assert_eq!(render("{vm_id}/{vmnode}/{vm_ip}:{port} on {host}", &v), "101/pve1/10.0.0.5:3389 on sync");
        assert_eq!(render("{password} {x} {unclosed", &v), "{password} {x} {unclosed");
        assert_eq!(render("{{vmname}}", &v), "{web01}");
        assert_eq!(render("é{vmname}ü", &v), "éweb01ü");
    }
}
