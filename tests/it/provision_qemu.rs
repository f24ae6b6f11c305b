//! Approved request → ready QEMU VM, for both QEMU kinds, through the server and the PVE simulator: what
//! cloud-init hands the guest (decoded from the simulator's image) is what the owner asked for, static
//! addresses come from the entry's pool one per request, an ISO VM runs its installer on the freest node.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use proxdesk::domain::guest_marker::GuestMarker;
use proxdesk::integrations::pve::sim::{Endpoint, Guest, GuestKind, SimConfig};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait};
use serde_json::{Value, json};

use crate::provision_faults::{Desk, actions, desk, reason};

pub const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt8YbSbGJ6pWAJ3T3ywd2M5tnUnTjQ/g3D3SJfGzpcn alice@laptop";
pub const DEBIAN_ISO: &str = "local:iso/debian-12.8.0-amd64-netinst.iso";

/// Turns catalog entry `id` into a cloud-init entry of VM template 9100 on pve1: linked clones, DHCP
/// unless a `pool` (`first-last/prefix`, gateway) is given, bridges `bridges` allowed.
pub async fn make_cloudinit(db: &DatabaseConnection, id: i64, pool: Option<(&str, &str)>, bridges: &str) {
    let mut t: entities::template::ActiveModel =
        entities::template::Entity::find_by_id(id).one(db).await.unwrap().unwrap().into();
    t.kind = Set("qemu-cloudinit".into());
    t.node = Set("pve1".into());
    t.vmid = Set(9100);
    t.full_clone = Set(false);
    t.finish_mode = Set("none".into());
    t.bridges = Set(bridges.into());
    t.ip_pool = Set(pool.map(|p| p.0.to_owned()));
    t.gateway = Set(pool.map(|p| p.1.to_owned()));
    t.update(db).await.unwrap();
}

/// Turns catalog entry `id` into an ISO entry on `nodes` (the Debian installer, local-lvm, vmbr1).
pub async fn make_iso(db: &DatabaseConnection, id: i64, nodes: &str) {
    let mut t: entities::template::ActiveModel =
        entities::template::Entity::find_by_id(id).one(db).await.unwrap().unwrap().into();
    t.kind = Set("qemu-iso".into());
    t.node = Set(nodes.split(',').next().unwrap().into());
    t.vmid = Set(0);
    t.nodes = Set(nodes.into());
    t.storages = Set("local-lvm".into());
    t.bridges = Set("vmbr1".into());
    t.isos = Set(format!("{DEBIAN_ISO},local:iso/alpine-virt-3.20.3-x86_64.iso"));
    t.ostype = Set("l26".into());
    t.finish_mode = Set("none".into());
    t.update(db).await.unwrap();
}

/// What the requester chose, as the request form records it.
pub async fn choose(
    db: &DatabaseConnection,
    request: i64,
    storage: Option<&str>,
    bridge: Option<&str>,
    iso: Option<&str>,
) {
    let mut r: entities::request::ActiveModel =
        entities::request::Entity::find_by_id(request).one(db).await.unwrap().unwrap().into();
    r.storage = Set(storage.map(str::to_owned));
    r.bridge = Set(bridge.map(str::to_owned));
    r.iso = Set(iso.map(str::to_owned));
    r.update(db).await.unwrap();
}

/// The address leases, as `(address, request)`.
pub async fn leases(db: &DatabaseConnection) -> Vec<(String, i64)> {
    let all = entities::address_lease::Entity::find().all(db).await.unwrap();
    all.into_iter().map(|l| (l.address, l.request_id)).collect()
}

