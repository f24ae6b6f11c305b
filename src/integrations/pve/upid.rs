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
            // A start time past i64::MAX is no epoch PVE writes; `as` would wrap it negative.
            starttime: i64::try_from(hex(start, 8)?).map_err(|_| UpidParseError)?,
            task_type: task_type.into(),
            id: id.into(),
            user: user.into(),
            raw: s.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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
    fn a_start_time_beyond_i64_is_refused_not_wrapped() {
        let text = "UPID:pve1:0003A1F2:01B4C6D8:FFFFFFFFFFFFFFFF:vzclone:9000:root@pam:";
        assert_eq!(text.parse::<Upid>(), Err(UpidParseError));
    }

    #[test]
    fn rejects_malformed_upids() {
        for bad in ["", "UPID:pve1:1:2:3:x:y:z:", "UPID:pve1:0003A1F2:01B4C6D8:6750A1B3:vzclone:9000:u", "nope"] {
            assert!(bad.parse::<Upid>().is_err(), "{bad}");
        }
    }

    fn node() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?"
    }

    /// Text shaped like a UPID: the prefix, colons and hex fields, with random pieces in between.
    fn upid_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof!["[0-9A-Fa-f]{0,18}", "[a-z0-9@!.:/ -]{0,8}", "\\PC{0,6}"];
        (prop::sample::select(vec!["UPID:", "", "upid:", "UPID::"]), prop::collection::vec(piece, 0..10), any::<bool>())
            .prop_map(|(prefix, parts, colon)| format!("{prefix}{}{}", parts.join(":"), if colon { ":" } else { "" }))
    }

    proptest! {
        #[test]
        fn fuzz_upid_parse_never_panics_and_keeps_the_text(text in prop_oneof![upid_like(), "\\PC{0,40}".prop_map(String::from)]) {
            if let Ok(upid) = text.parse::<Upid>() {
                prop_assert_eq!(upid.as_str(), text.as_str());
                prop_assert!(upid.starttime >= 0);
                prop_assert!(!upid.task_type.is_empty() && !upid.user.is_empty());
                prop_assert!(valid_node(&upid.node));
            }
        }

        /// What `Upid::new` formats (PVE's own layout) parses back to the same fields.
        #[test]
        fn fuzz_upid_round_trips(
            node in node(), pid in any::<u32>(), pstart in any::<u64>(), starttime in 0..=i64::MAX,
            task_type in "[a-z]{1,10}", id in "[a-z0-9@.-]{0,10}", user in "[a-z0-9]{1,8}@(pam|pve)(![a-z]{1,5})?",
        ) {
            let built = Upid::new(&node, pid, pstart, starttime, &task_type, &id, &user);
            let parsed: Upid = built.as_str().parse().unwrap();
            prop_assert_eq!(parsed, built);
        }

        /// A wrong node, a short or non-hex number, an overflowing one: a typed error, never a default.
        #[test]
        fn fuzz_upid_rejects_broken_fields(
            field in 0usize..5,
            bad_node in prop_oneof!["", "-[a-z0-9]{0,4}", "[a-z0-9]{1,4}-", "[a-z]{1,3}[ _./@][a-z]{1,3}"],
            bad_hex in prop_oneof!["[0-9A-F]{0,7}", "[0-9A-F]{7}[g-zG-Z +-]", "[1-9A-F][0-9A-F]{16,19}"],
        ) {
            let mut fields = ["pve1".to_owned(), "0003A1F2".into(), "01B4C6D8".into(), "6750A1B3".into()];
            match field {
                0 => fields[0] = bad_node,
                // Past i64::MAX: a start time that used to wrap negative.
                4 => fields[3] = format!("{:X}", (i64::MAX as u64) + 1 + (bad_hex.len() as u64)),
                n => fields[n] = bad_hex,
            }
            let text = format!("UPID:{}:vzclone:9000:root@pam:", fields.join(":"));
            prop_assert_eq!(text.parse::<Upid>(), Err(UpidParseError), "{}", text);
        }
    }
}
