//! UPIDs: `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:` (pve-api.md §4.1).

use std::fmt;
use std::str::FromStr;

/// A parsed task id. `Display` gives back the exact text PVE issued.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Upid {
    pub node: String,
    pub pid: u32,
    pub pstart: u64,
    pub starttime: i64,
    pub task_type: String,
    pub id: String,
    pub user: String,
    raw: String,
}

/// Why a string is not a UPID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse worker upid")]
pub struct UpidParseError;

impl Upid {
    /// Builds a UPID in PVE's format: upper-case hex zero-padded to 8 digits, trailing `:`.
    pub fn new(node: &str, pid: u32, pstart: u64, starttime: i64, task_type: &str, id: &str, user: &str) -> Self {
        let raw = format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{task_type}:{id}:{user}:");
        Self {
            node: node.into(),
            pid,
            pstart,
            starttime,
            task_type: task_type.into(),
            id: id.into(),
            user: user.into(),
            raw,
        }
    }

    /// The UPID text as PVE issued it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn valid_node(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') && b[0] != b'-' && b[b.len() - 1] != b'-'
}

fn plain(s: &str) -> bool {
    !s.contains(|c: char| c.is_whitespace() || c == '/')
}

impl FromStr for Upid {
    type Err = UpidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s.strip_prefix("UPID:").and_then(|r| r.strip_suffix(':')).ok_or(UpidParseError)?;
        let parts: Vec<&str> = body.split(':').collect();
        let [node, pid, pstart, start, task_type, id, user] = parts[..] else { return Err(UpidParseError) };
        let hex = |v: &str, min: usize| {
            (v.len() >= min && v.bytes().all(|c| c.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(v, 16).ok())
                .flatten()
                .ok_or(UpidParseError)
        };
        if !valid_node(node)
            || task_type.is_empty()
            || user.is_empty()
            || ![task_type, id, user].iter().all(|p| plain(p))
        {
            return Err(UpidParseError);
        }
        Ok(Self {
            node: node.into(),
            pid: u32::try_from(hex(pid, 8)?).map_err(|_| UpidParseError)?,
            pstart: hex(pstart, 8)?,
            starttime: hex(start, 8)? as i64,
            task_type: task_type.into(),
            id: id.into(),
            user: user.into(),
            raw: s.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_reference_example_and_round_trips() {
        let text = "UPID:pve1:0003A1F2:01B4C6D8:6750A1B3:vzclone:9000:portal@pve!svc:";
        let upid: Upid = text.parse().unwrap();
        assert_eq!(upid.node, "pve1");
        assert_eq!(upid.pid, 0x3A1F2);
        assert_eq!(upid.starttime, 0x6750A1B3);
        assert_eq!(upid.task_type, "vzclone");
        assert_eq!(upid.id, "9000");
        assert_eq!(upid.user, "portal@pve!svc");
        assert_eq!(upid.to_string(), text);
        let built = Upid::new("pve1", 0x3A1F2, 0x1B4C6D8, 0x6750A1B3, "vzclone", "9000", "portal@pve!svc");
        assert_eq!(built.as_str(), text);
    }

    #[test]
    fn rejects_malformed_upids() {
        for bad in ["", "UPID:pve1:1:2:3:x:y:z:", "UPID:pve1:0003A1F2:01B4C6D8:6750A1B3:vzclone:9000:u", "nope"] {
            assert!(bad.parse::<Upid>().is_err(), "{bad}");
        }
    }
}
