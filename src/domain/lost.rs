//! Why a machine is lost: the guest at its stored VMID is no longer the one proxdesk made for it.

/// Why a machine's container can no longer be reached through its node and VMID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// Another guest has the VMID now (PVE reuses the lowest free one after an out-of-band delete).
    Replaced,
    /// No guest has the VMID any more.
    Gone,
}

impl LostReason {
    pub const ALL: [LostReason; 2] = [LostReason::Replaced, LostReason::Gone];

    pub fn as_str(self) -> &'static str {
        match self {
            LostReason::Replaced => "replaced",
            LostReason::Gone => "gone",
        }
    }

    pub fn parse(s: &str) -> Option<LostReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The message key of the translated explanation; it takes `{vmid}` and `{node}`.
    pub fn message_key(self) -> &'static str {
        match self {
            LostReason::Replaced => "lost.replaced",
            LostReason::Gone => "lost.gone",
        }
    }

    /// The explanation in English, for the API, the log and the request's reason.
    pub fn describe(self, node: &str, vmid: i64) -> String {
        match self {
            LostReason::Replaced => format!(
                "CT {vmid} on {node} is no longer this machine's container: another guest has its VMID now. \
                 Nothing was done to that guest."
            ),
            LostReason::Gone => format!("CT {vmid} on {node} no longer exists: it was removed outside proxdesk."),
        }
    }
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_name_the_guest() {
        for r in LostReason::ALL {
            assert_eq!(LostReason::parse(r.as_str()), Some(r));
            assert!(r.describe("pve1", 105).contains("CT 105 on pve1"));
        }
        assert_eq!(LostReason::parse("stolen"), None);
    }
}
