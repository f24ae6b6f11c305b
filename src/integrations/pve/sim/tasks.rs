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
    spawn_phased(sim, faults, upid, None, duration, work, on_error)
}

/// [`spawn`] with a first step the worker takes as soon as it runs, before its `duration` (a clone
/// writing its target's `lock: clone` file): its log lines open the task's log; its error ends the task.
pub(crate) fn spawn_phased(
    sim: &Arc<Sim>,
    faults: &[Fault],
    upid: Upid,
    begin: Option<Work>,
    duration: Duration,
    work: Work,
    on_error: Option<Work>,
) -> String {
    let text = upid.to_string();
    {
        let mut state = sim.state.lock().expect("state");
        let key = format!("{}/{}", upid.node, upid.task_type);
        let (node, kind) = (upid.node.clone(), upid.task_type.clone());
        state.tasks.insert(text.clone(), Task { upid, state: TaskState::Running, log: vec![] });
        let running = state
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Running && t.upid.node == node && t.upid.task_type == kind)
            .count();
        let peak = state.peak_running.entry(key).or_default();
        *peak = (*peak).max(running);
    }
    if let Some(cleanup) = on_error {
        sim.stoppers.lock().expect("stoppers").insert(text.clone(), cleanup);
    }
    let hang = faults.contains(&Fault::TaskHang);
    let injected = faults.iter().find_map(|f| match f {
        Fault::TaskError(m) => Some(m.clone()),
        _ => None,
    });
    let (sim, key) = (sim.clone(), text.clone());
    tokio::spawn(async move {
        if let Some(begin) = begin {
            let mut state = sim.state.lock().expect("state");
            match begin(&mut state) {
                Ok(lines) => {
                    if let Some(t) = state.tasks.get_mut(&key) {
                        t.log = lines;
                    }
                }
                Err(e) => {
                    sim.stoppers.lock().expect("stoppers").remove(&key);
                    finish(&mut state, &key, Err(e));
                    return;
                }
            }
        }
        if hang {
            return;
        }
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
        finish(&mut state, &key, result);
    });
    text
}

/// Appends the worker's lines and the final `TASK OK` / `TASK WARNINGS: n` / `TASK ERROR: …` line.
fn finish(state: &mut State, key: &str, result: Result<Vec<String>, String>) {
    let (lines, exit) = match result {
        Ok(log) => (log, "OK".to_owned()),
        Err(e) => (vec![], e.replace('\n', " ")),
    };
    let Some(task) = state.tasks.get_mut(key) else { return };
    task.log.extend(lines);
    let warnings = task.log.iter().filter(|l| l.starts_with("WARN: ")).count();
    let last = match (&exit[..], warnings) {
        ("OK", 0) => "TASK OK".to_owned(),
        ("OK", n) => format!("TASK WARNINGS: {n}"),
        (e, _) => format!("TASK ERROR: {e}"),
    };
    let exit_status = if exit == "OK" && warnings > 0 { format!("WARNINGS: {warnings}") } else { exit };
    task.log.push(last);
    task.state = TaskState::Stopped { exit_status };
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

const LIST: params::Schema = &[
    ("start", params::Ty::Int(0, i64::MAX), false),
    ("limit", params::Ty::Int(0, i64::MAX), false),
    ("userfilter", params::Ty::Str(128), false),
    ("typefilter", params::Ty::Str(64), false),
    ("vmid", params::Ty::Vmid, false),
    ("errors", params::Ty::Bool, false),
    ("source", params::Ty::Enum(&["archive", "active", "all"]), false),
];

/// `GET /nodes/{node}/tasks` → (entries, total), newest first (pve-api.md §4.5). Without `Sys.Audit` on
/// the node only the caller's own tasks (and its tokens') are listed. `source` defaults to `archive`
/// (finished tasks only); `active` lists the running ones, whose `status` is `RUNNING`.
pub(crate) fn list(ctx: &Ctx) -> Result<(Value, usize), ApiError> {
    params::check(&ctx.params, LIST)?;
    let me = ctx.authid();
    let auditor = ctx.allowed(&format!("/nodes/{}", ctx.node), "Sys.Audit");
    let p = |key: &str| ctx.params.get(key).map(String::as_str);
    let source = p("source").unwrap_or("archive");
    let start: usize = p("start").map_or(0, |s| s.parse().expect("checked"));
    let limit: usize = p("limit").map_or(50, |s| s.parse().expect("checked"));
    let state = ctx.sim.state.lock().expect("state");
    let mut tasks: Vec<&Task> = state
        .tasks
        .values()
        .filter(|t| t.upid.node == ctx.node)
        .filter(|t| auditor || t.upid.user == me || t.upid.user.split('!').next() == Some(me.as_str()))
        .filter(|t| {
            matches!(
                (source, &t.state),
                ("active", TaskState::Running) | ("archive", TaskState::Stopped { .. }) | ("all", _)
            )
        })
        .filter(|t| p("typefilter").is_none_or(|f| t.upid.task_type == f))
        .filter(|t| p("vmid").is_none_or(|v| t.upid.id == v))
        .filter(|t| p("userfilter").is_none_or(|u| t.upid.user.to_lowercase().contains(&u.to_lowercase())))
        .filter(|t| {
            p("errors").is_none_or(|e| e == "0")
                || matches!(&t.state, TaskState::Stopped { exit_status } if exit_status != "OK")
        })
        .collect();
    tasks.sort_by_key(|t| std::cmp::Reverse((t.upid.starttime, t.upid.pid)));
    let total = tasks.len();
    let take = if limit == 0 { usize::MAX } else { limit };
    let entries = tasks
        .into_iter()
        .skip(start)
        .take(take)
        .map(|t| {
            let u = &t.upid;
            let (user, token) = match u.user.split_once('!') {
                Some((user, token)) => (user.to_owned(), Some(token.to_owned())),
                None => (u.user.clone(), None),
            };
            let mut v = serde_json::json!({
                "upid": u.as_str(), "node": u.node, "pid": u.pid, "pstart": u.pstart, "starttime": u.starttime,
                "type": u.task_type, "id": u.id, "user": user,
            });
            if let Some(token) = token {
                v["tokenid"] = serde_json::json!(token);
            }
            v["status"] = match &t.state {
                TaskState::Running => serde_json::json!("RUNNING"),
                TaskState::Stopped { exit_status } => serde_json::json!(exit_status),
            };
            v
        })
        .collect();
    Ok((Value::Array(entries), total))
}
