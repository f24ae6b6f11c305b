//! QEMU config endpoints (pve-qemu-day2.md §2.2–§2.6, §3.2, pve-api.md §7): `GET config` (pending
//! merged unless `current=1`, `cipassword` masked), `GET pending`, `PUT config` (synchronous `null`)
//! and `POST config` (`qmconfig` UPID, or `null` within `background_delay`).

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::cloudinit;
use super::drive::{Drive, Volume, is_drive_key};
use super::http::Ctx;
use super::inventory::random_mac;
use super::params::{self, Ty};
use super::qemu_checks;
use super::qemu_schema;
use super::qemu_update::{self, Update};
use super::reply::ApiError;
use super::shacrypt;
use super::state::{GuestKind, TaskState};
use super::tasks::{self, Work};

const MASK: &str = "**********";

/// `GET …/qemu/{vmid}/config`.
pub(crate) fn get(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Audit"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[("current", Ty::Bool, false), ("snapshot", Ty::Str(40), false)])?;
    let current = ctx.params.get("current").is_some_and(|c| c == "1");
    if let Some(snap) = ctx.params.get("snapshot") {
        if current {
            let text = "cannot use 'snapshot' parameter with 'current'";
            let errors = [("snapshot".to_owned(), text.to_owned()), ("current".to_owned(), text.to_owned())];
            return Err(ApiError::params(errors.into_iter().collect()));
        }
        ctx.sim.state.lock().expect("state").guest(&ctx.node, GuestKind::Qemu, vmid)?;
        return Err(ApiError::internal(format!("snapshot '{snap}' does not exist")));
    }
    let state = ctx.sim.state.lock().expect("state");
    let g = state.guest(&ctx.node, GuestKind::Qemu, vmid)?;
    let mut config = g.config.clone();
    if !current {
        config.extend(g.pending.clone());
        for key in &g.pending_delete {
            config.remove(key);
        }
    }
    let mut out = Map::new();
    for (k, v) in &config {
        let value = match k.as_str() {
            "description" => continue,
            "cipassword" => json!(MASK),
            k if qemu_schema::is_number(k) => v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n)),
            _ => json!(v),
        };
        out.insert(k.clone(), value);
    }
    if let Some(d) = g.description_read_back() {
        out.insert("description".into(), json!(d));
    }
    out.insert("digest".into(), json!(g.digest()));
    Ok(Value::Object(out))
}

/// `GET …/qemu/{vmid}/pending`: `{key, value?, pending?, delete?}` per key (config_with_pending_array).
pub(crate) fn pending(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Audit"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[])?;
    let state = ctx.sim.state.lock().expect("state");
    let g = state.guest(&ctx.node, GuestKind::Qemu, vmid)?;
    let mut items = vec![];
    let mut config = g.config.clone();
    if let Some(d) = g.description_read_back() {
        config.insert("description".into(), d);
    }
    config.insert("digest".into(), g.digest());
    for (k, v) in &config {
        let mut item = json!({"key": k, "value": if k == "cipassword" { MASK } else { v }});
        if let Some(p) = g.pending.get(k) {
            item["pending"] = json!(if k == "cipassword" { "********** " } else { p });
        }
        if g.pending_delete.contains(k) {
            item["delete"] = json!(1);
        }
        items.push(item);
    }
    for (k, p) in g.pending.iter().filter(|(k, _)| !config.contains_key(*k)) {
        items.push(json!({"key": k, "pending": p}));
    }
    for k in g.pending_delete.iter().filter(|k| !config.contains_key(*k)) {
        items.push(json!({"key": k, "delete": 1}));
    }
    Ok(Value::Array(items))
}

const CONFIG_PRIVS: &[&str] = &[
    "VM.Config.Disk",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.HWType",
    "VM.Config.Options",
    "VM.Config.Cloudinit",
];

