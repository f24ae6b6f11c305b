//! Live usage and history (pve-qemu-day2.md §8): the moving counters of `status/current` and the RRD
//! rows of `…/rrddata`. Every value is a pure function of the VMID and the time, so tests can assert
//! shapes, while the counters still grow and the CPU still wanders like a real guest's.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::http::Ctx;
use super::params::{self, Ty};
use super::reply::ApiError;
use super::state::{Guest, GuestKind};

/// Seconds since the epoch, now.
pub(crate) fn epoch_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The epoch second at which `at` happened.
fn epoch_of(at: Instant) -> u64 {
    epoch_now().saturating_sub(at.elapsed().as_secs())
}

/// A stable pseudo-random fraction in [0, 1) for `(vmid, salt, k)` (splitmix64).
fn hash01(vmid: u64, salt: u64, k: u64) -> f64 {
    let mut z = vmid.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ k;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Smooth noise in [0, 1): knots every 5 minutes, linear in between.
fn wave(vmid: u64, salt: u64, t: u64) -> f64 {
    let (k, off) = (t / 300, (t % 300) as f64 / 300.0);
    hash01(vmid, salt, k) * (1.0 - off) + hash01(vmid, salt, k + 1) * off
}

/// The guest's own share of its CPUs at `t` (0…1).
pub(crate) fn cpu_at(vmid: u64, t: u64) -> f64 {
    let base = 0.02 + 0.25 * hash01(vmid, 1, 0);
    (base + 0.3 * wave(vmid, 2, t) * wave(vmid, 3, t / 7)).min(1.0)
}

/// Memory in use at `t` as a fraction of `maxmem`.
fn mem_frac(vmid: u64, t: u64) -> f64 {
    0.25 + 0.35 * hash01(vmid, 4, 0) + 0.1 * wave(vmid, 5, t)
}

/// The mean byte rates (netin, netout, diskread, diskwrite) of this guest.
fn mean_rates(vmid: u64) -> [f64; 4] {
    [1.0, 2.0, 3.0, 4.0].map(|salt: f64| 2_000.0 + 60_000.0 * hash01(vmid, 10 + salt as u64, 0))
}

/// The byte rates at `t`, around [`mean_rates`].
fn rates_at(vmid: u64, t: u64) -> [f64; 4] {
    let mean = mean_rates(vmid);
    [0, 1, 2, 3].map(|i| mean[i] * (0.2 + 1.6 * wave(vmid, 20 + i as u64, t)))
}

/// Where a guest stands at epoch second `t` (history as far as the simulator knows it: the state before
/// the last power change is taken to be the opposite one, back to the guest's creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the RRD file existed: a row with only `time`.
    Absent,
    Stopped,
    Running,
}

/// When the guest's RRD file was created: at creation for guests the simulator made, else a VMID-derived
/// day 30 to 400 days back (the initial inventory is older than any window but `year`).
fn born(g: &Guest, now: u64) -> u64 {
    match g.created_at {
        Some(at) => epoch_of(at),
        None => now.saturating_sub(86_400 * (30 + g.vmid % 370)),
    }
}

fn phase(g: &Guest, born: u64, t: u64) -> Phase {
    if t < born {
        return Phase::Absent;
    }
    let flip = if g.running { g.started_at.map(epoch_of) } else { g.stopped_at.map(epoch_of) };
    let now_state = if g.running { Phase::Running } else { Phase::Stopped };
    match flip {
        Some(at) if t < at => {
            if g.running {
                Phase::Stopped
            } else {
                Phase::Running
            }
        }
        _ => now_state,
    }
}

/// `cpus` of `status/current`: LXC `cores` (else the host's 16), QEMU `vcpus` or sockets×cores.
pub(crate) fn cpus(g: &Guest) -> u64 {
    let num = |k: &str| g.config.get(k).and_then(|c| c.parse::<u64>().ok());
    match g.kind {
        GuestKind::Lxc => num("cores").unwrap_or(16),
        GuestKind::Qemu => num("vcpus").unwrap_or(num("cores").unwrap_or(1) * num("sockets").unwrap_or(1)).min(16),
    }
}

/// `maxmem` in bytes (`memory` MiB, `current=` accepted).
pub(crate) fn maxmem(g: &Guest) -> u64 {
    g.config.get("memory").and_then(|m| m.trim_start_matches("current=").parse::<u64>().ok()).unwrap_or(512) << 20
}

/// Used bytes of a running container's root filesystem (QEMU reports 0, §8.1).
fn disk_used(g: &Guest, t: u64) -> u64 {
    if g.kind == GuestKind::Qemu {
        return 0;
    }
    let max = g.rootfs_bytes() as f64;
    (max * (0.15 + 0.3 * hash01(g.vmid, 6, 0) + 0.02 * wave(g.vmid, 7, t / 60))) as u64
}

