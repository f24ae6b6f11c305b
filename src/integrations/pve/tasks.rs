//! Waiting for tasks: poll `status` with backoff until `stopped` or the deadline (pve-api.md §4).

use std::time::{Duration, Instant};

use super::client::Client;
use super::error::PveError;
use super::upid::Upid;

/// How long and how often to poll a task.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    /// Give up (with [`PveError::TaskRunning`]) after this long.
    pub deadline: Duration,
    /// First poll interval; doubles up to `max_interval`.
    pub initial_interval: Duration,
    pub max_interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(600),
            initial_interval: Duration::from_millis(200),
            max_interval: Duration::from_secs(2),
        }
    }
}

impl WaitOptions {
    /// Defaults with another deadline.
    pub fn with_deadline(deadline: Duration) -> Self {
        Self { deadline, ..Self::default() }
    }
}

/// A task that ended successfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    /// `OK` or `WARNINGS: n`.
    pub exit_status: String,
    /// The number of warnings (0 for `OK`): not a failure, but worth surfacing.
    pub warnings: u32,
}

/// `OK` and `WARNINGS: n` are success (pve-api.md §4.2).
fn success(exit: &str) -> Option<u32> {
    if exit == "OK" {
        return Some(0);
    }
    // PVE writes the count as plain digits; a count beyond u32 is still a success, not a failure.
    let n = exit.strip_prefix("WARNINGS: ")?.trim();
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.parse().unwrap_or(u32::MAX))
}

impl Client {
    /// Waits until the task stops; an error exit becomes [`PveError::TaskFailed`] with the last log lines.
    pub async fn wait_task(&self, upid: &Upid, options: WaitOptions) -> Result<TaskOutcome, PveError> {
        let started = Instant::now();
        let mut interval = options.initial_interval;
        loop {
            let status = self.task_status(upid).await?;
            if status.status == "stopped" {
                let exit = status.exitstatus.unwrap_or_else(|| "unexpected status".into());
                if let Some(warnings) = success(&exit) {
                    if warnings > 0 {
                        tracing::warn!(upid = %upid, warnings, "PVE task finished with warnings");
                    }
                    return Ok(TaskOutcome { exit_status: exit, warnings });
                }
                let log = self.task_log(upid, 0, 0).await.unwrap_or_default();
                let tail = log.iter().rev().take(10).rev().map(|l| l.t.clone()).collect();
                return Err(PveError::TaskFailed { upid: upid.to_string(), exit_status: exit, log_tail: tail });
            }
            let elapsed = started.elapsed();
            if elapsed >= options.deadline {
                return Err(PveError::TaskRunning { upid: upid.to_string(), waited: options.deadline });
            }
            tokio::time::sleep(interval.min(options.deadline - elapsed)).await;
            interval = (interval * 2).min(options.max_interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::success;

    #[test]
    fn warnings_are_success_and_errors_are_not() {
        assert_eq!(success("OK"), Some(0));
        assert_eq!(success("WARNINGS: 3"), Some(3));
        assert_eq!(success("clone failed: boom"), None);
        assert_eq!(success("unexpected status"), None);
    }

    use proptest::prelude::*;

    proptest! {
        /// `WARNINGS: n` as PVE writes it is a success with n warnings (capped), any other text a
        /// failure; nothing panics.
        #[test]
        fn fuzz_exit_status_round_trips(n in any::<u64>(), text in "\\PC{0,20}") {
            prop_assert_eq!(success(&format!("WARNINGS: {n}")), Some(u32::try_from(n).unwrap_or(u32::MAX)));
            if let Some(w) = success(&text) {
                prop_assert!(text == "OK" || text.starts_with("WARNINGS: "), "{:?} {}", text, w);
            }
            prop_assert_eq!(success(&format!("WARNINGS: +{n}")), None);
            prop_assert_eq!(success(&format!("{text}failed")), None);
        }
    }
}
