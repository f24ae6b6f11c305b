//! Leases: every machine may expire. Before its expiry its owner is warned twice; at expiry it is
//! stopped; after a grace period it is deleted. Which step is due at an instant, and what an owner or
//! an admin may set, are decided here from instants alone, so the sweep and its tests choose the clock.

use chrono::{DateTime, Duration, Utc};

use super::FieldError;

/// How far a lease's steps went. Ordered: a lease only ever moves forward, until an extension resets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeaseStage {
    /// Nothing done yet.
    Active,
    /// The first warning was given (e.g. 7 days before).
    WarnedFirst,
    /// The second warning was given (e.g. 1 day before).
    WarnedSecond,
    /// Expired: the machine was stopped. It can still be extended during the grace period.
    Stopped,
    /// The grace period ended: the machine was handed to its deletion.
    Reclaimed,
}

/// One step a sweep takes for a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseStep {
    WarnFirst,
    WarnSecond,
    Stop,
    Delete,
}

/// When the steps fall, relative to the expiry (`PROXDESK_LEASE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// The first warning this long before the expiry.
    pub first_warning: Duration,
    /// The second warning this long before the expiry (shorter than the first).
    pub second_warning: Duration,
    /// Deletion this long after the expiry.
    pub grace: Duration,
}

impl LeaseStage {
    pub const ALL: [LeaseStage; 5] = [
        LeaseStage::Active,
        LeaseStage::WarnedFirst,
        LeaseStage::WarnedSecond,
        LeaseStage::Stopped,
        LeaseStage::Reclaimed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeaseStage::Active => "active",
            LeaseStage::WarnedFirst => "warned_first",
            LeaseStage::WarnedSecond => "warned_second",
            LeaseStage::Stopped => "stopped",
            LeaseStage::Reclaimed => "reclaimed",
        }
    }

    pub fn parse(s: &str) -> Option<LeaseStage> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The stage a lease ending at `expires_at` should have reached at `now`.
    pub fn due(expires_at: DateTime<Utc>, now: DateTime<Utc>, t: &LeaseTiming) -> LeaseStage {
        if now >= expires_at + t.grace {
            LeaseStage::Reclaimed
        } else if now >= expires_at {
            LeaseStage::Stopped
        } else if now >= expires_at - t.second_warning {
            LeaseStage::WarnedSecond
        } else if now >= expires_at - t.first_warning {
            LeaseStage::WarnedFirst
        } else {
            LeaseStage::Active
        }
    }

    /// Whether the owner has been warned (and not yet reached expiry).
    pub fn warned(self) -> bool {
        matches!(self, LeaseStage::WarnedFirst | LeaseStage::WarnedSecond)
    }
}

