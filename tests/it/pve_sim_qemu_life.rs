//! The simulator's QEMU lifecycle on the wire (pve-qemu-day2.md §2.6, §3, §4, §5, pve-api.md §8.4):
//! pending changes, ISO attach/detach, resize, the power table, delete and the serial terminal.

use futures_util::{SinkExt, StreamExt};
use proxdesk::integrations::pve::sim::{Endpoint, Fault};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::pve_client::{TOKEN_ID, TOKEN_SECRET};
use crate::pve_sim_qemu::Pve;

fn lock(pve: &Pve, vmid: u64, lock: &str) {
    pve.sim.with_state(|s| s.guests.get_mut(&vmid).unwrap().config.insert("lock".into(), lock.into()));
}

#[tokio::test]
async fn a_running_vm_keeps_non_hotpluggable_changes_pending_until_its_next_start() {
    let pve = Pve::start().await;
    let path = "/nodes/pve1/qemu/100/config";
    pve.ok("PUT", path, &[("cores", "4"), ("memory", "4096"), ("name", "web-renamed"), ("ciuser", "bob")]).await;
    let merged = pve.config("pve1", 100).await;
    assert_eq!((merged["cores"].clone(), merged["memory"].clone()), (json!(4), json!("4096")));
    let current = pve.ok("GET", path, &[("current", "1")]).await;
    assert_eq!((current["cores"].clone(), current["memory"].clone()), (json!(2), json!("2048")));
    assert_eq!(
        (current["name"].clone(), current["ciuser"].clone()),
        (json!("web-renamed"), json!("bob")),
        "fast-plug keys"
    );
    let pending = pve.ok("GET", "/nodes/pve1/qemu/100/pending", &[]).await;
    let cores = pending.as_array().unwrap().iter().find(|i| i["key"] == "cores").unwrap();
    assert_eq!(*cores, json!({"key": "cores", "value": "2", "pending": "4"}));
    assert!(pending.as_array().unwrap().iter().all(|i| i["key"] != "name" || i.get("pending").is_none()));
    assert_eq!(pve.task("POST", "/nodes/pve1/qemu/100/status/stop", &[]).await.0, "OK");
    assert_eq!(pve.task("POST", "/nodes/pve1/qemu/100/status/start", &[]).await.0, "OK");
    let after = pve.ok("GET", path, &[("current", "1")]).await;
    assert_eq!((after["cores"].clone(), after["memory"].clone()), (json!(4), json!("4096")));
    let pending = pve.ok("GET", "/nodes/pve1/qemu/100/pending", &[]).await;
    assert!(pending.as_array().unwrap().iter().all(|i| i.get("pending").is_none()), "{pending}");
    // A stopped VM takes everything at once; POST config is a `qmconfig` task.
    let (exit, _) = pve.task("POST", "/nodes/pve2/qemu/101/config", &[("cores", "8")]).await;
    assert_eq!(exit, "OK");
    assert_eq!(pve.ok("GET", "/nodes/pve2/qemu/101/config", &[("current", "1")]).await["cores"], 8);
    let (s, t) = pve.err("PUT", path, &[("cores", "2"), ("delete", "cores")]).await;
    assert_eq!(
        (s, t),
        (400, json!({"delete": "you can't use '-cores' and -delete cores' at the same time"}).to_string())
    );
}

#[tokio::test]
async fn the_iso_on_ide2_is_attached_and_detached() {
    let pve = Pve::start().await;
    let form =
        [("vmid", "210"), ("scsi0", "local-lvm:16"), ("ide2", "local:iso/debian-12.8.0-amd64-netinst.iso,media=cdrom")];
    assert_eq!(pve.task("POST", "/nodes/pve1/qemu", &form).await.0, "OK");
    assert_eq!(pve.task("POST", "/nodes/pve1/qemu/210/status/start", &[]).await.0, "OK");
    let path = "/nodes/pve1/qemu/210/config";
    pve.ok("PUT", path, &[("ide2", "none,media=cdrom")]).await;
    assert_eq!(pve.config("pve1", 210).await["ide2"], "none,media=cdrom");
    pve.ok("PUT", path, &[("ide2", "local:iso/alpine-virt-3.20.3-x86_64.iso,media=cdrom")]).await;
    let current = pve.ok("GET", path, &[("current", "1")]).await;
    assert_eq!(current["ide2"], "local:iso/alpine-virt-3.20.3-x86_64.iso,media=cdrom,size=63M", "changed at once");
    // Removing an IDE drive from a running VM waits for the next power cycle.
    pve.ok("PUT", path, &[("delete", "ide2")]).await;
    let pending = pve.ok("GET", "/nodes/pve1/qemu/210/pending", &[]).await;
    assert!(pending.as_array().unwrap().iter().any(|i| i["key"] == "ide2" && i["delete"] == 1), "{pending}");
}

