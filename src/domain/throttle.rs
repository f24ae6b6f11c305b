//! How failed sign-ins slow the next attempt down. Nothing is ever locked: past a free allowance each
//! further attempt waits a delay that doubles up to a cap, and the count is forgotten after a quiet spell.
//!
//! Three scopes are counted on every password check (local, PVE realm, directory, second factor, the
//! current password of a password change):
//! - the pair (account, address): one guesser at one address against one account;
//! - the account across addresses: a guesser spread over many addresses, kept small so that it can never
//!   keep the real person out for more than a few seconds;
//! - the address across accounts: one address spraying many account names.

/// The numbers of one scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures that cost nothing: typos, a forgotten caps lock.
    pub free: i64,
    /// The delay after the first failure past `free`, in milliseconds; it doubles with each further one.
    pub first_delay_ms: i64,
    /// The longest delay, in milliseconds.
    pub max_delay_ms: i64,
    /// With no attempt for this long the count starts over (longer than `max_delay_ms`, so a guesser
    /// waiting out the longest delay is still counted).
    pub forget_after_ms: i64,
}

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;

/// One account from one address: five free tries, then 1 s, 2 s, 4 s … 5 min between attempts. A person
/// mistyping waits a second or two; a guesser is down to 12 guesses an hour after ~15 minutes.
pub const PAIR: Policy =
    Policy { free: 5, first_delay_ms: SECOND, max_delay_ms: 5 * MINUTE, forget_after_ms: 60 * MINUTE };

/// One account from anywhere: only failures within each address's free allowance count here (an address
/// already slowed by its pair adds nothing), and the delay stops at 4 s. A distributed guesser gets at most
/// one guess per 4 s (~21,600 a day, against argon2 and the password rules); the real person, from their
/// own address, waits 4 s at most.
pub const ACCOUNT: Policy =
    Policy { free: 10, first_delay_ms: SECOND, max_delay_ms: 4 * SECOND, forget_after_ms: 60 * MINUTE };

/// One address across accounts: twenty free failures (an office behind one NAT shares them; successes
/// give theirs back), then 1 s … 5 min, like a pair.
pub const ADDRESS: Policy =
    Policy { free: 20, first_delay_ms: SECOND, max_delay_ms: 5 * MINUTE, forget_after_ms: 60 * MINUTE };

/// After this long without an attempt a scope's row is forgotten by every policy and can go.
pub const FORGOTTEN_AFTER_MS: i64 = {
    let (a, b, c) = (PAIR.forget_after_ms, ACCOUNT.forget_after_ms, ADDRESS.forget_after_ms);
    let ab = if a > b { a } else { b };
    if ab > c { ab } else { c }
};

impl Policy {
    /// The wait before the next attempt once `failures` have been counted, in milliseconds.
    pub fn delay_after(&self, failures: i64) -> i64 {
        if failures < self.free {
            return 0;
        }
        // Past 40 doublings any first delay is over any cap.
        let doublings = (failures - self.free).min(40) as u32;
        self.first_delay_ms.saturating_mul(1i64 << doublings).min(self.max_delay_ms)
    }

    /// The counts whose delay is below the cap, with that delay: `(free, first), (free + 1, 2 × first)…`.
    /// Every count from `free` on not listed waits `max_delay_ms`; below `free` there is no delay. Lets the
    /// storage compute the delay inside its one atomic statement.
    pub fn steps(&self) -> Vec<(i64, i64)> {
        (self.free..).map(|n| (n, self.delay_after(n))).take_while(|(_, d)| *d < self.max_delay_ms).collect()
    }
}

/// Whole seconds to announce for a wait of `ms` milliseconds: rounded up, at least 1.
pub fn retry_after_secs(ms: i64) -> i64 {
    ((ms + SECOND - 1) / SECOND).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_allowance_double_and_stop_at_the_cap() {
        let d: Vec<i64> = (0..20).map(|n| PAIR.delay_after(n) / SECOND).collect();
        assert_eq!(&d[..5], [0, 0, 0, 0, 0]);
        assert_eq!(&d[5..14], [1, 2, 4, 8, 16, 32, 64, 128, 256]);
        assert!(d[14..].iter().all(|&s| s == 300), "{d:?}");
        assert_eq!(PAIR.delay_after(i64::MAX), PAIR.max_delay_ms);
    }

    #[test]
    fn the_account_wide_delay_stays_small() {
        assert!((0..1000).all(|n| ACCOUNT.delay_after(n) <= 4 * SECOND));
        assert_eq!(ACCOUNT.steps(), [(10, 1000), (11, 2000)]);
    }

    #[test]
    fn steps_agree_with_delay_after() {
        for p in [PAIR, ACCOUNT, ADDRESS] {
            assert!(p.forget_after_ms > p.max_delay_ms);
            for (n, d) in p.steps() {
                assert_eq!(p.delay_after(n), d);
            }
            let past = p.free + p.steps().len() as i64;
            assert_eq!(p.delay_after(past), p.max_delay_ms);
        }
    }

    #[test]
    fn waits_are_announced_in_whole_seconds_rounded_up() {
        assert_eq!(retry_after_secs(0), 1);
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1000), 1);
        assert_eq!(retry_after_secs(1001), 2);
    }
}
