//! Snapshot list entries as `GET …/snapshot` sends them (pve-qemu-day2.md §6.1).

use serde::{Deserialize, Deserializer};

/// One entry of the flat list; the pseudo-entry `current` (the guest's present state) comes last.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub name: String,
    /// Absent on roots and on `current` when no snapshot was taken or rolled back to.
    #[serde(default)]
    pub parent: Option<String>,
    /// Epoch seconds; absent on `current`.
    #[serde(default)]
    pub snaptime: Option<i64>,
    #[serde(default)]
    pub description: String,
    /// QEMU only: whether the RAM was saved (0/1).
    #[serde(default, deserialize_with = "opt_flag")]
    pub vmstate: bool,
    /// `prepare` or `delete` while an operation on it is unfinished.
    #[serde(default)]
    pub snapstate: Option<String>,
}

impl SnapshotEntry {
    /// The pseudo-entry for the present state.
    pub fn is_current(&self) -> bool {
        self.name == "current"
    }
}

/// 0/1, `"0"`/`"1"` or a boolean; absent is false.
fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::Number(n) => n.as_i64().unwrap_or(0) != 0,
        serde_json::Value::String(s) => s == "1",
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_as_pve_sends_them() {
        let list: Vec<SnapshotEntry> = serde_json::from_str(
            r#"[{"name":"base","snaptime":1733330000,"description":"","vmstate":0},
                {"name":"pre","snaptime":1733337000,"description":"x","parent":"base","vmstate":1},
                {"name":"current","digest":"9b","running":1,"description":"You are here!","parent":"pre"}]"#,
        )
        .unwrap();
        assert_eq!(list[1].parent.as_deref(), Some("base"));
        assert!(list[1].vmstate && !list[0].vmstate);
        assert!(list[2].is_current() && list[2].snaptime.is_none());
    }
}
