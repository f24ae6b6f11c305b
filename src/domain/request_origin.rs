//! Where a request (and so its machine) came from.

/// How a machine came to proxdesk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestOrigin {
    /// Asked for through the form or the API, approved, then provisioned by proxdesk.
    Requested,
    /// A guest the cluster already had, which an admin handed to an owner: never provisioned.
    Adopted,
}

impl RequestOrigin {
    pub const ALL: [RequestOrigin; 2] = [RequestOrigin::Requested, RequestOrigin::Adopted];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestOrigin::Requested => "requested",
            RequestOrigin::Adopted => "adopted",
        }
    }

    pub fn parse(s: &str) -> Option<RequestOrigin> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl std::fmt::Display for RequestOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_round_trip() {
        for o in RequestOrigin::ALL {
            assert_eq!(RequestOrigin::parse(o.as_str()), Some(o));
        }
        assert_eq!(RequestOrigin::parse("imported"), None);
    }
}