impl Desk {
    /// Alice asks for `hostname` (2 cores, 2048 MiB, 16 GiB, her key); returns the request id.
    pub async fn submit_vm(&self, hostname: &str) -> i64 {
        let body = json!({"template_id": self.template, "hostname": hostname, "cores": 2, "memory_mib": 2048,
            "disk_gib": 16, "purpose": "course work", "ssh_public_key": KEY});
        let r = self.app.post(&self.alice, "/api/v1/requests", body).await;
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// The admin approves request `id`.
    pub async fn approve_id(&self, id: i64) {
        let r = self.app.post(&self.admin, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_eq!(r.status(), reqwest::StatusCode::OK);
    }

    /// [`Desk::submit_vm`], then approval.
    pub async fn approve_vm(&self, hostname: &str) -> i64 {
        let id = self.submit_vm(hostname).await;
        self.approve_id(id).await;
        id
    }

    /// The new guest carrying request `id`'s marker.
    pub fn guest_of(&self, id: i64) -> Guest {
        let marker = GuestMarker::for_request(id);
        let mut found: Vec<Guest> = self
            .new_guests()
            .into_iter()
            .filter(|g| {
                marker.is_carried_by(
                    g.config.get("description").map(String::as_str),
                    g.config.get("tags").map(String::as_str),
                )
            })
            .collect();
        assert_eq!(found.len(), 1, "one guest for request {id}");
        found.remove(0)
    }

    /// The owner's view of the machine of request `id` (with the revealed password).
    pub async fn machine_of(&self, id: i64) -> Value {
        let m = proxdesk::services::machines::of_request(&self.app.db, id).await.unwrap().expect("a machine");
        let r = self.app.get(&self.alice, &format!("/api/v1/machines/{}", m.id)).await;
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        r.json().await.unwrap()
    }
}

fn text<'a>(g: &'a Guest, key: &str) -> &'a str {
    g.config.get(key).map(String::as_str).unwrap_or_default()
}

#[tokio::test]
async fn a_cloud_init_vm_receives_the_owners_login_password_and_key_and_a_dhcp_address() {
    let d = desk(SimConfig::for_tests(), 2).await;
    make_cloudinit(&d.app.db, d.template, None, "").await;
    let id = d.approve_vm("lab-1").await;
    let done = d.settle(id).await;
    assert_eq!(done["status"], "ready", "{done}");

    let vms = d.new_guests();
    assert_eq!(vms.len(), 1, "exactly one new VM");
    let g = d.guest_of(id);
    assert_eq!(g.kind, GuestKind::Qemu);
    assert!(g.running && g.lock().is_none());
    assert_eq!((text(&g, "name"), text(&g, "cores"), text(&g, "memory")), ("lab-1", "2", "2048"));
    assert_eq!(text(&g, "tags"), format!("proxdesk;proxdesk-request-{id}"));
    assert!(
        text(&g, "scsi0").contains("base-9100-disk-0/vm-") && text(&g, "scsi0").ends_with("size=16G"),
        "{}",
        text(&g, "scsi0")
    );
    assert!(text(&g, "net0").contains("bridge=vmbr0"), "the template's bridge when the entry offers none");

    // What the guest booted with: the owner's login, the password she is shown, her key, DHCP.
    let image = g.cloudinit.clone().expect("a cloud-init image built at start");
    let machine = d.machine_of(id).await;
    let password = machine["password"].as_str().expect("the owner sees a password").to_owned();
    assert_eq!(image.user.as_deref(), Some("alice"));
    assert!(image.password_hashed(), "PVE stored a hash, not the password");
    assert!(image.password_matches(&password), "the guest's password is the one the owner sees");
    assert_eq!(image.ssh_keys, vec![KEY.to_owned()]);
    assert_eq!(image.ipconfig0.as_deref(), Some("ip=dhcp"));
    assert_eq!(image.hostname, "lab-1");
    assert_eq!(machine["login_user"], "alice");
    assert_eq!(machine["ipv4"].as_str(), g.ip.map(|ip| ip.to_string()).as_deref(), "the agent's address");
    for entry in std::fs::read_dir(&d.app.data_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()), "password stored in clear");
    }
    let row = proxdesk::services::machines::of_request(&d.app.db, id).await.unwrap().unwrap();
    assert_eq!((row.kind.as_str(), row.node.as_str(), row.install_media), ("qemu", "pve1", None));

    let steps = actions(&done);
    for step in ["provision.cloned", "provision.configured", "provision.started", "provision.address", "request.ready"]
    {
        assert!(steps.iter().any(|a| a == step), "{step} missing from {steps:?}");
    }
    // One call of each write, and no other guest type's endpoints.
    let calls = d.sim.calls();
    for (endpoint, n) in [
        (Endpoint::QemuClone, 1),
        (Endpoint::QemuConfigPut, 1),
        (Endpoint::QemuResize, 1),
        (Endpoint::QemuStart, 1),
        (Endpoint::QemuCreate, 0),
        (Endpoint::QemuDelete, 0),
        (Endpoint::LxcClone, 0),
        (Endpoint::TaskStop, 0),
    ] {
        assert_eq!(calls.get(endpoint), n, "{endpoint:?}");
    }
}

