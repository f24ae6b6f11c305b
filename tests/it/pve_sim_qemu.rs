//! The simulator's QEMU write side on the wire (pve-qemu-day2.md §1, §2, §7): create, clone, config
//! with cloud-init keys and pending changes, discovery. Raw HTTP, so the simulator cannot drift together
//! with the client; tasks are awaited through proxdesk's client.

use std::time::Duration;

use proxdesk::integrations::pve::sim::{SimHandle, Simulator};
use proxdesk::integrations::pve::{Client, Upid};
use serde_json::{Value, json};

use crate::pve_client::{TOKEN_ID, TOKEN_SECRET, config, token_client};
use crate::pve_sim_wire::{Answer, raw};

pub const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt8YbSbGJ6pWAJ3T3ywd2M5tnUnTjQ/g3D3SJfGzpcn alice@lab";

/// A simulator and a client for its tasks.
pub struct Pve {
    pub sim: SimHandle,
    pub client: Client,
}

impl Pve {
    pub async fn start() -> Pve {
        let sim = Simulator::start(config()).await.unwrap();
        let client = token_client(&sim);
        Pve { sim, client }
    }

    /// `METHOD /api2/json<path>` with a form body (or the query for GET/DELETE).
    pub async fn call(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Answer {
        let encoded = serde_urlencoded::to_string(form).unwrap();
        let token = format!("PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}");
        let auth = [("Authorization", token.as_str())];
        if method == "GET" || method == "DELETE" {
            let sep = if encoded.is_empty() { "" } else { "?" };
            raw(&self.sim, method, &format!("/api2/json{path}{sep}{encoded}"), &auth, "").await
        } else {
            raw(&self.sim, method, &format!("/api2/json{path}"), &auth, &encoded).await
        }
    }

    /// The `data` of a 200 answer.
    pub async fn ok(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Value {
        let a = self.call(method, path, form).await;
        assert_eq!(a.status_line, "HTTP/1.1 200 OK", "{method} {path}: {}", a.body);
        a.json()["data"].clone()
    }

    /// A handler error: (status, message without the trailing newline).
    pub async fn err(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let a = self.call(method, path, form).await;
        let status: u16 = a.status_line.split(' ').nth(1).unwrap().parse().unwrap();
        assert_ne!(status, 200, "{method} {path} succeeded: {}", a.body);
        let v = a.json();
        let text = match v.get("errors") {
            Some(errors) => errors.to_string(),
            None => v["message"].as_str().unwrap_or_default().trim_end_matches('\n').to_owned(),
        };
        (status, text)
    }

    /// Starts a task and waits for it: (exit status, log lines).
    pub async fn task(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (String, Vec<String>) {
        let upid = self.ok(method, path, form).await;
        self.wait(upid.as_str().expect("a UPID")).await
    }

    pub async fn wait(&self, upid: &str) -> (String, Vec<String>) {
        let upid: Upid = upid.parse().unwrap();
        for _ in 0..500 {
            let status = self.client.task_status(&upid).await.unwrap();
            if status.status == "stopped" {
                let log = self.client.task_log(&upid, 0, 0).await.unwrap();
                return (status.exitstatus.unwrap(), log.into_iter().map(|l| l.t).collect());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {upid} did not end");
    }

    pub async fn config(&self, node: &str, vmid: u64) -> Value {
        self.ok("GET", &format!("/nodes/{node}/qemu/{vmid}/config"), &[]).await
    }

    /// A linked clone of template 9100 as `newid`, waited for.
    pub async fn clone_template(&self, newid: u64, name: &str) {
        let newid = newid.to_string();
        let form = [("newid", newid.as_str()), ("name", name)];
        let (exit, log) = self.task("POST", "/nodes/pve1/qemu/9100/clone", &form).await;
        assert_eq!(exit, "OK", "{log:?}");
    }
}

/// `encodeURIComponent`: what a client must send as `sshkeys` before the form layer (§2.4).
pub fn encode_keys(keys: &str) -> String {
    keys.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn is_mac_net(v: &Value, rest: &str) -> bool {
    let s = v.as_str().unwrap();
    let (head, tail) = s.split_once(',').unwrap();
    let mac = head.strip_prefix("virtio=BC:24:11:").unwrap_or_default();
    mac.len() == 8 && tail == rest
}

#[tokio::test]
async fn create_locks_at_once_and_writes_the_config_the_way_pve_does() {
    let pve = Pve::start().await;
    let form = [
        ("vmid", "200"),
        ("name", "web1"),
        ("memory", "2048"),
        ("cores", "2"),
        ("sockets", "1"),
        ("cpu", "x86-64-v2-AES"),
        ("ostype", "l26"),
        ("scsihw", "virtio-scsi-single"),
        ("scsi0", "local-lvm:32,iothread=1,discard=on"),
        ("ide2", "local:iso/debian-12.8.0-amd64-netinst.iso,media=cdrom"),
        ("net0", "virtio,bridge=vmbr0,firewall=1"),
        ("agent", "1"),
        ("tags", "Web,lab"),
    ];
    let upid = pve.ok("POST", "/nodes/pve1/qemu", &form).await;
    let upid: Upid = upid.as_str().unwrap().parse().unwrap();
    assert_eq!((upid.task_type.as_str(), upid.id.as_str()), ("qmcreate", "200"));
    let during = pve.config("pve1", 200).await;
    assert_eq!(during["lock"], "create");
    assert_eq!(during.as_object().unwrap().len(), 2, "only the lock and the digest: {during}");
    let (status, text) = pve.err("PUT", "/nodes/pve1/qemu/200/config", &[("cores", "4")]).await;
    assert_eq!((status, text.as_str()), (500, "VM is locked (create)"));
    let (exit, log) = pve.wait(&upid.to_string()).await;
    assert_eq!(exit, "OK");
    assert!(
        log.contains(
            &"scsi0: successfully created disk 'local-lvm:vm-200-disk-0,discard=on,iothread=1,size=32G'".to_owned()
        ),
        "{log:?}"
    );
    let c = pve.config("pve1", 200).await;
    assert_eq!(c["memory"], json!("2048"), "memory is a string");
    assert_eq!((c["cores"].clone(), c["sockets"].clone()), (json!(2), json!(1)), "integers are numbers");
    assert_eq!(c["agent"], json!("1"));
    assert_eq!(c["scsi0"], "local-lvm:vm-200-disk-0,discard=on,iothread=1,size=32G");
    assert_eq!(c["ide2"], "local:iso/debian-12.8.0-amd64-netinst.iso,media=cdrom,size=631M");
    assert!(is_mac_net(&c["net0"], "bridge=vmbr0,firewall=1"), "{}", c["net0"]);
    assert_eq!(c["boot"], "order=scsi0;ide2;net0");
    assert_eq!(c["tags"], "lab;web");
    assert!(c["smbios1"].as_str().unwrap().starts_with("uuid=") && c["vmgenid"].as_str().unwrap().len() == 36);
    assert!(c["meta"].as_str().unwrap().starts_with("creation-qemu=10.1.2,ctime="));
    assert!(c.get("lock").is_none());
    // A new VM's disk is blank: started, its agent does not answer until the OS is installed.
    assert_eq!(pve.task("POST", "/nodes/pve1/qemu/200/status/start", &[]).await.0, "OK");
    let agent = "/nodes/pve1/qemu/200/agent/network-get-interfaces";
    assert_eq!(pve.err("GET", agent, &[]).await.1, "QEMU guest agent is not running");
    assert!(pve.sim.install_os(200));
    let ifaces = pve.ok("GET", agent, &[]).await;
    assert!(ifaces["result"].to_string().contains("\"ipv4\""), "a lease after the install: {ifaces}");
}

/// A create call's form, the status it gets and its text (`""`: any).
type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);

#[tokio::test]
async fn create_refuses_what_pve_refuses() {
    let pve = Pve::start().await;
    let cases: &[Case] = &[
        (&[("vmid", "100")], 500, "unable to create VM 100 - VM 100 already exists on node 'pve1'"),
        (&[("vmid", "9001")], 500, "unable to create VM 9001 - CT 9001 already exists on node 'pve2'"),
        (&[("vmid", "201"), ("scsi0", "local-lvm:32G")], 500, "unable to parse lvm volume name '32G'"),
        (&[("vmid", "201"), ("scsi0", "32")], 500, "no storage ID specified (and no default storage)"),
        (&[("vmid", "201"), ("scsi0", "nope:32")], 500, "storage 'nope' does not exist"),
        (&[("vmid", "201"), ("scsi0", "local:32")], 400, r#"{"storage":"storage 'local' does not support vm images"}"#),
        (
            &[("vmid", "201"), ("ide2", "local:iso/debian-12.8.0-amd64-netinst.iso")],
            400,
            r#"{"ide2":"explicit 'media=cdrom' is required for iso images"}"#,
        ),
        (
            &[("vmid", "201"), ("net0", "bridge=vmbr0")],
            400,
            r#"{"net0":"invalid format - format error\nnet0.model: property is missing and it is not optional\n"}"#,
        ),
        (&[("vmid", "201"), ("sshkeys", KEY)], 400, ""),
    ];
    for (form, status, text) in cases {
        let (s, t) = pve.err("POST", "/nodes/pve1/qemu", form).await;
        assert_eq!(s, *status, "{form:?}: {t}");
        if !text.is_empty() {
            assert_eq!(t, *text, "{form:?}");
        }
    }
    // A missing ISO is only found by the worker, which removes the config again.
    let form = [("vmid", "201"), ("ide2", "local:iso/nope.iso,media=cdrom")];
    let (exit, _) = pve.task("POST", "/nodes/pve1/qemu", &form).await;
    assert_eq!(exit, "unable to create VM 201 - volume local:iso/nope.iso does not exist");
    let (_, t) = pve.err("GET", "/nodes/pve1/qemu/201/config", &[]).await;
    assert_eq!(t, "Configuration file 'nodes/pve1/qemu-server/201.conf' does not exist");
}

#[tokio::test]
async fn a_failing_autostart_is_a_warning_and_the_vm_stays() {
    let pve = Pve::start().await;
    let form = [("vmid", "202"), ("scsi0", "local-lvm:8"), ("net0", "virtio,bridge=vmbr9"), ("start", "1")];
    let (exit, log) = pve.task("POST", "/nodes/pve1/qemu", &form).await;
    assert_eq!(exit, "WARNINGS: 1");
    assert!(log.contains(&"WARN: bridge 'vmbr9' does not exist".to_owned()), "{log:?}");
    assert_eq!(log.last().unwrap(), "TASK WARNINGS: 1");
    let status = pve.ok("GET", "/nodes/pve1/qemu/202/status/current", &[]).await;
    assert_eq!(status["status"], "stopped");
}

#[tokio::test]
async fn clones_of_one_template_run_side_by_side() {
    let pve = Pve::start().await;
    let a = pve.ok("POST", "/nodes/pve1/qemu/9100/clone", &[("newid", "300"), ("name", "alice-vm")]).await;
    let b = pve.ok("POST", "/nodes/pve1/qemu/9100/clone", &[("newid", "301")]).await;
    let upid: Upid = a.as_str().unwrap().parse().unwrap();
    assert_eq!((upid.task_type.as_str(), upid.id.as_str()), ("qmclone", "9100"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let during = pve.config("pve1", 300).await;
    assert_eq!((during["lock"].clone(), during.as_object().unwrap().len()), (json!("clone"), 2), "{during}");
    assert!(pve.config("pve1", 9100).await.get("lock").is_none(), "the source carries no lock");
    let (ea, eb) = (pve.wait(a.as_str().unwrap()).await, pve.wait(b.as_str().unwrap()).await);
    assert_eq!((ea.0.as_str(), eb.0.as_str()), ("OK", "OK"), "{ea:?} {eb:?}");
    assert!(ea.1.contains(&"create linked clone of drive scsi0 (local-lvm:base-9100-disk-0)".to_owned()), "{:?}", ea.1);
    let (t, c) = (pve.config("pve1", 9100).await, pve.config("pve1", 300).await);
    assert_eq!(c["name"], "alice-vm");
    assert_eq!(pve.config("pve1", 301).await["name"], "Copy-of-VM-debian-12-cloud");
    assert_eq!(c["scsi0"], "local-lvm:base-9100-disk-0/vm-300-disk-0,size=2G");
    assert_eq!(c["ide2"], "local-lvm:vm-300-cloudinit,media=cdrom");
    assert_ne!(c["net0"], t["net0"], "a new MAC");
    assert_ne!(c["smbios1"], t["smbios1"]);
    assert!(c.get("template").is_none() && c.get("lock").is_none());
    assert_eq!(c["serial0"], "socket");
}

#[tokio::test]
async fn a_clone_to_a_taken_id_fails_where_pve_notices() {
    let pve = Pve::start().await;
    let path = "/nodes/pve1/qemu/9100/clone";
    // This node's QEMU config of that VMID is seen before the worker starts…
    let (s, t) = pve.err("POST", path, &[("newid", "100")]).await;
    assert_eq!((s, t.as_str()), (500, "unable to create VM 100: config file already exists"));
    // …a VM on another node or a container only when the worker writes the file.
    for newid in ["101", "9000"] {
        let (exit, _) = pve.task("POST", path, &[("newid", newid)]).await;
        let file = format!("/etc/pve/nodes/pve1/qemu-server/{newid}.conf");
        assert_eq!(exit, format!("close (rename) atomic file '{file}' failed: File exists"));
    }
    let (s, t) = pve.err("POST", path, &[("newid", "302"), ("storage", "local-lvm")]).await;
    assert_eq!((s, t.as_str()), (500, "parameter 'storage' not allowed for linked clones"));
    let (s, t) = pve.err("POST", path, &[("newid", "302"), ("full", "1"), ("storage", "local")]).await;
    assert_eq!((s, t.as_str()), (400, r#"{"storage":"storage 'local' does not support vm images"}"#));
    let (exit, log) = pve.task("POST", path, &[("newid", "302"), ("full", "1")]).await;
    assert_eq!(exit, "OK");
    assert!(log.contains(&"create full clone of drive scsi0 (local-lvm:base-9100-disk-0)".to_owned()));
    assert_eq!(pve.config("pve1", 302).await["scsi0"], "local-lvm:vm-302-disk-0,size=2G");
}

#[tokio::test]
async fn cloud_init_keys_are_checked_and_stored_like_pve() {
    let pve = Pve::start().await;
    pve.clone_template(300, "alice-vm").await;
    let path = "/nodes/pve1/qemu/300/config";
    let encoded = encode_keys(KEY);
    assert_eq!(pve.ok("PUT", path, &[("sshkeys", &encoded)]).await, Value::Null);
    assert_eq!(pve.config("pve1", 300).await["sshkeys"], json!(encoded), "stored still encoded");
    let (s, t) = pve.err("PUT", path, &[("sshkeys", KEY)]).await;
    let expected = json!({"sshkeys": format!("invalid format - invalid urlencoded string: {KEY}\n")});
    assert_eq!((s, t), (400, expected.to_string()));
    let (s, t) = pve.err("PUT", path, &[("sshkeys", &encode_keys(&encoded))]).await;
    assert_eq!((s, t.as_str()), (500, "SSH public key validation error"));

    assert_eq!(pve.ok("PUT", path, &[("cipassword", "s3cret-Pass")]).await, Value::Null);
    assert_eq!(pve.config("pve1", 300).await["cipassword"], "**********");
    let stored = pve.sim.state().guests[&300].config["cipassword"].clone();
    assert!(stored.starts_with("$5$"), "{stored}");
    assert!(proxdesk::integrations::pve::sim::sha256_crypt::verify("s3cret-Pass", &stored));

    let (s, t) = pve.err("PUT", path, &[("ipconfig0", "ip=auto")]).await;
    let text = "invalid format - format error\nipconfig0.ip: invalid format - value does not look like a valid ipv4 network configuration\n\n";
    assert_eq!((s, t), (400, json!({"ipconfig0": text}).to_string()));
    let (s, _) = pve.err("PUT", path, &[("ipconfig0", "ip=192.0.2.50/24,gw=192.0.2.1,dns=192.0.2.53")]).await;
    assert_eq!(s, 400);
    pve.ok("PUT", path, &[("ipconfig0", "ip=192.0.2.50/24,gw=192.0.2.1")]).await;
    let digest = "0000000000000000000000000000000000000000";
    let (s, t) = pve.err("PUT", path, &[("ciuser", "alice"), ("digest", digest)]).await;
    assert_eq!((s, t.as_str()), (500, "checksum mismatch (file change by other user?)"));
}

#[tokio::test]
async fn a_start_rebuilds_the_cloud_init_record_from_the_config() {
    let pve = Pve::start().await;
    pve.clone_template(300, "alice-vm").await;
    let two = format!("{KEY}\n\n{KEY}");
    let form = [
        ("ciuser", "alice"),
        ("cipassword", "s3cret-Pass"),
        ("sshkeys", &encode_keys(&two)),
        ("ipconfig0", "ip=192.0.2.50/24,gw=192.0.2.1"),
        ("nameserver", "192.0.2.53"),
        ("searchdomain", "lab.example"),
    ];
    pve.ok("PUT", "/nodes/pve1/qemu/300/config", &form).await;
    assert!(pve.sim.state().guests[&300].cloudinit.is_none(), "nothing generated before a start");
    let (exit, log) = pve.task("POST", "/nodes/pve1/qemu/300/status/start", &[]).await;
    assert_eq!(exit, "OK");
    assert!(log.contains(&"generating cloud-init ISO".to_owned()));
    let image = pve.sim.state().guests[&300].cloudinit.clone().unwrap();
    assert_eq!((image.user.as_deref(), image.hostname.as_str()), (Some("alice"), "alice-vm"));
    assert!(image.password_hashed() && image.password_matches("s3cret-Pass"));
    assert_eq!(image.ssh_keys, [KEY, KEY]);
    assert_eq!(image.ipconfig0.as_deref(), Some("ip=192.0.2.50/24,gw=192.0.2.1"));
    assert_eq!((image.nameserver.as_deref(), image.searchdomain.as_deref()), (Some("192.0.2.53"), Some("lab.example")));
    let ifaces = pve.client.qemu_agent_interfaces("pve1", 300).await.unwrap();
    assert_eq!(proxdesk::integrations::pve::wire::first_ipv4(&ifaces), Some("192.0.2.50".parse().unwrap()));
    // Cloud-init keys reach a running VM's config at once, its image only at the next start.
    pve.ok("PUT", "/nodes/pve1/qemu/300/config", &[("ipconfig0", "ip=192.0.2.51/24,gw=192.0.2.1")]).await;
    assert_eq!(
        pve.sim.state().guests[&300].cloudinit.as_ref().unwrap().ipconfig0.as_deref(),
        image.ipconfig0.as_deref()
    );
    assert_eq!(pve.task("POST", "/nodes/pve1/qemu/300/status/reboot", &[]).await.0, "OK");
    let rebuilt = pve.sim.state().guests[&300].cloudinit.clone().unwrap();
    assert_eq!(rebuilt.ipconfig0.as_deref(), Some("ip=192.0.2.51/24,gw=192.0.2.1"));
}

#[tokio::test]
async fn storage_content_and_network_have_pves_shapes() {
    let pve = Pve::start().await;
    let isos = pve.ok("GET", "/nodes/pve1/storage/local/content", &[("content", "iso")]).await;
    let volids: Vec<&str> = isos.as_array().unwrap().iter().map(|i| i["volid"].as_str().unwrap()).collect();
    assert_eq!(
        volids,
        [
            "local:iso/alpine-virt-3.20.3-x86_64.iso",
            "local:iso/debian-12.8.0-amd64-netinst.iso",
            "local:iso/ubuntu-24.04.1-live-server-amd64.iso"
        ]
    );
    assert_eq!(
        isos[1],
        json!({"volid": "local:iso/debian-12.8.0-amd64-netinst.iso", "content": "iso", "format": "iso",
               "size": 661_651_456u64, "ctime": 1_731_700_000})
    );
    assert_eq!(pve.ok("GET", "/nodes/pve1/storage/local-lvm/content", &[("content", "iso")]).await, json!([]));
    let (s, t) = pve.err("GET", "/nodes/pve1/storage/local/content", &[("content", "isos")]).await;
    assert_eq!((s, t), (400, json!({"content": "invalid format - invalid content type 'isos'\n"}).to_string()));
    let (_, t) = pve.err("GET", "/nodes/pve1/storage/nope/content", &[]).await;
    assert_eq!(t, "storage 'nope' does not exist");
    let images =
        pve.ok("GET", "/nodes/pve1/storage/local-lvm/content", &[("content", "images"), ("vmid", "9100")]).await;
    assert_eq!(images[0]["volid"], "local-lvm:base-9100-disk-0");
    let iso_storages = pve.ok("GET", "/nodes/pve1/storage", &[("content", "iso")]).await;
    assert_eq!(iso_storages.as_array().unwrap().len(), 1);
    assert_eq!(iso_storages[0]["storage"], "local");

    let nets = pve.ok("GET", "/nodes/pve2/network", &[("type", "any_bridge")]).await;
    let names: Vec<&str> = nets.as_array().unwrap().iter().map(|n| n["iface"].as_str().unwrap()).collect();
    assert_eq!(names, ["vmbr0", "vmbr1", "lab10"]);
    assert_eq!(nets[2], json!({"iface": "lab10", "type": "vnet", "active": "1", "ipam": 0, "vlanaware": 0}));
    assert_eq!((nets[0]["active"].clone(), nets[0]["cidr"].clone()), (json!(1), json!("192.0.2.10/24")));
    assert_eq!(nets[1]["bridge_ports"], "");
    let local = pve.ok("GET", "/nodes/pve2/network", &[("type", "any_local_bridge")]).await;
    assert_eq!(local.as_array().unwrap().len(), 2);
}
