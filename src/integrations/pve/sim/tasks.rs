//! Simulated workers: a task gets a UPID now and finishes later (or never, or with an error).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::Sim;
use super::auth::now;
use super::faults::Fault;
use super::state::{State, Task, TaskState};
use crate::integrations::pve::Upid;

/// What a worker does when its time is up: `Ok(log lines)` or `Err(error text)`.
pub(crate) type Work = Box<dyn FnOnce(&mut State) -> Result<Vec<String>, String> + Send>;

/// Registers a running task and schedules `work` after `duration`. The endpoint's task faults apply:
/// `TaskError` ends it with that error (after `on_error` cleans up), `TaskHang` never ends it.
pub(crate) fn spawn(
    sim: &Arc<Sim>,
    faults: &[Fault],
    upid: Upid,
    duration: Duration,
    work: Work,
    on_error: Option<Work>,
) -> String {
    let text = upid.to_string();
    sim.state.lock().expect("state").tasks.insert(text.clone(), Task { upid, state: TaskState::Running, log: vec![] });
    if faults.contains(&Fault::TaskHang) {
        return text;
    }
    let injected = faults.iter().find_map(|f| match f {
        Fault::TaskError(m) => Some(m.clone()),
        _ => None,
    });
    let (sim, key) = (sim.clone(), text.clone());
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        let mut state = sim.state.lock().expect("state");
        let result = match injected {
            Some(m) => {
                if let Some(cleanup) = on_error {
                    let _ = cleanup(&mut state);
                }
                Err(m)
            }
            None => work(&mut state),
        };
        let (mut log, exit) = match result {
            Ok(log) => (log, "OK".to_owned()),
            Err(e) => (vec![], e.replace('\n', " ")),
        };
        let warnings = log.iter().filter(|l| l.starts_with("WARN: ")).count();
        let last = match (&exit[..], warnings) {
            ("OK", 0) => "TASK OK".to_owned(),
            ("OK", n) => format!("TASK WARNINGS: {n}"),
            (e, _) => format!("TASK ERROR: {e}"),
        };
        let exit_status = if exit == "OK" && warnings > 0 { format!("WARNINGS: {warnings}") } else { exit };
        log.push(last);
        if let Some(task) = state.tasks.get_mut(&key) {
            task.log = log;
            task.state = TaskState::Stopped { exit_status };
        }
    });
    text
}

/// A new UPID for a task of `task_type` on `node` about `id`, started by `authid`.
pub(crate) fn new_upid(sim: &Sim, node: &str, task_type: &str, id: &str, authid: &str) -> Upid {
    let pid = {
        let mut state = sim.state.lock().expect("state");
        state.next_pid += 1;
        state.next_pid
    };
    let pstart = sim.rng.lock().expect("rng").random_range(10_000_000u64..99_999_999);
    Upid::new(node, pid, pstart, now(), task_type, id, authid)
}
