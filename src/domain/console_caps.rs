//! Per-user caps on console sessions: each open session holds a `vncproxy`/`termproxy` process on a
//! PVE node, so one person may hold only so many at once, and may ask for only so many console URLs
//! a minute.

/// The caps, as configured (`console_max_sessions_per_user`, `console_max_urls_per_minute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleCaps {
    pub sessions_per_user: u32,
    pub urls_per_minute: u32,
}

/// Defaults and bounds of the two settings.
pub const DEFAULT_SESSIONS_PER_USER: u32 = 4;
pub const SESSIONS_PER_USER_RANGE: std::ops::RangeInclusive<u32> = 1..=100;
pub const DEFAULT_URLS_PER_MINUTE: u32 = 10;
pub const URLS_PER_MINUTE_RANGE: std::ops::RangeInclusive<u32> = 1..=1000;

impl Default for ConsoleCaps {
    fn default() -> Self {
        ConsoleCaps { sessions_per_user: DEFAULT_SESSIONS_PER_USER, urls_per_minute: DEFAULT_URLS_PER_MINUTE }
    }
}

/// Which cap a new console (or console URL) would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapReached {
    #[error("{open} console sessions are open, the most one person may have at once is {cap}: close one first")]
    Sessions { open: u64, cap: u32 },
    #[error("{cap} console URLs were issued in the last minute, the most one person may ask for: try again shortly")]
    UrlsPerMinute { cap: u32 },
}

impl CapReached {
    /// The stable name, for the audit log and the API's problem type.
    pub fn name(self) -> &'static str {
        match self {
            CapReached::Sessions { .. } => "sessions",
            CapReached::UrlsPerMinute { .. } => "urls_per_minute",
        }
    }
}

impl ConsoleCaps {
    /// Whether one more session may open beside the `open` ones the person has.
    pub fn admit_session(self, open: u64) -> Result<(), CapReached> {
        if open < u64::from(self.sessions_per_user) {
            Ok(())
        } else {
            Err(CapReached::Sessions { open, cap: self.sessions_per_user })
        }
    }

    /// Whether one more URL may be issued after `issued` in the last minute.
    pub fn admit_url(self, issued: u64) -> Result<(), CapReached> {
        if issued < u64::from(self.urls_per_minute) {
            Ok(())
        } else {
            Err(CapReached::UrlsPerMinute { cap: self.urls_per_minute })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_admits_up_to_and_not_past_it() {
        let caps = ConsoleCaps { sessions_per_user: 2, urls_per_minute: 3 };
        assert_eq!(caps.admit_session(1), Ok(()));
        assert_eq!(caps.admit_session(2), Err(CapReached::Sessions { open: 2, cap: 2 }));
        assert_eq!(caps.admit_url(2), Ok(()));
        assert_eq!(caps.admit_url(3), Err(CapReached::UrlsPerMinute { cap: 3 }));
    }
}