#[tokio::test]
async fn two_requests_get_two_addresses_of_the_pool_on_the_chosen_bridge_and_a_third_fails_cleanly() {
    let d = desk(SimConfig::for_tests(), 2).await;
    make_cloudinit(&d.app.db, d.template, Some(("192.0.2.100-192.0.2.101/24", "192.0.2.1")), "vmbr0,vmbr1").await;
    let (a, b) = (d.submit_vm("lab-1").await, d.submit_vm("lab-2").await);
    for id in [a, b] {
        choose(&d.app.db, id, None, Some("vmbr1"), None).await;
    }
    tokio::join!(d.approve_id(a), d.approve_id(b));
    let (da, db) = tokio::join!(d.settle(a), d.settle(b));
    assert_eq!((da["status"].as_str(), db["status"].as_str()), (Some("ready"), Some("ready")), "{da}\n{db}");

    let mut addresses = BTreeSet::new();
    for id in [a, b] {
        let g = d.guest_of(id);
        let image = g.cloudinit.clone().unwrap();
        let ip = image.static_ipv4().expect("a static address").0.to_string();
        assert_eq!(image.ipconfig0, Some(format!("ip={ip}/24,gw=192.0.2.1")));
        assert!(text(&g, "net0").contains("bridge=vmbr1"), "{}", text(&g, "net0"));
        let machine = d.machine_of(id).await;
        assert_eq!(machine["ipv4"], ip.as_str(), "the machine shows its static address");
        addresses.insert(ip);
    }
    assert_eq!(addresses, BTreeSet::from(["192.0.2.100".to_owned(), "192.0.2.101".to_owned()]));
    let mut held = leases(&d.app.db).await;
    held.sort();
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!(d.sim.calls().get(Endpoint::QemuAgentInterfaces), 0, "a static address needs no agent");

    // The pool is used up: the third request fails before anything is cloned.
    let c = d.approve_vm("lab-3").await;
    let dc = d.settle(c).await;
    assert_eq!(dc["status"], "failed", "{dc}");
    assert!(reason(&dc).contains("every address of the pool 192.0.2.100-192.0.2.101/24 is in use"), "{}", reason(&dc));
    assert_eq!(d.new_guests().len(), 2, "no VM for the third");
    assert_eq!(d.sim.calls().get(Endpoint::QemuClone), 2);

    // Deleting the first machine gives its address back; the admin's retry of the third gets it.
    let first = d.machine_of(a).await;
    let r =
        d.app.api.delete(d.app.url(&format!("/api/v1/machines/{}", first["id"]))).bearer_auth(&d.alice).send().await;
    assert_eq!(r.unwrap().status(), reqwest::StatusCode::ACCEPTED);
    assert_eq!(d.settle(a).await["status"], "deleted");
    assert!(!leases(&d.app.db).await.iter().any(|(_, r)| *r == a), "the deleted machine's lease is gone");
    d.retry(c).await;
    let dc = d.settle(c).await;
    assert_eq!(dc["status"], "ready", "{dc}");
    assert_eq!(d.machine_of(c).await["ipv4"], first["ipv4"], "the freed address is the lowest free one");
    assert!(actions(&dc).contains(&"address.leased".to_owned()));
}