#[tokio::test]
async fn resize_is_a_task_whatever_is_wrong() {
    let pve = Pve::start().await;
    pve.clone_template(300, "alice-vm").await;
    let path = "/nodes/pve1/qemu/300/resize";
    let resize = |disk: &'static str, size: &'static str| [("disk", disk), ("size", size)];
    assert_eq!(pve.task("PUT", path, &resize("scsi0", "1G")).await.0, "shrinking disks is not supported");
    assert_eq!(pve.task("PUT", path, &resize("scsi0", "2G")).await.0, "OK", "equal size is fine");
    assert_eq!(pve.task("PUT", path, &resize("scsi0", "+3G")).await.0, "OK");
    assert_eq!(pve.config("pve1", 300).await["scsi0"], "local-lvm:base-9100-disk-0/vm-300-disk-0,size=5G");
    assert_eq!(pve.task("PUT", path, &resize("scsi5", "8G")).await.0, "disk 'scsi5' does not exist");
    assert_eq!(pve.task("PUT", path, &resize("ide2", "8G")).await.0, "you can't resize a cdrom");
    lock(&pve, 300, "backup");
    assert_eq!(pve.task("PUT", path, &resize("scsi0", "8G")).await.0, "VM is locked (backup)");
    let digest = [("disk", "scsi0"), ("size", "8G"), ("digest", "0000000000000000000000000000000000000000")];
    assert_eq!(pve.task("PUT", path, &digest).await.0, "checksum mismatch (file change by other user?)");
}

#[tokio::test]
async fn power_follows_pves_table() {
    let pve = Pve::start().await;
    let (s, t) = pve.err("POST", "/nodes/pve2/qemu/101/status/reboot", &[]).await;
    assert_eq!((s, t.as_str()), (500, "VM 101 not running"));
    assert_eq!(pve.err("POST", "/nodes/pve2/qemu/101/status/reset", &[]).await.1, "VM 101 not running");
    let (_, t) = pve.err("POST", "/nodes/pve1/qemu/4242/status/reboot", &[]).await;
    assert_eq!(t, "unable to find configuration file for VM 4242 on node 'pve1'");
    let start = |vmid: u64, node: &str| format!("/nodes/{node}/qemu/{vmid}/status/start");
    assert_eq!(pve.task("POST", &start(100, "pve1"), &[]).await.0, "VM 100 already running");
    assert_eq!(pve.task("POST", &start(9100, "pve1"), &[]).await.0, "you can't start a vm if it's a template");
    assert_eq!(
        pve.task("POST", &start(4242, "pve1"), &[]).await.0,
        "Configuration file 'nodes/pve1/qemu-server/4242.conf' does not exist"
    );
    assert_eq!(pve.task("POST", "/nodes/pve2/qemu/101/status/stop", &[]).await.0, "OK", "stopping a stopped VM");
    assert_eq!(pve.task("POST", "/nodes/pve2/qemu/101/status/shutdown", &[]).await.0, "OK");
    lock(&pve, 101, "backup");
    assert_eq!(pve.task("POST", &start(101, "pve2"), &[]).await.0, "VM is locked (backup)");
    pve.sim.with_state(|s| s.guests.get_mut(&101).unwrap().config.remove("lock"));
    pve.ok("PUT", "/nodes/pve2/qemu/101/config", &[("net0", "virtio,bridge=vmbr7")]).await;
    assert_eq!(pve.task("POST", &start(101, "pve2"), &[]).await.0, "bridge 'vmbr7' does not exist");
    pve.ok("PUT", "/nodes/pve2/qemu/101/config", &[("net0", "virtio,bridge=lab10")]).await;
    let upid = pve.ok("POST", &start(101, "pve2"), &[]).await;
    assert!(upid.as_str().unwrap().contains(":qmstart:101:"), "{upid}");
    assert_eq!(pve.wait(upid.as_str().unwrap()).await.0, "OK");
    assert_eq!(pve.task("POST", "/nodes/pve2/qemu/101/status/reset", &[]).await.0, "OK");
    assert_eq!(pve.task("POST", "/nodes/pve2/qemu/101/status/shutdown", &[]).await.0, "OK");
    let status = pve.ok("GET", "/nodes/pve2/qemu/101/status/current", &[]).await;
    assert_eq!((status["status"].clone(), status["qmpstatus"].clone()), (json!("stopped"), json!("stopped")));
}

