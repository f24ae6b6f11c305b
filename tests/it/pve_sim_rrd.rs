//! The simulator's live usage and RRD history on the wire (pve-qemu-day2.md §8): `status/current`
//! counters that grow while a guest runs and are 0 while it is stopped, and `rrddata` with PVE 9's
//! windows, unknown values left out (before the guest existed, while it was off), rates not counters,
//! parameter and permission errors with PVE's texts, and the fault table.

use std::time::{Duration, Instant};

use proxdesk::integrations::pve::sim::{Endpoint, Fault, Simulator};
use serde_json::{Value, json};

use crate::pve_client::config;
use crate::pve_sim_qemu::Pve;
use crate::pve_sim_wire::raw;

const CT: &str = "/nodes/pve1/lxc/300";
const VM: &str = "/nodes/pve1/qemu/310";

/// CT 300 and VM 310, created two hours ago, running for the last 30 minutes.
async fn with_history() -> Pve {
    let pve = Pve::start().await;
    let (exit, log) = pve.task("POST", "/nodes/pve1/lxc/9000/clone", &[("newid", "300"), ("hostname", "ct300")]).await;
    assert_eq!(exit, "OK", "{log:?}");
    pve.clone_template(310, "vm310").await;
    let now = Instant::now();
    pve.sim.with_state(|st| {
        for vmid in [300, 310] {
            let g = st.guests.get_mut(&vmid).unwrap();
            g.created_at = now.checked_sub(Duration::from_secs(2 * 3600));
            g.running = true;
            g.started_at = now.checked_sub(Duration::from_secs(30 * 60));
        }
    });
    pve
}

fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap()
}

fn has(row: &Value, key: &str) -> bool {
    row.get(key).is_some()
}

#[tokio::test]
async fn windows_have_pve9_steps_and_rows_oldest_first() {
    let pve = with_history().await;
    for (base, tf, step, count) in [
        (CT, "hour", 60, 60),
        (CT, "day", 60, 1440),
        (VM, "week", 1800, 336),
        (VM, "month", 1800, 1440),
        (CT, "year", 21_600, 1440),
    ] {
        let data = pve.ok("GET", &format!("{base}/rrddata"), &[("timeframe", tf)]).await;
        let r = rows(&data);
        // A year's newest 6-hour row may end before the guest (2 h old) existed: `time` only, dropped.
        let expected = if tf == "year" { count - 1..=count } else { count..=count };
        assert!(expected.contains(&r.len()), "{tf}: {} rows", r.len());
        for w in r.windows(2) {
            let (a, b) = (w[0]["time"].as_u64().unwrap(), w[1]["time"].as_u64().unwrap());
            assert_eq!(b - a, step, "{tf}: oldest first, {step} s apart");
            assert_eq!(a % step, 0, "aligned to the step");
        }
    }
}

#[tokio::test]
async fn unknown_values_are_left_out_before_creation_and_while_off() {
    let pve = with_history().await;
    let day = pve.ok("GET", &format!("{CT}/rrddata"), &[("timeframe", "day")]).await;
    let r = rows(&day);
    let now = r.last().unwrap()["time"].as_u64().unwrap();
    let at = |ago: u64| r.iter().find(|row| row["time"].as_u64().unwrap() == now - ago).unwrap().clone();
    // Before the guest existed: `time` only.
    let old = at(3 * 3600);
    assert_eq!(old.as_object().unwrap().len(), 1, "{old}");
    // Created but off: sizes, no usage.
    let off = at(3600);
    for k in ["maxcpu", "maxmem", "maxdisk", "disk"] {
        assert!(has(&off, k), "{k} in {off}");
    }
    for k in ["cpu", "mem", "netin", "netout", "diskread", "diskwrite"] {
        assert!(!has(&off, k), "no {k} while stopped: {off}");
    }
    // Running: everything, CPU a fraction, net and disk as rates (bytes/s), PVE 9's extra fields.
    let on = at(600);
    let cpu = on["cpu"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&cpu), "{on}");
    assert!(on["mem"].as_f64().unwrap() <= on["maxmem"].as_f64().unwrap());
    assert!(on["netin"].as_f64().unwrap() < 1.0e7, "a rate, not a counter: {on}");
    assert!(has(&on, "memhost") && has(&on, "pressurecpusome"), "PVE 9 fields: {on}");
    assert_eq!(on["maxdisk"], json!(8u64 << 30), "the rootfs size");

    // Deterministic for the same VMID and time; MAX is never below AVERAGE.
    let avg = pve.ok("GET", &format!("{CT}/rrddata"), &[("timeframe", "hour"), ("cf", "AVERAGE")]).await;
    let max = pve.ok("GET", &format!("{CT}/rrddata"), &[("timeframe", "hour"), ("cf", "MAX")]).await;
    for (a, m) in rows(&avg).iter().zip(rows(&max)).filter(|(a, _)| has(a, "cpu")) {
        assert_eq!(a["time"], m["time"]);
        assert!(m["cpu"].as_f64().unwrap() >= a["cpu"].as_f64().unwrap(), "{a} {m}");
    }
    // QEMU reports no disk usage.
    let vm = pve.ok("GET", &format!("{VM}/rrddata"), &[("timeframe", "hour")]).await;
    assert!(rows(&vm).iter().all(|r| r.get("disk").is_none_or(|d| d == &json!(0))), "{vm}");
}