/// The synchronous part both PUT and POST run before locking or forking.
fn prepare(ctx: &Ctx, post: bool) -> Result<(u64, Update), ApiError> {
    let path = format!("/vms/{}", ctx.vmid_raw);
    ctx.require(&path, CONFIG_PRIVS)?;
    let vmid = ctx.vmid()?;
    params::check_by(&ctx.params, |k| qemu_schema::update_key(k, post), &[])?;
    let mut p = ctx.params.clone();
    let flag = |k: &str| p.get(k).is_some_and(|v| v == "1");
    let skiplock = flag("skiplock");
    if skiplock && ctx.authid() != "root@pam" {
        return Err(ApiError::param("skiplock", "Only root may use this option."));
    }
    let list = |k: &str| -> Vec<String> {
        p.get(k)
            .map(|d| d.split([',', ';', ' ']).filter(|x| !x.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (deletes, reverts) = (list("delete"), list("revert"));
    let digest = p.get("digest").cloned();
    for k in ["delete", "revert", "digest", "skiplock", "force", "background_delay"] {
        p.remove(k);
    }
    if let Some(keys) = p.get("sshkeys") {
        cloudinit::validate_keys(keys)?;
    }
    if deletes.is_empty() && reverts.is_empty() && p.is_empty() {
        return Err(ApiError::internal("no options specified"));
    }
    if let Some(v) = p.remove("cdrom") {
        p.insert("ide2".into(), v);
    }
    for r in &reverts {
        if qemu_schema::config_key(r).is_none() {
            return Err(ApiError::param("revert", format!("unknown option '{r}'")));
        }
        if p.contains_key(r) {
            return Err(ApiError::param("delete", format!("you can't use '-{r}' and -revert {r}' at the same time")));
        }
    }
    let deletes: Vec<String> = deletes.into_iter().map(|d| if d == "cdrom" { "ide2".into() } else { d }).collect();
    for d in &deletes {
        if p.contains_key(d) {
            return Err(ApiError::param("delete", format!("you can't use '-{d}' and -delete {d}' at the same time")));
        }
        if reverts.contains(d) {
            return Err(ApiError::param(
                "revert",
                format!("you can't use '-delete {d}' and -revert {d}' at the same time"),
            ));
        }
        if qemu_schema::config_key(d).is_none() {
            return Err(ApiError::param("delete", format!("unknown option '{d}'")));
        }
    }
    {
        let state = ctx.sim.state.lock().expect("state");
        qemu_checks::drive_params(&state, &mut p)?;
    }
    {
        let mut rng = ctx.sim.rng.lock().expect("rng");
        qemu_checks::add_macs(&mut p, || random_mac(&mut rng));
    }
    for key in deletes.iter().chain(p.keys()) {
        if is_drive_key(key) {
            continue;
        }
        let privs: &[&str] = if qemu_schema::is_cloudinit_key(key) {
            &["VM.Config.Cloudinit", "VM.Config.Network"]
        } else {
            &[qemu_schema::privilege(key)]
        };
        ctx.require(&path, privs)?;
    }
    {
        let state = ctx.sim.state.lock().expect("state");
        qemu_checks::storage_access(ctx, &state, &p, None)?;
        // check_drive_perms: old and new value of each drive, by kind.
        let old = state.guest(&ctx.node, GuestKind::Qemu, vmid).map(|g| g.config.clone()).unwrap_or_default();
        for key in p.keys().chain(deletes.iter()).filter(|k| is_drive_key(k)) {
            for value in [old.get(key), p.get(key)].into_iter().flatten() {
                let Ok(d) = Drive::parse(key, value) else { continue };
                let privs: &[&str] = if d.is_cloudinit() {
                    &["VM.Config.Cloudinit"]
                } else if d.is_cdrom() || matches!(d.kind(), Volume::Empty) {
                    &["VM.Config.CDROM"]
                } else {
                    &["VM.Config.Disk"]
                };
                ctx.require(&path, privs)?;
                if d.is_cloudinit() {
                    ctx.require(&path, &["VM.Config.CDROM"])?;
                }
            }
        }
    }
    qemu_checks::bridge_access(ctx, &p)?;
    let salt = shacrypt::salt(&mut *ctx.sim.rng.lock().expect("rng"));
    let update = Update { values: p, deletes, reverts, digest, skiplock, salt };
    qemu_update::load_and_check(&ctx.sim.state.lock().expect("state"), &ctx.node, vmid, &update)?;
    Ok((vmid, update))
}

/// `PUT …/qemu/{vmid}/config` → `null` once applied.
pub(crate) fn put(ctx: &Ctx) -> Result<Value, ApiError> {
    let (vmid, update) = prepare(ctx, false)?;
    let mut state = ctx.sim.state.lock().expect("state");
    qemu_update::apply(&mut state, &ctx.node, vmid, update)?;
    Ok(Value::Null)
}

/// `POST …/qemu/{vmid}/config` → `qmconfig` UPID; with `background_delay`, `null` when the task ended
/// well within it, 500 `failed to update VM <id>: <status>` when it failed.
pub(crate) async fn post(ctx: &Ctx) -> Result<Value, ApiError> {
    let delay = ctx.params.get("background_delay").and_then(|d| d.parse::<u64>().ok());
    let (vmid, update) = prepare(ctx, true)?;
    let node = ctx.node.clone();
    let work: Work = Box::new(move |state| {
        let log = qemu_update::apply(state, &node, vmid, update).map_err(|e| match e.errors {
            Some(errors) => errors.into_iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(" "),
            None => e.message,
        })?;
        Ok(std::iter::once(format!("update VM {vmid}")).chain(log).collect())
    });
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, "qmconfig", &vmid.to_string(), &ctx.authid());
    let upid = tasks::spawn(&ctx.sim, &ctx.faults, upid, ctx.sim.cfg.power_duration, work, None);
    let Some(delay) = delay else { return Ok(json!(upid)) };
    let until = Instant::now() + Duration::from_secs(delay);
    while Instant::now() < until {
        let exit = match ctx.sim.state.lock().expect("state").tasks.get(&upid).map(|t| t.state.clone()) {
            Some(TaskState::Stopped { exit_status }) => Some(exit_status),
            _ => None,
        };
        match exit {
            Some(s) if s == "OK" || s.starts_with("WARNINGS") => return Ok(Value::Null),
            Some(s) => return Err(ApiError::internal(format!("failed to update VM {vmid}: {s}"))),
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    Ok(json!(upid))
}