#[tokio::test]
async fn an_iso_vm_is_created_on_the_freest_node_and_runs_its_installer_without_address_or_password() {
    let d = desk(SimConfig::for_tests(), 2).await;
    make_iso(&d.app.db, d.template, "pve1,pve2,pve3").await;
    // pve1 and pve2 get busy; pve3 has the most free memory.
    d.sim.with_state(|s| {
        s.guests.get_mut(&100).unwrap().config.insert("memory".into(), "8192".into());
        let db_vm = s.guests.get_mut(&101).unwrap();
        db_vm.config.insert("memory".into(), "16384".into());
        db_vm.running = true;
    });
    let id = d.submit_vm("installer-1").await;
    choose(&d.app.db, id, Some("local-lvm"), Some("vmbr1"), Some(DEBIAN_ISO)).await;
    d.approve_id(id).await;
    let done = d.settle(id).await;
    assert_eq!(done["status"], "ready", "{done}");

    let g = d.guest_of(id);
    assert_eq!((g.kind, g.node.as_str()), (GuestKind::Qemu, "pve3"));
    assert!(g.running, "ready means running, to be installed through the console");
    assert!(text(&g, "ide2").starts_with(&format!("{DEBIAN_ISO},media=cdrom")), "{}", text(&g, "ide2"));
    let scsi0 = text(&g, "scsi0");
    assert!(scsi0.starts_with(&format!("local-lvm:vm-{}-disk-0", g.vmid)) && scsi0.contains("size=16G"), "{scsi0}");
    assert!(scsi0.contains("iothread=1") && scsi0.contains("discard=on"), "{scsi0}");
    assert!(text(&g, "net0").starts_with("virtio=") && text(&g, "net0").contains("bridge=vmbr1"));
    assert_eq!((text(&g, "ostype"), text(&g, "scsihw")), ("l26", "virtio-scsi-single"));
    assert_eq!((text(&g, "boot"), text(&g, "agent")), ("order=scsi0;ide2;net0", "1"));
    assert_eq!((text(&g, "name"), text(&g, "cores"), text(&g, "memory")), ("installer-1", "2", "2048"));
    assert!(g.cloudinit.is_none() && g.ip.is_none(), "no OS yet: no address");

    let machine = d.machine_of(id).await;
    assert!(machine["ipv4"].is_null() && machine["password"].is_null() && machine["login_user"].is_null(), "{machine}");
    let row = proxdesk::services::machines::of_request(&d.app.db, id).await.unwrap().unwrap();
    assert_eq!((row.kind.as_str(), row.node.as_str()), ("qemu", "pve3"));
    assert_eq!(row.install_media.as_deref(), Some(DEBIAN_ISO));

    let placed =
        done["timeline"].as_array().unwrap().iter().find(|e| e["action"] == "provision.placed").expect("placed");
    assert_eq!(placed["details"]["node"], "pve3", "{placed}");
    let steps = actions(&done);
    for step in ["provision.placed", "provision.created", "provision.started", "request.ready"] {
        assert!(steps.iter().any(|a| a == step), "{step} missing from {steps:?}");
    }
    assert!(!steps.iter().any(|a| a == "provision.address"), "{steps:?}");
    let calls = d.sim.calls();
    for (endpoint, n) in [
        (Endpoint::QemuCreate, 1),
        (Endpoint::QemuStart, 1),
        (Endpoint::ClusterResources, 1),
        (Endpoint::QemuClone, 0),
        (Endpoint::QemuConfigPut, 0),
        (Endpoint::QemuResize, 0),
        (Endpoint::QemuAgentInterfaces, 0),
    ] {
        assert_eq!(calls.get(endpoint), n, "{endpoint:?}");
    }
}