impl LeaseStep {
    /// The stage the step leads to.
    pub fn stage(self) -> LeaseStage {
        match self {
            LeaseStep::WarnFirst => LeaseStage::WarnedFirst,
            LeaseStep::WarnSecond => LeaseStage::WarnedSecond,
            LeaseStep::Stop => LeaseStage::Stopped,
            LeaseStep::Delete => LeaseStage::Reclaimed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LeaseStep::WarnFirst => "warn_first",
            LeaseStep::WarnSecond => "warn_second",
            LeaseStep::Stop => "stop",
            LeaseStep::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<LeaseStep> {
        [LeaseStep::WarnFirst, LeaseStep::WarnSecond, LeaseStep::Stop, LeaseStep::Delete]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// The one step a sweep at `now` takes for a lease at `stage`, if any. Never backwards; a warning whose
/// time has passed is skipped for the later one; a machine is always stopped before it is deleted, so a
/// lease found past its grace period is stopped by this sweep and deleted by the next.
pub fn next_step(
    stage: LeaseStage,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    t: &LeaseTiming,
) -> Option<LeaseStep> {
    let due = LeaseStage::due(expires_at, now, t);
    if due <= stage {
        return None;
    }
    match due {
        LeaseStage::Active => None,
        LeaseStage::WarnedFirst => Some(LeaseStep::WarnFirst),
        LeaseStage::WarnedSecond => Some(LeaseStep::WarnSecond),
        LeaseStage::Stopped => Some(LeaseStep::Stop),
        LeaseStage::Reclaimed if stage < LeaseStage::Stopped => Some(LeaseStep::Stop),
        LeaseStage::Reclaimed => Some(LeaseStep::Delete),
    }
}

/// A catalog entry's lease rules, its own or the configured defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasePolicy {
    /// Lease of a new machine, in days.
    pub default_days: u32,
    /// Longest lease an owner may set, in days from now.
    pub max_days: u32,
}

/// The longest lease even an admin may set by days (ten years): beyond it, "no expiry" says it.
pub const LEASE_DAYS_LIMIT: u32 = 3650;

/// What an owner or admin asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseChange {
    /// The lease ends this many days from now.
    Days(u32),
    /// The machine never expires (admins only).
    NoExpiry,
}

/// Why a lease change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseRefusal {
    /// Outside 1 day and the policy's maximum (admins: the absolute limit).
    #[error("a lease of 1 to {max} days")]
    Days { max: u32 },
    /// Only admins may lift the expiry.
    #[error("only an admin may set no expiry")]
    NoExpiryAdminOnly,
}

impl From<LeaseRefusal> for FieldError {
    fn from(r: LeaseRefusal) -> FieldError {
        match r {
            LeaseRefusal::Days { max } => FieldError::new("days", "error.lease_days").with("max", max),
            LeaseRefusal::NoExpiryAdminOnly => FieldError::new("days", "error.lease_no_expiry"),
        }
    }
}

/// The new expiry for `change` asked at `now`: an owner within the policy's maximum, an admin up to
/// [`LEASE_DAYS_LIMIT`] or no expiry at all.
pub fn new_expiry(
    change: LeaseChange,
    policy: &LeasePolicy,
    now: DateTime<Utc>,
    admin: bool,
) -> Result<Option<DateTime<Utc>>, LeaseRefusal> {
    match change {
        LeaseChange::NoExpiry if admin => Ok(None),
        LeaseChange::NoExpiry => Err(LeaseRefusal::NoExpiryAdminOnly),
        LeaseChange::Days(days) => {
            let max = if admin { LEASE_DAYS_LIMIT } else { policy.max_days.min(LEASE_DAYS_LIMIT) };
            if !(1..=max).contains(&days) {
                return Err(LeaseRefusal::Days { max });
            }
            Ok(Some(now + Duration::days(i64::from(days))))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn timing() -> LeaseTiming {
        LeaseTiming { first_warning: Duration::days(7), second_warning: Duration::days(1), grace: Duration::days(7) }
    }

    #[test]
    fn each_step_falls_at_its_instant_and_only_once() {
        let exp = Utc.with_ymd_and_hms(2026, 12, 31, 12, 0, 0).unwrap();
        let t = timing();
        use LeaseStage as S;
        use LeaseStep as P;
        let table: &[(Duration, S, Option<P>)] = &[
            (Duration::days(-8), S::Active, None),
            (Duration::days(-7), S::Active, Some(P::WarnFirst)),
            (Duration::days(-3), S::WarnedFirst, None),
            (Duration::hours(-24), S::WarnedFirst, Some(P::WarnSecond)),
            (Duration::hours(-1), S::WarnedSecond, None),
            (Duration::zero(), S::WarnedSecond, Some(P::Stop)),
            (Duration::days(3), S::Stopped, None),
            (Duration::days(7), S::Stopped, Some(P::Delete)),
            (Duration::days(30), S::Reclaimed, None),
            // A late sweep skips the warning whose time has passed, and stops before it deletes.
            (Duration::hours(-2), S::Active, Some(P::WarnSecond)),
            (Duration::days(1), S::Active, Some(P::Stop)),
            (Duration::days(8), S::WarnedFirst, Some(P::Stop)),
            // Never backwards (a lease shortened or a clock behind).
            (Duration::days(-30), S::Stopped, None),
        ];
        for (offset, stage, step) in table {
            assert_eq!(next_step(*stage, exp, exp + *offset, &t), *step, "{stage:?} at expiry{offset:+}");
        }
    }

    #[test]
    fn owners_stay_within_the_policy_and_admins_go_beyond_it() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 0, 0, 0).unwrap();
        let p = LeasePolicy { default_days: 30, max_days: 90 };
        assert_eq!(new_expiry(LeaseChange::Days(90), &p, now, false), Ok(Some(now + Duration::days(90))));
        assert_eq!(new_expiry(LeaseChange::Days(91), &p, now, false), Err(LeaseRefusal::Days { max: 90 }));
        assert_eq!(new_expiry(LeaseChange::Days(0), &p, now, false), Err(LeaseRefusal::Days { max: 90 }));
        assert_eq!(new_expiry(LeaseChange::NoExpiry, &p, now, false), Err(LeaseRefusal::NoExpiryAdminOnly));
        assert_eq!(new_expiry(LeaseChange::Days(400), &p, now, true), Ok(Some(now + Duration::days(400))));
        assert_eq!(new_expiry(LeaseChange::NoExpiry, &p, now, true), Ok(None));
        assert!(new_expiry(LeaseChange::Days(LEASE_DAYS_LIMIT + 1), &p, now, true).is_err());
    }

    #[test]
    fn stages_and_steps_round_trip_their_names() {
        for s in LeaseStage::ALL {
            assert_eq!(LeaseStage::parse(s.as_str()), Some(s));
        }
        for p in [LeaseStep::WarnFirst, LeaseStep::WarnSecond, LeaseStep::Stop, LeaseStep::Delete] {
            assert_eq!(LeaseStep::parse(p.as_str()), Some(p));
        }
    }
}