#[tokio::test]
async fn delete_checks_running_synchronously_and_the_lock_in_its_task() {
    let pve = Pve::start().await;
    let (s, t) = pve.err("DELETE", "/nodes/pve1/qemu/100", &[]).await;
    assert_eq!((s, t.as_str()), (500, "VM 100 is running - destroy failed"));
    lock(&pve, 101, "backup");
    assert_eq!(pve.task("DELETE", "/nodes/pve2/qemu/101", &[]).await.0, "VM is locked (backup)");
    pve.sim.with_state(|s| {
        let g = s.guests.get_mut(&101).unwrap();
        g.config.remove("lock");
        g.config.insert("protection".into(), "1".into());
    });
    assert_eq!(pve.err("DELETE", "/nodes/pve2/qemu/101", &[]).await.1, "can't remove VM 101 - protection mode enabled");
    pve.clone_template(300, "alice-vm").await;
    let (exit, _) = pve.task("DELETE", "/nodes/pve1/qemu/9100", &[]).await;
    assert_eq!(exit, "base volume 'local-lvm:base-9100-disk-0' is still in use by linked cloned");
    let purge = [("purge", "1"), ("destroy-unreferenced-disks", "1")];
    let upid = pve.ok("DELETE", "/nodes/pve1/qemu/300", &purge).await;
    assert!(upid.as_str().unwrap().contains(":qmdestroy:300:"));
    let (exit, log) = pve.wait(upid.as_str().unwrap()).await;
    assert_eq!(exit, "OK", "{log:?}");
    assert!(log.contains(&"purging VM 300 from related configurations..".to_owned()));
    assert!(!pve.sim.state().guests.contains_key(&300));
    assert_eq!(pve.task("DELETE", "/nodes/pve1/qemu/9100", &[]).await.0, "OK", "no linked clone left");
}

fn ws_request(url: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = url.into_client_request().unwrap();
    let headers = req.headers_mut();
    headers.insert("Authorization", format!("PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}").parse().unwrap());
    headers.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    req
}

/// Opens `termproxy` (with `serial`) and logs in: the frames after `OK`.
async fn terminal(pve: &Pve, vmid: u64, serial: Option<&str>, input: &[u8]) -> Vec<u8> {
    let form: Vec<(&str, &str)> = serial.map(|s| ("serial", s)).into_iter().collect();
    let answer = pve.ok("POST", &format!("/nodes/pve1/qemu/{vmid}/termproxy"), &form).await;
    let ticket: proxdesk::integrations::pve::wire::ConsoleTicket = serde_json::from_value(answer).unwrap();
    let url = pve.client.vncwebsocket_url("pve1", "qemu", vmid, &ticket);
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(&url)).await.unwrap();
    ws.send(Message::text(format!("{TOKEN_ID}:{}\n", ticket.ticket))).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().as_ref(), b"OK");
    ws.send(Message::binary(input.to_vec())).await.unwrap();
    let mut out = vec![];
    while let Ok(Some(Ok(m))) = tokio::time::timeout(std::time::Duration::from_millis(300), ws.next()).await {
        out.extend_from_slice(&m.into_data());
        if out.ends_with(b"\n") {
            break;
        }
    }
    out
}

#[tokio::test]
async fn termproxy_reaches_a_configured_serial_port_only() {
    let pve = Pve::start().await;
    pve.clone_template(300, "alice-vm").await;
    assert_eq!(pve.task("POST", "/nodes/pve1/qemu/300/status/start", &[]).await.0, "OK");
    assert_eq!(terminal(&pve, 300, Some("serial0"), b"0:3:ls\n").await, b"ls\n");
    assert_eq!(terminal(&pve, 300, None, b"0:3:ls\n").await, b"ls\n", "the first socket serial by default");
    let refused = terminal(&pve, 100, Some("serial0"), b"0:3:ls\n").await;
    assert_eq!(String::from_utf8(refused).unwrap(), "serial interface 'serial0' is not configured\r\n");
    let refused = terminal(&pve, 300, Some("serial1"), b"").await;
    assert_eq!(String::from_utf8(refused).unwrap(), "serial interface 'serial1' is not configured\r\n");
    let (s, t) = pve.err("POST", "/nodes/pve1/qemu/300/termproxy", &[("serial", "serial4")]).await;
    assert_eq!(s, 400, "{t}");
}

