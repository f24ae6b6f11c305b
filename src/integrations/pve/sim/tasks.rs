//! Simulated workers: a task gets a UPID now and finishes later (or never, or with an error).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use serde_json::Value;

use super::Sim;
use super::auth::now;
use super::faults::Fault;
use super::http::Ctx;
use super::params;
use super::reply::ApiError;
use super::state::{State, Task, TaskState};
use crate::integrations::pve::Upid;

/// What a worker does when its time is up: `Ok(log lines)` or `Err(error text)`.
pub(crate) type Work = Box<dyn FnOnce(&mut State) -> Result<Vec<String>, String> + Send>;

/// Registers a running task and schedules `work` after `duration`. The endpoint's task faults apply:
/// `TaskError` ends it with that error (after `on_error` cleans up), `TaskHang` never ends it. Stopping
/// the task ([`stop`]) also runs `on_error`, as the worker's own error path does on PVE.
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
    if let Some(cleanup) = on_error {
        sim.stoppers.lock().expect("stoppers").insert(text.clone(), cleanup);
    }
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
        // Stopped meanwhile: its clean-up already ran.
        if state.tasks.get(&key).is_none_or(|t| t.state != TaskState::Running) {
            return;
        }
        let on_error = sim.stoppers.lock().expect("stoppers").remove(&key);
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

/// `DELETE /nodes/{node}/tasks/{upid}`: stops a running task (pve-api.md §4.5), owner or `Sys.Modify` on
/// the node. The worker dies in its error path, so what it had created is removed and its locks are
/// released (§6.2: "On failure both locks are cleaned, the new config is deleted"); its log ends with
/// the interrupt as the error. Stopping a finished task does nothing. Answers `null`.
pub(crate) fn stop(ctx: &Ctx) -> Result<Value, ApiError> {
    let upid: Upid = ctx.upid_raw.parse().map_err(|_| ApiError::param("upid", "unable to parse worker upid"))?;
    let me = ctx.authid();
    let owner = upid.user == me || upid.user.split('!').next() == Some(me.as_str());
    if !owner {
        ctx.require(&format!("/nodes/{}", ctx.node), &["Sys.Modify"])?;
    }
    params::check(&ctx.params, &[])?;
    let key = upid.to_string();
    let mut state = ctx.sim.state.lock().expect("state");
    let task = state.tasks.get(&key).ok_or_else(|| ApiError::param("upid", "no such task"))?;
    if task.state != TaskState::Running {
        return Ok(Value::Null);
    }
    // The clone worker wraps its errors (`clone failed: …`, §6.2); others die with the bare text.
    let interrupt = "received interrupt";
    let exit_status =
        if upid.task_type.ends_with("clone") { format!("clone failed: {interrupt}") } else { interrupt.to_owned() };
    if let Some(cleanup) = ctx.sim.stoppers.lock().expect("stoppers").remove(&key) {
        let _ = cleanup(&mut state);
    }
    let task = state.tasks.get_mut(&key).expect("checked above");
    task.log.push(format!("TASK ERROR: {exit_status}"));
    task.state = TaskState::Stopped { exit_status };
    Ok(Value::Null)
}