#[tokio::test]
async fn a_stopped_guests_newest_rows_have_no_usage_and_it_shows_in_any_nodes_path() {
    let pve = with_history().await;
    assert_eq!(pve.task("POST", &format!("{CT}/status/stop"), &[]).await.0, "OK");
    // Stopped five minutes ago (in the simulator's books): the newest rows are a stopped guest's.
    pve.sim.with_state(|st| {
        st.guests.get_mut(&300).unwrap().stopped_at = Instant::now().checked_sub(Duration::from_secs(300))
    });
    let hour = pve.ok("GET", &format!("{CT}/rrddata"), &[("timeframe", "hour")]).await;
    let last = rows(&hour).last().unwrap();
    assert!(has(last, "maxmem") && !has(last, "cpu"), "stopped now: {last}");
    assert!(rows(&hour).iter().any(|r| has(r, "cpu")), "it ran earlier in the hour");
    // Not proxied: any node (and either type's path) reads the same file.
    let elsewhere = pve.ok("GET", "/nodes/pve2/qemu/300/rrddata", &[("timeframe", "hour")]).await;
    assert_eq!(rows(&elsewhere).len(), rows(&hour).len());
}

#[tokio::test]
async fn bad_parameters_permissions_and_missing_files_answer_with_pve_texts() {
    let pve = with_history().await;
    let (s, t) = pve.err("GET", &format!("{CT}/rrddata"), &[]).await;
    assert_eq!((s, t), (400, json!({"timeframe": "property is missing and it is not optional"}).to_string()));
    let (s, t) = pve.err("GET", &format!("{CT}/rrddata"), &[("timeframe", "decade")]).await;
    let text = "value 'decade' does not have a value in the enumeration 'hour, day, week, month, year'";
    assert_eq!((s, t), (400, json!({ "timeframe": text }).to_string()), "decade is for nodes only");
    let (s, t) = pve.err("GET", &format!("{CT}/rrddata"), &[("timeframe", "hour"), ("cf", "MIN")]).await;
    let text = "value 'MIN' does not have a value in the enumeration 'AVERAGE, MAX'";
    assert_eq!((s, t), (400, json!({ "cf": text }).to_string()));
    let (s, t) = pve.err("GET", "/nodes/pve1/lxc/777/rrddata", &[("timeframe", "hour")]).await;
    assert_eq!(s, 500);
    assert!(t.starts_with("RRD error: ") && t.contains("pve-vm-9.0/777"), "{t}");

    let acl = vec![("/vms/300".to_owned(), vec!["VM.Audit".to_owned()])];
    let sim = Simulator::start(config().with_token("viewer@pve!ro", "s", acl)).await.unwrap();
    let h = [("Authorization", "PVEAPIToken=viewer@pve!ro=s")];
    let a = raw(&sim, "GET", "/api2/json/nodes/pve1/qemu/311/rrddata?timeframe=hour", &h, "").await;
    assert_eq!(a.status_line, "HTTP/1.1 403 Permission check failed (/vms/311, VM.Audit)");
}

#[tokio::test]
async fn live_counters_grow_while_running_and_are_zero_when_stopped() {
    let pve = with_history().await;
    let first = pve.ok("GET", &format!("{CT}/status/current"), &[]).await;
    assert_eq!((first["status"].clone(), first["cpu"].clone()), (json!("running"), json!(0)), "no previous sample");
    let first = pve.ok("GET", &format!("{CT}/status/current"), &[]).await;
    assert!((0.0..1.0).contains(&first["cpu"].as_f64().unwrap()) && first["cpu"] != json!(0), "{first}");
    assert!(first["mem"].as_u64().unwrap() > 0 && first["mem"].as_u64() < first["maxmem"].as_u64());
    assert!(first["disk"].as_u64().unwrap() > 0 && first["disk"].as_u64() < first["maxdisk"].as_u64());
    assert!((1790..1900).contains(&first["uptime"].as_u64().unwrap()), "{first}");
    // Ten more minutes of running (moved back in the simulator's books, not waited for).
    pve.sim.with_state(|st| {
        let g = st.guests.get_mut(&300).unwrap();
        g.started_at = g.started_at.unwrap().checked_sub(Duration::from_secs(600));
    });
    let later = pve.ok("GET", &format!("{CT}/status/current"), &[]).await;
    for k in ["netin", "netout", "diskread", "diskwrite", "uptime"] {
        assert!(later[k].as_u64().unwrap() > first[k].as_u64().unwrap(), "{k} grew: {first} {later}");
    }
    let vm = pve.ok("GET", &format!("{VM}/status/current"), &[]).await;
    assert_eq!((vm["disk"].clone(), vm["qmpstatus"].clone()), (json!(0), json!("running")), "QEMU: no disk usage");
    assert!(vm["memhost"].as_u64().is_some());

    assert_eq!(pve.task("POST", &format!("{CT}/status/stop"), &[]).await.0, "OK");
    let off = pve.ok("GET", &format!("{CT}/status/current"), &[]).await;
    for k in ["cpu", "mem", "disk", "netin", "netout", "diskread", "diskwrite", "uptime"] {
        assert_eq!(off[k], json!(0), "{k} when stopped: {off}");
    }
    assert!(off.get("pid").is_none());
}

#[tokio::test]
async fn rrddata_takes_faults_like_other_endpoints() {
    let pve = with_history().await;
    let fault = Fault::Status { code: 596, message: "Connection timed out".into() };
    pve.sim.faults().inject_times(Endpoint::LxcRrdData, fault, 1);
    let a = pve.call("GET", &format!("{CT}/rrddata"), &[("timeframe", "hour")]).await;
    assert_eq!(a.status_line, "HTTP/1.1 596 Connection timed out");
    let data = pve.ok("GET", &format!("{CT}/rrddata"), &[("timeframe", "hour")]).await;
    assert_eq!(rows(&data).len(), 60, "once only");
    assert!(pve.sim.calls().get(Endpoint::LxcRrdData) >= 2);
    assert_eq!("qemu-rrd-data".parse::<Endpoint>(), Ok(Endpoint::QemuRrdData));
}