#[tokio::test]
async fn qemu_vncproxy_hands_out_a_password_unless_the_display_is_a_serial_terminal() {
    let pve = Pve::start().await;
    let a = pve.ok("POST", "/nodes/pve1/qemu/100/vncproxy", &[]).await;
    let password = a["password"].as_str().unwrap();
    assert_eq!(password.len(), 8);
    assert!(a["ticket"].as_str().unwrap().starts_with(&format!("{password}:PVEVNC:")));
    pve.sim.with_state(|s| s.guests.get_mut(&100).unwrap().config.insert("vga".into(), "serial0".into()));
    let a = pve.ok("POST", "/nodes/pve1/qemu/100/vncproxy", &[]).await;
    assert!(a.get("password").is_none() && a["ticket"].as_str().unwrap().starts_with("PVEVNC:"));
    let a = pve.ok("POST", "/nodes/pve1/qemu/100/vncproxy", &[("websocket", "1")]).await;
    assert!(a.get("password").is_some());
}

#[tokio::test]
async fn a_failed_clone_removes_its_target_and_frees_the_template() {
    let pve = Pve::start().await;
    let fault = Fault::TaskError("no space left on device".into());
    pve.sim.faults().inject_times(Endpoint::QemuClone, fault, 1);
    let (exit, _) = pve.task("POST", "/nodes/pve1/qemu/9100/clone", &[("newid", "300")]).await;
    assert_eq!(exit, "clone failed: no space left on device");
    assert!(!pve.sim.state().guests.contains_key(&300));
    assert!(pve.sim.state().flocks.is_empty(), "the worker's flock is given back");
    assert_eq!(pve.task("DELETE", "/nodes/pve1/qemu/9100", &[]).await.0, "OK", "nothing holds the template");
    assert_eq!(pve.sim.calls().get(Endpoint::QemuClone), 1);
}

#[tokio::test]
async fn a_template_being_cloned_cannot_be_deleted_meanwhile() {
    let pve = Pve::start().await;
    pve.sim.faults().inject_times(Endpoint::QemuClone, Fault::TaskHang, 1);
    let upid = pve.ok("POST", "/nodes/pve1/qemu/9100/clone", &[("newid", "300")]).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (exit, _) = pve.task("DELETE", "/nodes/pve1/qemu/9100", &[]).await;
    assert_eq!(exit, "can't lock file '/var/lock/qemu-server/lock-9100.conf' - got timeout");
    // Stopping the hung clone undoes it, as the worker's error path does.
    let upid: proxdesk::integrations::pve::Upid = upid.as_str().unwrap().parse().unwrap();
    pve.client.stop_task(&upid).await.unwrap();
    assert_eq!(pve.wait(&upid.to_string()).await.0, "clone failed: received interrupt");
    assert!(!pve.sim.state().guests.contains_key(&300) && pve.sim.state().flocks.is_empty());
}

#[tokio::test]
async fn a_cloud_init_clone_on_dhcp_gets_a_lease_and_shows_in_cluster_resources() {
    let pve = Pve::start().await;
    pve.clone_template(300, "dhcp-vm").await;
    pve.ok("PUT", "/nodes/pve1/qemu/300/config", &[("ipconfig0", "ip=dhcp")]).await;
    assert_eq!(pve.task("POST", "/nodes/pve1/qemu/300/status/start", &[]).await.0, "OK");
    let resources = pve.client.cluster_resources(Some("vm")).await.unwrap();
    let listed = resources.iter().find(|r| r.vmid == Some(300)).expect("listed");
    assert_eq!((listed.kind.as_str(), listed.node.as_deref()), ("qemu", Some("pve1")));
    let mut address = None;
    for _ in 0..100 {
        let ifaces = pve.client.qemu_agent_interfaces("pve1", 300).await.unwrap();
        address = proxdesk::integrations::pve::wire::first_ipv4(&ifaces);
        if address.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(address.is_some_and(|a| a.octets()[0] == 10), "{address:?}");
}

#[tokio::test]
async fn post_config_with_a_background_delay_answers_once_done() {
    let pve = Pve::start().await;
    let path = "/nodes/pve2/qemu/101/config";
    assert_eq!(pve.ok("POST", path, &[("cores", "3"), ("background_delay", "5")]).await, serde_json::Value::Null);
    assert_eq!(pve.config("pve2", 101).await["cores"], 3);
    pve.sim.faults().inject_times(Endpoint::QemuConfigPost, Fault::TaskError("disk full".into()), 1);
    let (s, t) = pve.err("POST", path, &[("cores", "4"), ("background_delay", "5")]).await;
    assert_eq!((s, t.as_str()), (500, "failed to update VM 101: disk full"));
    let (s, t) = pve.err("PUT", path, &[("boot", "order=scsi0;ide2")]).await;
    assert_eq!((s, t.as_str()), (500, "invalid bootorder: device 'ide2' does not exist'"));
}
