//! `POST /nodes/{node}/qemu` → `qmcreate` UPID (pve-qemu-day2.md §1): synchronous checks in
//! qemu-server's order, `lock: create` at once, then a worker that allocates the disks and writes the
//! final config — or removes it again and fails `unable to create VM <id> - <reason>`.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::auth::now;
use super::cloudinit;
use super::drive::{self, is_drive_key};
use super::faults::Fault;
use super::guest_net::{AgentState, Dhcp};
use super::http::Ctx;
use super::inventory::random_mac;
use super::params::{self, normalise_tags};
use super::qemu_checks;
use super::qemu_power;
use super::qemu_schema;
use super::reply::ApiError;
use super::state::{Guest, GuestKind};
use super::tasks::{self, Work};
use super::volumes;

/// The QEMU version new VMs record in `meta`.
pub(crate) const QEMU_VERSION: &str = "10.1.2";

// The call's own parameters, not config keys. Restores (`archive`) are not simulated.
const CALL_PARAMS: &[&str] =
    &["vmid", "storage", "pool", "start", "unique", "force", "ha-managed", "live-restore", "bwlimit"];

pub(crate) fn create(ctx: &Ctx) -> Result<Value, ApiError> {
    // `user => 'all'`: the schema is checked first, every permission inside.
    params::check_by(&ctx.params, |k| if k == "archive" { None } else { qemu_schema::create_key(k) }, &["vmid"])?;
    let mut p = ctx.params.clone();
    let vmid: u64 = p["vmid"].parse().expect("checked");
    let start = p.get("start").is_some_and(|s| s == "1");
    let pool = p.get("pool").cloned();
    let storage = p.get("storage").cloned();
    if let Some(keys) = p.get("sshkeys") {
        cloudinit::validate_keys(keys)?;
    }
    {
        let state = ctx.sim.state.lock().expect("state");
        if let Some(pool) = &pool
            && !state.pools.contains_key(pool)
        {
            return Err(ApiError::status(403, format!("Permission check failed (pool '{pool}' does not exist)")));
        }
    }
    if let Some(s) = &storage {
        ctx.require(&format!("/storage/{s}"), &["Datastore.AllocateSpace"])?;
    }
    let vm_path = format!("/vms/{vmid}");
    let check_vm = |privs: &[&str]| -> Result<(), ApiError> {
        match &pool {
            Some(pool) if privs.iter().any(|p| ctx.allowed(&format!("/pool/{pool}"), p)) => Ok(()),
            _ => ctx.require(&vm_path, privs),
        }
    };
    if start {
        check_vm(&["VM.PowerMgmt"])?;
    }
    let may_allocate = ctx.allowed(&vm_path, "VM.Allocate")
        || pool.as_ref().is_some_and(|pool| ctx.allowed(&format!("/pool/{pool}"), "VM.Allocate"));
    if !may_allocate {
        return Err(ApiError::status(403, "Permission check failed"));
    }
    let config_keys: Vec<String> = p.keys().filter(|k| !CALL_PARAMS.contains(&k.as_str())).cloned().collect();
    {
        let state = ctx.sim.state.lock().expect("state");
        qemu_checks::storage_access(ctx, &state, &p, storage.as_deref())?;
    }
    for key in config_keys.iter().filter(|k| !is_drive_key(k)) {
        if qemu_schema::is_cloudinit_key(key) {
            check_vm(&["VM.Config.Cloudinit", "VM.Config.Network"])?;
        } else {
            check_vm(&[qemu_schema::privilege(key)])?;
        }
    }
    qemu_checks::bridge_access(ctx, &p)?;
    {
        let state = ctx.sim.state.lock().expect("state");
        qemu_checks::drive_params(&state, &mut p)?;
    }
    {
        let mut rng = ctx.sim.rng.lock().expect("rng");
        qemu_checks::add_macs(&mut p, || random_mac(&mut rng));
    }
    // create_and_lock_config: the VMID must be free cluster-wide.
    {
        let mut state = ctx.sim.state.lock().expect("state");
        if let Some(g) = state.guests.get(&vmid) {
            let holder = format!("{} {vmid} already exists on node '{}'", g.kind.label(), g.node);
            return Err(ApiError::internal(format!("unable to create VM {vmid} - {holder}")));
        }
        let config = BTreeMap::from([("lock".to_owned(), "create".to_owned())]);
        // A new VM's disks are empty: no OS, so no guest agent and nobody asking DHCP for a lease.
        let g = Guest {
            created_at: Some(Instant::now()),
            agent: AgentState::NotRunning,
            dhcp: Dhcp::NeverAnswers,
            ..Guest::new(vmid, GuestKind::Qemu, ctx.node.clone(), config)
        };
        state.guests.insert(vmid, g);
    }
    let config: BTreeMap<String, String> = config_keys.iter().map(|k| (k.clone(), p[k].clone())).collect();
    let (smbios, vmgenid) = {
        let mut rng = ctx.sim.rng.lock().expect("rng");
        (volumes::uuid(&mut *rng), volumes::uuid(&mut *rng))
    };
    let lease = qemu_power::lease(ctx, vmid);
    let (node, ip_delay) = (ctx.node.clone(), ctx.sim.cfg.ip_delay);
    let work: Work = Box::new(move |state| {
        let fail = |state: &mut super::state::State, e: String| {
            state.guests.remove(&vmid);
            Err(format!("unable to create VM {vmid} - {e}"))
        };
        let mut config = config;
        let drives: BTreeMap<String, String> =
            config.iter().filter(|(k, _)| is_drive_key(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut taken = volumes::referenced(state);
        let (created, mut log) =
            match qemu_checks::create_disks(state, vmid, &config, &drives, storage.as_deref(), &mut taken) {
                Ok(r) => r,
                Err(e) => return fail(state, e),
            };
        config.extend(created);
        if !config.contains_key("boot") {
            config.insert("boot".into(), drive::default_boot(&config));
        }
        config.entry("smbios1".into()).or_insert(format!("uuid={smbios}"));
        if config.get("vmgenid").is_none_or(|v| v == "1") {
            config.insert("vmgenid".into(), vmgenid);
        }
        config.insert("meta".into(), format!("creation-qemu={QEMU_VERSION},ctime={}", now()));
        if config.get("ostype").is_some_and(|o| o.starts_with('w')) && !config.contains_key("machine") {
            let machine = "pc-i440fx-10.1+pve0";
            log.push(format!("pinning machine type to '{machine}' for Windows guest OS"));
            config.insert("machine".into(), machine.into());
        }
        if let Some(tags) = config.get("tags").map(|t| normalise_tags(t)) {
            config.insert("tags".into(), tags);
        }
        let g = state.guests.get_mut(&vmid).ok_or("config file vanished")?;
        g.config = config;
        g.pool = pool;
        if start {
            log.push("Execute autostart".into());
            match qemu_power::start_in_task(state, &node, vmid, lease, ip_delay) {
                Ok(lines) => log.extend(lines),
                // A failed autostart only warns; the VM stays (pve-qemu-day2.md §1.1).
                Err(e) => log.push(format!("WARN: {e}")),
            }
        }
        Ok(log)
    });
    let cleanup: Work = Box::new(move |state| {
        state.guests.remove(&vmid);
        Ok(vec![])
    });
    let faults: Vec<Fault> = ctx
        .faults
        .iter()
        .map(|f| match f {
            Fault::TaskError(m) => Fault::TaskError(format!("unable to create VM {vmid} - {m}")),
            other => other.clone(),
        })
        .collect();
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, "qmcreate", &vmid.to_string(), &ctx.authid());
    Ok(json!(tasks::spawn(&ctx.sim, &faults, upid, ctx.sim.cfg.clone_duration, work, Some(cleanup))))
}