/// PVE only share-locks a stopped template while cloning it: proxdesk clones one template for several
/// requests at once instead of one after the other.
#[tokio::test]
async fn clones_of_one_vm_template_run_side_by_side() {
    let config = SimConfig { clone_duration: Duration::from_millis(800), ..SimConfig::for_tests() };
    let d = crate::provision_faults::desk_with(config, 2, |raw| raw.set("provision_task_timeout_secs", "5")).await;
    make_cloudinit(&d.app.db, d.template, None, "").await;
    let (a, b, c) = tokio::join!(d.approve_vm("lab-1"), d.approve_vm("lab-2"), d.approve_vm("lab-3"));
    let started = Instant::now();
    let mut most = 0;
    while started.elapsed() < Duration::from_secs(10) {
        let running = d
            .sim
            .state()
            .tasks
            .values()
            .filter(|t| {
                t.upid.task_type == "qmclone" && t.state == proxdesk::integrations::pve::sim::TaskState::Running
            })
            .count();
        most = most.max(running);
        if most == 3 || d.sim.calls().get(Endpoint::QemuStart) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(most, 3, "the three clones of template 9100 overlap");
    for id in [a, b, c] {
        assert_eq!(d.settle(id).await["status"], "ready");
        assert_eq!(d.jobs_of(id).await[0].attempts, 1, "no clone waited for another");
    }
    assert_eq!(d.new_guests().len(), 3);
    assert_eq!(d.sim.calls().get(Endpoint::QemuClone), 3);
}

/// `finish_mode = guest` finishes over SSH to the VM: without proxdesk's SSH key that cannot work, the
/// request fails with the reason, and the started VM is stopped and deleted and its address freed.
#[tokio::test]
async fn a_guest_finish_without_an_ssh_key_fails_and_rolls_back_the_started_vm() {
    let d = desk(SimConfig::for_tests(), 2).await;
    make_cloudinit(&d.app.db, d.template, Some(("198.51.100.20-198.51.100.29/24", "198.51.100.1")), "").await;
    let mut t: entities::template::ActiveModel =
        entities::template::Entity::find_by_id(d.template).one(&d.app.db).await.unwrap().unwrap().into();
    t.finish_mode = Set("guest".into());
    t.update(&d.app.db).await.unwrap();
    let id = d.approve_vm("lab-1").await;
    let done = d.settle(id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(reason(&done).contains("PROXDESK_SSH_KEY_FILE is not set"), "{}", reason(&done));
    assert!(d.new_guests().is_empty(), "the VM was removed");
    assert_eq!(d.sim.calls().get(Endpoint::QemuStop), 1, "stopped before deletion");
    assert_eq!(d.sim.calls().get(Endpoint::QemuDelete), 1);
    assert!(leases(&d.app.db).await.is_empty(), "the address is free again");
    let steps = actions(&done);
    assert!(
        steps.contains(&"provision.rolled_back".to_owned()) && steps.contains(&"address.released".to_owned()),
        "{steps:?}"
    );
}

/// The address is the lease's key: requests allocating from one pool at once each get their own
/// address, the lowest free ones, and nobody gets one once the pool is used up.
#[tokio::test]
async fn requests_allocating_from_one_pool_at_once_never_share_an_address() {
    use proxdesk::domain::guest::Ipv4Pool;
    use proxdesk::services::addresses;

    let app = crate::helpers::spawn_app().await;
    let (admin, _) = app.user("chief", proxdesk::domain::roles::Role::Admin).await;
    let token = app.token(&admin).await;
    let template = app.template("Debian").await;
    let mut ids = vec![];
    for n in 0..5 {
        ids.push(app.submit_ok(&token, template, &format!("lab-{n}")).await);
    }
    let pool = Ipv4Pool::parse("10.9.0.250-10.9.0.253/24").unwrap();
    let tasks: Vec<_> = ids
        .iter()
        .map(|&id| {
            let db = app.db.clone();
            tokio::spawn(async move { addresses::allocate(&db, id, pool).await.unwrap() })
        })
        .collect();
    let mut got = vec![];
    for t in tasks {
        got.push(t.await.unwrap());
    }
    let given: BTreeSet<String> = got.iter().flatten().map(|ip| ip.to_string()).collect();
    assert_eq!(given.len(), 4, "four distinct addresses: {got:?}");
    assert_eq!(given, pool.iter().map(|ip| ip.to_string()).collect());
    let without: Vec<i64> = ids.iter().zip(&got).filter(|(_, ip)| ip.is_none()).map(|(id, _)| *id).collect();
    assert_eq!(without.len(), 1, "the fifth finds the pool used up");

    // Asking again keeps one's address; a released address is the next one handed out.
    let (first, first_ip) = (ids[0], got[0]);
    assert_eq!(addresses::allocate(&app.db, first, pool).await.unwrap(), first_ip);
    assert_eq!(addresses::release(&app.db, first).await.unwrap(), first_ip);
    assert_eq!(addresses::allocate(&app.db, without[0], pool).await.unwrap(), first_ip);
    assert_eq!(leases(&app.db).await.len(), 4);
}

/// The requester's storage is the target of full clones only: a linked clone never names one (PVE
/// refuses `storage` with linked clones), a full clone is made on it (and PVE's refusal of a storage
/// without VM images is the request's reason).
#[tokio::test]
async fn the_chosen_storage_goes_to_full_clones_only() {
    let d = desk(SimConfig::for_tests(), 1).await;
    make_cloudinit(&d.app.db, d.template, None, "").await;
    let linked = d.submit_vm("linked").await;
    choose(&d.app.db, linked, Some("local-lvm"), None, None).await;
    d.approve_id(linked).await;
    assert_eq!(d.settle(linked).await["status"], "ready");
    assert!(text(&d.guest_of(linked), "scsi0").contains("base-9100-disk-0/"), "a linked clone");

    let mut t: entities::template::ActiveModel =
        entities::template::Entity::find_by_id(d.template).one(&d.app.db).await.unwrap().unwrap().into();
    t.full_clone = Set(true);
    t.update(&d.app.db).await.unwrap();
    let full = d.submit_vm("full").await;
    choose(&d.app.db, full, Some("local-lvm"), None, None).await;
    d.approve_id(full).await;
    assert_eq!(d.settle(full).await["status"], "ready");
    let g = d.guest_of(full);
    assert!(text(&g, "scsi0").starts_with(&format!("local-lvm:vm-{}-disk-0,", g.vmid)), "{}", text(&g, "scsi0"));

    let wrong = d.submit_vm("wrong").await;
    choose(&d.app.db, wrong, Some("local"), None, None).await;
    d.approve_id(wrong).await;
    let done = d.settle(wrong).await;
    assert_eq!(done["status"], "failed");
    assert!(reason(&done).contains("storage 'local' does not support vm images"), "{}", reason(&done));
}

/// A container entry with bridges puts the container's `net0` on the requester's bridge.
#[tokio::test]
async fn a_containers_net0_is_on_the_chosen_bridge() {
    let d = desk(SimConfig::for_tests(), 1).await;
    let id = d.app.submit_ok(&d.alice, d.template, "ct-1").await;
    choose(&d.app.db, id, None, Some("vmbr1"), None).await;
    d.approve_id(id).await;
    assert_eq!(d.settle(id).await["status"], "ready");
    let g = d.guest_of(id);
    assert_eq!(g.kind, GuestKind::Lxc);
    assert!(text(&g, "net0").starts_with("name=eth0,bridge=vmbr1,"), "{}", text(&g, "net0"));
    let row = proxdesk::services::machines::of_request(&d.app.db, id).await.unwrap().unwrap();
    assert_eq!(row.kind, "lxc");
}
