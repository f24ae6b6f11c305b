//! QEMU power (pve-qemu-day2.md §4): `start`/`stop`/`shutdown`/`reboot`/`reset` → UPIDs, only the
//! table's synchronous checks, the rest inside the task. A start applies pending changes, rebuilds the
//! cloud-init image and fails on an unknown bridge.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

use super::cloudinit::CloudInitImage;
use super::drive::{self, Nic, is_net_key};
use super::guest_net::Dhcp;
use super::http::Ctx;
use super::params::{self, Ty};
use super::reply::ApiError;
use super::state::{Guest, GuestKind, State};
use super::tasks::{self, Work};

/// A QEMU power command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Power {
    Start,
    Stop,
    Shutdown,
    Reboot,
    Reset,
}

impl Power {
    fn task_type(self) -> &'static str {
        match self {
            Power::Start => "qmstart",
            Power::Stop => "qmstop",
            Power::Shutdown => "qmshutdown",
            Power::Reboot => "qmreboot",
            Power::Reset => "qmreset",
        }
    }

    fn schema(self) -> params::Schema {
        match self {
            Power::Start => &[("skiplock", Ty::Bool, false), ("timeout", Ty::Int(0, 86_400), false)],
            Power::Stop => &[
                ("skiplock", Ty::Bool, false),
                ("timeout", Ty::Int(0, i64::MAX), false),
                ("overrule-shutdown", Ty::Bool, false),
                ("keepActive", Ty::Bool, false),
            ],
            Power::Shutdown => &[
                ("skiplock", Ty::Bool, false),
                ("timeout", Ty::Int(0, i64::MAX), false),
                ("forceStop", Ty::Bool, false),
                ("keepActive", Ty::Bool, false),
            ],
            Power::Reboot => &[("timeout", Ty::Int(0, i64::MAX), false)],
            Power::Reset => &[("skiplock", Ty::Bool, false)],
        }
    }
}

/// A DHCP lease for `vmid`, drawn now so the task needs no RNG.
pub(crate) fn lease(ctx: &Ctx, vmid: u64) -> Ipv4Addr {
    let mut rng = ctx.sim.rng.lock().expect("rng");
    Ipv4Addr::new(10, 30, (vmid % 250) as u8, rng.random_range(2..250))
}

fn missing(node: &str, vmid: u64) -> String {
    format!("unable to find configuration file for VM {vmid} on node '{node}'")
}

fn config_missing(node: &str, vmid: u64) -> String {
    format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist")
}

/// Applies `[PENDING]` values and deletes to the config.
pub(crate) fn apply_pending(g: &mut Guest) {
    let pending = std::mem::take(&mut g.pending);
    g.config.extend(pending);
    for key in std::mem::take(&mut g.pending_delete) {
        g.config.remove(&key);
    }
}

/// vm_start inside a worker: the checks of §4 in order, pending changes applied, the cloud-init image
/// rebuilt (for a VM with a `vm-<vmid>-cloudinit` drive), bridges checked, then the VM runs.
pub(crate) fn start_in_task(
    state: &mut State,
    node: &str,
    vmid: u64,
    lease: Ipv4Addr,
    ip_delay: Duration,
) -> Result<Vec<String>, String> {
    state.config_flock_free(vmid)?;
    let bridges: Vec<String> = state.networks.iter().map(|n| n.iface.clone()).collect();
    let g = state.guest_mut(node, GuestKind::Qemu, vmid).map_err(|_| config_missing(node, vmid))?;
    if g.is_template() {
        return Err("you can't start a vm if it's a template".into());
    }
    g.check_lock().map_err(|e| e.message)?;
    if g.running {
        return Err(format!("VM {vmid} already running"));
    }
    apply_pending(g);
    let mut log = vec![];
    if drive::drives(&g.config).iter().any(|(_, d)| d.is_cloudinit()) {
        log.push("generating cloud-init ISO".to_owned());
        g.cloudinit = Some(CloudInitImage::build(vmid, &g.config)?);
    }
    for (key, value) in g.config.iter().filter(|(k, _)| is_net_key(k)) {
        let nic = Nic::parse(key, value).map_err(|e| format!("unable to parse value of '{key}' - {}", e.trim_end()))?;
        if let Some(bridge) = nic.bridge().filter(|b| !bridges.iter().any(|x| x == b)) {
            return Err(format!("bridge '{bridge}' does not exist"));
        }
    }
    g.running = true;
    g.started_at = Some(Instant::now());
    g.cpu_sampled = false;
    if g.dhcp == Dhcp::Answers {
        g.ip = Some(g.ip.unwrap_or(lease));
        g.ip_ready_at = Some(Instant::now() + ip_delay);
    }
    Ok(log)
}

fn stop(g: &mut Guest) {
    g.running = false;
    g.started_at = None;
    g.stopped_at = Some(std::time::Instant::now());
}

/// `POST …/qemu/{vmid}/status/{cmd}` → UPID.
pub(crate) fn power(ctx: &Ctx, cmd: Power) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.PowerMgmt"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, cmd.schema())?;
    for root_only in ["skiplock", "keepActive"] {
        if ctx.params.get(root_only).is_some_and(|s| s == "1") && ctx.authid() != "root@pam" {
            return Err(ApiError::param(root_only, "Only root may use this option."));
        }
    }
    let skiplock = ctx.params.get("skiplock").is_some_and(|s| s == "1");
    if matches!(cmd, Power::Reboot | Power::Reset) {
        // check_running: the config must be on this node, the VM running.
        let state = ctx.sim.state.lock().expect("state");
        let g =
            state.guest(&ctx.node, GuestKind::Qemu, vmid).map_err(|_| ApiError::internal(missing(&ctx.node, vmid)))?;
        if !g.running {
            return Err(ApiError::internal(format!("VM {vmid} not running")));
        }
    }
    let (node, ip_delay, ip) = (ctx.node.clone(), ctx.sim.cfg.ip_delay, lease(ctx, vmid));
    let work: Work = Box::new(move |state| {
        if cmd == Power::Start {
            return start_in_task(state, &node, vmid, ip, ip_delay);
        }
        let g = state.guest_mut(&node, GuestKind::Qemu, vmid).map_err(|_| missing(&node, vmid))?;
        if !skiplock {
            g.check_lock().map_err(|e| e.message)?;
        }
        match cmd {
            Power::Stop | Power::Shutdown => stop(g),
            Power::Reset if !g.running => return Err(format!("VM {vmid} not running")),
            Power::Reset => {}
            Power::Reboot => {
                if !g.running {
                    return Err(format!("VM {vmid} not running"));
                }
                stop(g);
                // qmeventd starts it again outside the task; a failing start leaves it stopped.
                let _ = start_in_task(state, &node, vmid, ip, ip_delay);
            }
            Power::Start => unreachable!("handled above"),
        }
        Ok(vec![])
    });
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, cmd.task_type(), &vmid.to_string(), &ctx.authid());
    Ok(json!(tasks::spawn(&ctx.sim, &ctx.faults, upid, ctx.sim.cfg.power_duration, work, None)))
}