/// The live counters of `status/current` (§8.1/§8.2): all 0 when stopped; cumulative byte counters that
/// only grow while running; CPU as a fraction of `cpus`.
pub(crate) fn live(g: &Guest, v: &mut Value) {
    let now = epoch_now();
    let uptime = g.started_at.filter(|_| g.running).map_or(0, |s| s.elapsed().as_secs());
    let maxmem = maxmem(g);
    v["cpus"] = json!(cpus(g));
    v["maxmem"] = json!(maxmem);
    v["uptime"] = json!(uptime);
    if !g.running {
        for k in ["cpu", "mem", "disk", "netin", "netout", "diskread", "diskwrite"] {
            v[k] = json!(0);
        }
        return;
    }
    let mean = mean_rates(g.vmid);
    // Mean rate × uptime plus a term that only grows: monotonic while the guest runs.
    let counters = [0, 1, 2, 3].map(|i| (mean[i] * uptime as f64) as u64 + (g.vmid % 97 + 1) * (uptime / 5));
    v["cpu"] = json!(round4(cpu_at(g.vmid, now)));
    v["mem"] = json!((maxmem as f64 * mem_frac(g.vmid, now)) as u64);
    v["disk"] = json!(disk_used(g, now));
    v["netin"] = json!(counters[0]);
    v["netout"] = json!(counters[1]);
    v["diskread"] = json!(counters[2]);
    v["diskwrite"] = json!(counters[3]);
    if g.kind == GuestKind::Qemu {
        v["memhost"] = json!((maxmem as f64 * mem_frac(g.vmid, now) * 0.9) as u64);
    }
    for k in ["pressurecpusome", "pressurecpufull", "pressureiosome", "pressureiofull"] {
        v[k] = json!(round4(0.01 * wave(g.vmid, 30, now)));
    }
    for k in ["pressurememorysome", "pressurememoryfull"] {
        v[k] = json!(0);
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// PVE 9's (step, rows) per timeframe (pve-qemu-day2.md §8.3, pve-cluster ≥ 9.0.7).
pub(crate) fn window(timeframe: &str) -> (u64, u64) {
    match timeframe {
        "hour" => (60, 60),
        "day" => (60, 1440),
        "week" => (1800, 336),
        "month" => (1800, 1440),
        _ => (21_600, 1440),
    }
}

const TIMEFRAMES: &[&str] = &["hour", "day", "week", "month", "year"];

/// `GET /nodes/{node}/{lxc|qemu}/{vmid}/rrddata` (`VM.Audit`, pve-qemu-day2.md §8.3). Not proxied and
/// reading `pve-vm-9.0/<vmid>` only: the guest's node and type in the path do not matter, as in PVE.
pub(crate) fn rrddata(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Audit"])?;
    let vmid = ctx.vmid()?;
    params::check(
        &ctx.params,
        &[("timeframe", Ty::Enum(TIMEFRAMES), true), ("cf", Ty::Enum(&["AVERAGE", "MAX"]), false)],
    )?;
    let timeframe = ctx.params.get("timeframe").map(String::as_str).unwrap_or("hour");
    let max = ctx.params.get("cf").is_some_and(|c| c == "MAX");
    let state = ctx.sim.state.lock().expect("state");
    // The file appears with pvestatd's first report of the guest (§8.3); rrdtool's text when it is missing.
    let fresh = |g: &Guest| g.created_at.is_some_and(|t| t.elapsed() < ctx.sim.cfg.rrd_lag);
    let Some(g) = state.guests.get(&vmid).filter(|g| !fresh(g)) else {
        return Err(ApiError::internal(format!(
            "RRD error: opening '/var/lib/rrdcached/db/pve-vm-9.0/{vmid}': No such file or directory"
        )));
    };
    Ok(Value::Array(rows(g, timeframe, max, epoch_now())))
}

/// The rows of one window ending at `now`, oldest first; unknown values left out, a trailing `time`-only
/// row dropped (pve-cluster 9.0.7).
pub(crate) fn rows(g: &Guest, timeframe: &str, max: bool, now: u64) -> Vec<Value> {
    let (step, count) = window(timeframe);
    let end = now / step * step;
    let born = born(g, now);
    let mut out: Vec<Value> = (0..count)
        .map(|i| {
            let t = end - (count - 1 - i) * step;
            let mut row = Map::new();
            row.insert("time".into(), json!(t));
            let p = phase(g, born, t);
            if p == Phase::Absent {
                return Value::Object(row);
            }
            let maxmem = maxmem(g);
            row.insert("maxcpu".into(), json!(cpus(g)));
            row.insert("maxmem".into(), json!(maxmem));
            row.insert("maxdisk".into(), json!(g.rootfs_bytes()));
            row.insert("disk".into(), json!(if p == Phase::Running { disk_used(g, t) } else { 0 }));
            if p == Phase::Running {
                // MAX of a step is above its AVERAGE, by how much the minute samples wandered.
                let peak = if max { 1.0 + 0.5 * hash01(g.vmid, 40, t) } else { 1.0 };
                row.insert("cpu".into(), json!((cpu_at(g.vmid, t) * peak).min(1.0)));
                let mem = maxmem as f64 * mem_frac(g.vmid, t) * peak.min(1.1);
                row.insert("mem".into(), json!(mem.min(maxmem as f64)));
                row.insert("memhost".into(), json!(mem.min(maxmem as f64) * 0.9));
                let r = rates_at(g.vmid, t);
                for (k, v) in ["netin", "netout", "diskread", "diskwrite"].into_iter().zip(r) {
                    row.insert(k.into(), json!(v * peak));
                }
                for k in ["pressurecpusome", "pressurecpufull", "pressureiosome", "pressureiofull"] {
                    row.insert(k.into(), json!(0.01 * wave(g.vmid, 30, t)));
                }
                row.insert("pressurememorysome".into(), json!(0));
                row.insert("pressurememoryfull".into(), json!(0));
            }
            Value::Object(row)
        })
        .collect();
    if out.last().is_some_and(|r| r.as_object().is_some_and(|o| o.len() == 1)) {
        out.pop();
    }
    out
}
