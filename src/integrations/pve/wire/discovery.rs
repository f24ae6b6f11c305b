//! What the admin picks from when defining a catalog entry: ISO images in a storage and the bridges of
//! a node (pve-qemu-day2.md §7).

use serde::Deserialize;

use super::lenient_u64;

/// One item of `GET /nodes/{node}/storage/{storage}/content?content=iso`.
#[derive(Debug, Clone, Deserialize)]
pub struct StorageContentItem {
    /// `local:iso/debian-12.iso`.
    pub volid: String,
    pub content: String,
    #[serde(default)]
    pub format: Option<String>,
    /// Bytes; newer versions may send `approximate-size` instead.
    #[serde(default, deserialize_with = "lenient_opt")]
    pub size: Option<u64>,
    #[serde(default, rename = "approximate-size", deserialize_with = "lenient_opt")]
    pub approximate_size: Option<u64>,
}

impl StorageContentItem {
    /// The size PVE gave, exact or approximate.
    pub fn bytes(&self) -> Option<u64> {
        self.size.or(self.approximate_size)
    }

    /// The file name after `iso/`.
    pub fn file_name(&self) -> &str {
        self.volid.rsplit('/').next().unwrap_or(&self.volid)
    }
}

fn lenient_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "lenient_u64")] u64);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

/// One entry of `GET /nodes/{node}/network`. `active` is a number for bridges and the string `"1"` for
/// SDN vnets; both read as `true`.
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkInterface {
    pub iface: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "flag")]
    pub active: bool,
    #[serde(default)]
    pub cidr: Option<String>,
    #[serde(default)]
    pub comments: Option<String>,
}

fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64() == Some(1),
        Some(serde_json::Value::String(s)) => s == "1",
        Some(serde_json::Value::Bool(b)) => b,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_and_vnets_both_read_active() {
        let list: Vec<NetworkInterface> = serde_json::from_str(
            r#"[{"iface":"vmbr0","type":"bridge","active":1,"cidr":"192.0.2.10/24"},
                {"iface":"vnet10","type":"vnet","active":"1"},{"iface":"vmbr9","type":"bridge"}]"#,
        )
        .unwrap();
        assert_eq!(list.iter().map(|n| n.active).collect::<Vec<_>>(), [true, true, false]);
    }

    #[test]
    fn iso_items_give_a_size_exact_or_approximate() {
        let items: Vec<StorageContentItem> = serde_json::from_str(
            r#"[{"volid":"local:iso/a.iso","content":"iso","format":"iso","size":661651456},
                {"volid":"local:iso/b.iso","content":"iso","approximate-size":"1024"}]"#,
        )
        .unwrap();
        assert_eq!(items[0].bytes(), Some(661_651_456));
        assert_eq!(items[1].bytes(), Some(1024));
        assert_eq!(items[0].file_name(), "a.iso");
    }
}
