//! The PVE client against the simulator: every endpoint, both auth modes, TLS modes, faults, tasks.

use std::time::Duration;

use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig, SimHandle, Simulator, admin_acl};
use proxdesk::integrations::pve::wire::{CloneRequest, LxcConfigUpdate, QemuConfigUpdate, ResizeRequest, first_ipv4};
use proxdesk::integrations::pve::{
    Client, PveAuth, PveConfig, PveError, TlsMode, Upid, WaitOptions, parse_fingerprint,
};
use proxdesk::secrets::Secret;

pub const TOKEN_ID: &str = "portal@pve!svc";
pub const TOKEN_SECRET: &str = "6f1c1a52-8f2e-4c47-9d55-0d3b8a3e9c11";

pub fn config() -> SimConfig {
    SimConfig::for_tests().with_token(TOKEN_ID, TOKEN_SECRET, admin_acl()).with_user(
        "portal@pve",
        "portal-password",
        admin_acl(),
    )
}

pub async fn sim() -> SimHandle {
    Simulator::start(config()).await.unwrap()
}

fn token_auth() -> PveAuth {
    PveAuth::Token { id: TOKEN_ID.into(), secret: Secret::new(TOKEN_SECRET.into()) }
}

pub fn token_client(sim: &SimHandle) -> Client {
    Client::new(PveConfig::new(sim.url(), token_auth()).unwrap()).unwrap()
}

fn password_client(sim: &SimHandle, user: &str, password: &str) -> Client {
    let auth = PveAuth::Password { user: user.into(), password: Secret::new(password.into()) };
    Client::new(PveConfig::new(sim.url(), auth).unwrap()).unwrap()
}

pub fn quick() -> WaitOptions {
    WaitOptions {
        deadline: Duration::from_secs(5),
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(50),
    }
}

#[tokio::test]
async fn cluster_reads_return_typed_answers() {
    let sim = sim().await;
    let pve = token_client(&sim);
    assert_eq!(pve.version().await.unwrap().release, "9.2");
    let nodes: Vec<String> = pve.nodes().await.unwrap().into_iter().map(|n| n.node).collect();
    assert_eq!(nodes, ["pve1", "pve2", "pve3"]);
    let resources = pve.cluster_resources(Some("vm")).await.unwrap();
    assert!(resources.iter().any(|r| r.vmid == Some(9000) && r.template == Some(1) && r.kind == "lxc"));
    assert!(resources.iter().any(|r| r.vmid == Some(100) && r.kind == "qemu"));
    assert_eq!(pve.next_id().await.unwrap(), 103);
    assert!(!pve.is_vmid_free(9000).await.unwrap());
    assert!(pve.is_vmid_free(5000).await.unwrap());
    assert_eq!(pve.pools().await.unwrap()[0].poolid, "proxdesk");
    let storage = pve.storage("pve1", Some("rootdir")).await.unwrap();
    assert_eq!(storage.iter().map(|s| s.storage.as_str()).collect::<Vec<_>>(), ["local-lvm"]);
    let cts = pve.lxc_list("pve1").await.unwrap();
    assert!(cts.iter().any(|c| c.vmid == 9000 && c.is_template()));
}

#[tokio::test]
async fn clone_configure_resize_start_and_delete_a_container() {
    let sim = sim().await;
    let pve = token_client(&sim);
    let newid = pve.next_id().await.unwrap();
    let req = CloneRequest { newid, hostname: Some("alice-dev".into()), ..Default::default() };
    let upid = pve.lxc_clone("pve1", 9000, &req).await.unwrap();
    assert_eq!((upid.task_type.as_str(), upid.id.as_str(), upid.user.as_str()), ("vzclone", "9000", TOKEN_ID));
    assert_eq!(pve.wait_task(&upid, quick()).await.unwrap().exit_status, "OK");

    let update = LxcConfigUpdate {
        cores: Some(2),
        memory: Some(1024),
        description: Some("Owner: alice".into()),
        tags: Some("Portal,dev".into()),
        onboot: Some(true),
        ..Default::default()
    };
    pve.lxc_update_config("pve1", newid, &update).await.unwrap();
    let resize = ResizeRequest { disk: "rootfs".into(), size: "+2G".into() };
    pve.wait_task(&pve.lxc_resize("pve1", newid, &resize).await.unwrap(), quick()).await.unwrap();
    let config = pve.lxc_config("pve1", newid).await.unwrap();
    assert_eq!((config.cores, config.memory), (Some(2), Some(1024)));
    assert_eq!(config.description.as_deref(), Some("Owner: alice\n"));
    assert_eq!(config.tags.as_deref(), Some("dev;portal"));
    assert_eq!(config.rootfs.as_deref(), Some(&*format!("local-lvm:vm-{newid}-disk-0,size=10G")));
    assert_eq!(config.hostname.as_deref(), Some("alice-dev"));
    assert!(config.net0.as_deref().unwrap().contains("hwaddr=BC:24:11:"));

    assert!(pve.lxc_interfaces("pve1", newid).await.unwrap().is_none(), "stopped CT has no interfaces");
    pve.wait_task(&pve.lxc_start("pve1", newid).await.unwrap(), quick()).await.unwrap();
    assert!(pve.lxc_status("pve1", newid).await.unwrap().is_running());
    let ip = loop {
        let ifaces = pve.lxc_interfaces("pve1", newid).await.unwrap().unwrap();
        assert_eq!(ifaces[0].name, "lo");
        if let Some(ip) = first_ipv4(&ifaces) {
            break ip;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ip.octets()[0], 10);

    let state = sim.state();
    let created: Vec<_> = state.containers().into_iter().filter(|g| !g.is_template()).collect();
    assert_eq!(created.len(), 1, "exactly one container was created");
    assert_eq!(created[0].config["cores"], "2");
    assert_eq!(created[0].node, "pve1");

    let e = pve.lxc_delete("pve1", newid, true).await.unwrap_err();
    assert!(
        matches!(e, PveError::Api { status: 500, ref message } if message.contains("container is running")),
        "{e:?}"
    );
    pve.wait_task(&pve.lxc_reboot("pve1", newid).await.unwrap(), quick()).await.unwrap();
    pve.wait_task(&pve.lxc_shutdown("pve1", newid).await.unwrap(), quick()).await.unwrap();
    let e = pve.lxc_stop("pve1", newid).await.unwrap_err();
    assert!(e.to_string().contains(&format!("CT {newid} not running")), "{e}");
    pve.wait_task(&pve.lxc_start("pve1", newid).await.unwrap(), quick()).await.unwrap();
    pve.wait_task(&pve.lxc_stop("pve1", newid).await.unwrap(), quick()).await.unwrap();
    pve.wait_task(&pve.lxc_delete("pve1", newid, true).await.unwrap(), quick()).await.unwrap();
    assert!(matches!(pve.lxc_status("pve1", newid).await.unwrap_err(), PveError::NotFound(_)));
    let log = pve.task_log(&upid, 0, 0).await.unwrap();
    assert_eq!(log.last().unwrap().t, "TASK OK");
}

#[tokio::test]
async fn clone_of_a_locked_template_fails_with_pves_text() {
    let sim = sim().await;
    let pve = token_client(&sim);
    let first = pve.lxc_clone("pve1", 9000, &CloneRequest { newid: 200, ..Default::default() }).await.unwrap();
    let e = pve.lxc_clone("pve1", 9000, &CloneRequest { newid: 201, ..Default::default() }).await.unwrap_err();
    assert!(
        matches!(e, PveError::Locked { ref lock, ref message } if lock == "disk" && message == "CT is locked (disk)")
    );
    let update = LxcConfigUpdate { cores: Some(2), ..Default::default() };
    let e = pve.lxc_update_config("pve1", 200, &update).await.unwrap_err();
    assert!(matches!(e, PveError::Locked { ref lock, .. } if lock == "create"), "{e:?}");
    // start checks the lock inside its task (pve-api.md §6.4)
    let e = pve.wait_task(&pve.lxc_start("pve1", 200).await.unwrap(), quick()).await.unwrap_err();
    assert!(
        matches!(e, PveError::TaskFailed { ref exit_status, .. } if exit_status == "CT is locked (create)"),
        "{e:?}"
    );
    pve.wait_task(&first, quick()).await.unwrap();
    let e = pve.lxc_clone("pve1", 9000, &CloneRequest { newid: 200, ..Default::default() }).await.unwrap_err();
    assert!(matches!(e, PveError::AlreadyExists(ref m) if m == "CT 200 already exists on node 'pve1'"), "{e:?}");
    assert_eq!(sim.state().containers().len(), 4);
}

#[tokio::test]
async fn invalid_config_is_refused_per_field() {
    let sim = sim().await;
    let pve = token_client(&sim);
    let bad = LxcConfigUpdate { cores: Some(0), hostname: Some("not_a_host".into()), ..Default::default() };
    let e = pve.lxc_update_config("pve1", 9000, &bad).await.unwrap_err();
    let PveError::Parameters(fields) = e else { panic!("{e:?}") };
    assert_eq!(fields["cores"], "value must have a minimum value of 1");
    assert_eq!(fields["hostname"], "invalid format - value does not look like a valid DNS name\n");
}

#[tokio::test]
async fn unknown_guests_and_nodes_are_not_found() {
    let sim = sim().await;
    let pve = token_client(&sim);
    let e = pve.lxc_config("pve1", 4242).await.unwrap_err();
    assert!(
        matches!(e, PveError::NotFound(ref m) if m == "Configuration file 'nodes/pve1/lxc/4242.conf' does not exist")
    );
    assert!(matches!(pve.lxc_status("pve9", 9000).await.unwrap_err(), PveError::NotFound(_)));
    assert!(matches!(pve.lxc_status("pve2", 9000).await.unwrap_err(), PveError::NotFound(_)), "wrong node");
    let fake: Upid = "UPID:pve1:00000001:00000001:00000001:vzstart:9000:portal@pve!svc:".parse().unwrap();
    assert!(matches!(pve.task_status(&fake).await.unwrap_err(), PveError::NotFound(_)));
}

#[tokio::test]
async fn a_token_without_the_privilege_gets_permission_denied_with_the_path() {
    let acl = vec![("/vms".to_owned(), vec!["VM.Audit".to_owned()])];
    let sim = Simulator::start(SimConfig::for_tests().with_token("viewer@pve!ro", "s3cret", acl)).await.unwrap();
    let auth = PveAuth::Token { id: "viewer@pve!ro".into(), secret: Secret::new("s3cret".into()) };
    let pve = Client::new(PveConfig::new(sim.url(), auth).unwrap()).unwrap();
    pve.lxc_status("pve1", 9000).await.unwrap();
    let e = pve.lxc_clone("pve1", 9000, &CloneRequest { newid: 300, ..Default::default() }).await.unwrap_err();
    assert!(
        matches!(e, PveError::PermissionDenied { ref path, ref privilege, .. }
            if path.as_deref() == Some("/vms/9000") && privilege.as_deref() == Some("VM.Clone")),
        "{e:?}"
    );
}

#[tokio::test]
async fn password_login_uses_tickets_and_csrf_for_writes() {
    let sim = sim().await;
    let pve = password_client(&sim, "portal@pve", "portal-password");
    let upid = pve.lxc_clone("pve2", 9001, &CloneRequest { newid: 400, ..Default::default() }).await.unwrap();
    assert_eq!(upid.user, "portal@pve");
    pve.wait_task(&upid, quick()).await.unwrap();
    pve.lxc_update_config("pve2", 400, &LxcConfigUpdate { cores: Some(3), ..Default::default() }).await.unwrap();
    assert_eq!(sim.calls().get(Endpoint::AccessTicket), 1, "one login for all calls");
    let root = password_client(&sim, "root@pam", "proxdesk");
    assert_eq!(root.lxc_config("pve2", 400).await.unwrap().cores, Some(3));
}

#[tokio::test]
async fn wrong_credentials_are_authentication_errors() {
    let sim = sim().await;
    let e = password_client(&sim, "portal@pve", "wrong").version().await.unwrap_err();
    assert!(matches!(e, PveError::Authentication(ref m) if m == "authentication failure"), "{e:?}");
    let auth = PveAuth::Token { id: TOKEN_ID.into(), secret: Secret::new("nope".into()) };
    let e = Client::new(PveConfig::new(sim.url(), auth).unwrap()).unwrap().version().await.unwrap_err();
    assert!(matches!(e, PveError::Authentication(ref m) if m == "Authentication failed!"), "{e:?}");
}

#[tokio::test]
async fn writes_with_a_ticket_but_no_csrf_token_are_refused() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{}/api2/json/access/ticket", sim.url()))
        .form(&[("username", "root@pam"), ("password", "proxdesk")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = login["data"]["ticket"].as_str().unwrap();
    let resp = http
        .post(format!("{}/api2/json/nodes/pve1/lxc/9000/clone", sim.url()))
        .header("Cookie", format!("PVEAuthCookie={ticket}"))
        .form(&[("newid", "500")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.text().await.unwrap(), "");
    assert_eq!(sim.state().containers().len(), 3, "nothing was cloned");
}

async fn tls_sim() -> SimHandle {
    Simulator::start(SimConfig { tls: true, ..config() }).await.unwrap()
}

fn tls_client(sim: &SimHandle, tls: TlsMode) -> Client {
    let mut cfg = PveConfig::new(sim.url(), token_auth()).unwrap();
    cfg.tls = tls;
    Client::new(cfg).unwrap()
}

#[tokio::test]
async fn a_pinned_fingerprint_is_accepted_and_a_mismatch_refused() {
    let sim = tls_sim().await;
    assert!(sim.url().starts_with("https://"));
    let pin = parse_fingerprint(sim.fingerprint().unwrap()).unwrap();
    tls_client(&sim, TlsMode::Fingerprint(pin)).version().await.unwrap();
    let mut other = pin;
    other[0] ^= 0xff;
    let e = tls_client(&sim, TlsMode::Fingerprint(other)).version().await.unwrap_err();
    assert!(matches!(e, PveError::Tls(ref m) if m.contains("fingerprint")), "{e:?}");
    let e = tls_client(&sim, TlsMode::SystemRoots).version().await.unwrap_err();
    assert!(matches!(e, PveError::Tls(_)), "self-signed is not trusted by default: {e:?}");
    tls_client(&sim, TlsMode::Insecure).version().await.unwrap();
}

#[tokio::test]
async fn injected_http_errors_map_to_api_errors_and_reads_retry() {
    let sim = sim().await;
    let pve = token_client(&sim);
    sim.faults().inject_times(Endpoint::Version, Fault::Status { code: 596, message: "Broken pipe".into() }, 1);
    pve.version().await.unwrap();
    assert_eq!(sim.calls().get(Endpoint::Version), 2, "one retry after the 596");
    sim.faults().inject(Endpoint::Nodes, Fault::Status { code: 500, message: "boom".into() });
    let e = pve.nodes().await.unwrap_err();
    assert!(matches!(e, PveError::Api { status: 500, ref message } if message == "boom"), "{e:?}");
    assert_eq!(sim.calls().get(Endpoint::Nodes), 1, "a handler's own error is PVE's answer: never repeated");
    let lock_wait = "can't lock file '/run/lock/lxc/pve-config-9000.lock' - got timeout";
    sim.faults().inject(Endpoint::LxcConfigGet, Fault::Status { code: 500, message: lock_wait.into() });
    let e = pve.lxc_config("pve1", 9000).await.unwrap_err();
    assert!(matches!(e, PveError::Busy(ref m) if m == lock_wait), "{e:?}");
    assert_eq!(sim.calls().get(Endpoint::LxcConfigGet), 3, "lock waits are retried, three attempts in all");
    sim.faults().inject(Endpoint::LxcStart, Fault::Status { code: 596, message: "Connection timed out".into() });
    let e = pve.lxc_start("pve1", 9000).await.unwrap_err();
    assert!(matches!(e, PveError::Api { status: 596, ref message } if message == "Connection timed out"), "{e:?}");
    assert_eq!(sim.calls().get(Endpoint::LxcStart), 1, "writes are never repeated");
}

#[tokio::test]
async fn a_dropped_connection_is_a_connection_error() {
    let sim = sim().await;
    let pve = token_client(&sim);
    sim.faults().inject(Endpoint::LxcStart, Fault::Drop);
    let e = pve.lxc_start("pve1", 9000).await.unwrap_err();
    assert!(matches!(e, PveError::Connection(_)), "{e:?}");
    sim.faults().clear();
    sim.faults().inject_times(Endpoint::Version, Fault::Drop, 1);
    pve.version().await.unwrap();
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let sim = sim().await;
    let mut cfg = PveConfig::new(sim.url(), token_auth()).unwrap();
    cfg.timeout = Duration::from_millis(200);
    let pve = Client::new(cfg).unwrap();
    sim.faults().inject(Endpoint::LxcStop, Fault::Latency(Duration::from_secs(2)));
    let e = pve.lxc_stop("pve1", 100).await.unwrap_err();
    assert!(matches!(e, PveError::Timeout(_)), "{e:?}");
}

#[tokio::test]
async fn task_wait_reports_failure_with_the_log_and_a_deadline() {
    let sim = sim().await;
    let pve = token_client(&sim);
    sim.faults().inject_times(Endpoint::LxcClone, Fault::TaskError("no space left on device".into()), 1);
    let upid = pve.lxc_clone("pve1", 9000, &CloneRequest { newid: 600, ..Default::default() }).await.unwrap();
    let e = pve.wait_task(&upid, quick()).await.unwrap_err();
    let PveError::TaskFailed { exit_status, log_tail, .. } = e else { panic!("{e:?}") };
    assert_eq!(exit_status, "clone failed: no space left on device");
    assert_eq!(log_tail.last().unwrap(), "TASK ERROR: clone failed: no space left on device");
    assert!(!sim.state().guests.contains_key(&600), "the failed clone's target is removed");
    assert!(sim.state().guests[&9000].lock().is_none(), "the source is unlocked");

    let e = pve.wait_task(&pve.lxc_start("pve1", 9000).await.unwrap(), quick()).await.unwrap_err();
    assert!(
        matches!(e, PveError::TaskFailed { ref exit_status, .. } if exit_status == "you can't start a CT if it's a template")
    );

    sim.faults().inject(Endpoint::LxcClone, Fault::TaskHang);
    let upid = pve.lxc_clone("pve1", 9000, &CloneRequest { newid: 601, ..Default::default() }).await.unwrap();
    let opts = WaitOptions { deadline: Duration::from_millis(150), ..quick() };
    assert!(matches!(pve.wait_task(&upid, opts).await.unwrap_err(), PveError::TaskRunning { .. }));
    assert_eq!(sim.state().guests[&601].lock(), Some("create"), "a running clone keeps its target locked");

    // Stopping the task ends it in its error path: target removed, both locks released (§4.5, §6.2).
    pve.stop_task(&upid).await.unwrap();
    let e = pve.wait_task(&upid, quick()).await.unwrap_err();
    let PveError::TaskFailed { exit_status, log_tail, .. } = e else { panic!("{e:?}") };
    assert_eq!(exit_status, "clone failed: received interrupt");
    assert_eq!(log_tail.last().unwrap(), "TASK ERROR: clone failed: received interrupt");
    assert!(!sim.state().guests.contains_key(&601), "the stopped clone's target is removed");
    assert!(sim.state().guests[&9000].lock().is_none(), "the source is unlocked");
    pve.stop_task(&upid).await.expect("stopping a stopped task is a no-op");
    let unknown: Upid = upid.to_string().replace(":vzclone:", ":vzstart:").parse().unwrap();
    let e = pve.stop_task(&unknown).await.unwrap_err();
    assert!(matches!(&e, PveError::NotFound(m) if m == "no such task"), "{e:?}");
}

#[tokio::test]
async fn qemu_status_config_and_agent_interfaces() {
    let sim = sim().await;
    let pve = token_client(&sim);
    let status = pve.qemu_status("pve1", 100).await.unwrap();
    assert!(status.is_running());
    assert_eq!(status.agent, Some(1));
    let config = pve.qemu_config("pve1", 100).await.unwrap();
    assert_eq!(config.memory, Some(2048));
    assert_eq!(config.description.as_deref(), Some("Owner: alice\nPurpose: legacy web\n\nguac: rdp 3389"));
    let ifaces = pve.qemu_agent_interfaces("pve1", 100).await.unwrap();
    assert!(first_ipv4(&ifaces).is_some());
    let e = pve.qemu_agent_interfaces("pve3", 102).await.unwrap_err();
    assert!(
        matches!(e, PveError::AgentUnavailable { configured: false, ref message } if message == "No QEMU guest agent configured")
    );
    let ticket = pve.qemu_vncproxy("pve1", 100).await.unwrap();
    assert_eq!(ticket.password.as_deref().map(str::len), Some(8));
    assert!(ticket.ticket.starts_with(ticket.password.as_deref().unwrap()));
}

#[tokio::test]
async fn notes_written_with_a_stale_digest_are_refused_on_both_guest_kinds() {
    let sim = sim().await;
    let pve = token_client(&sim);
    // QEMU: the digest read with the config lets exactly one write through.
    let read = pve.qemu_config("pve1", 100).await.unwrap();
    let mine = QemuConfigUpdate {
        description: Some("mine\n\nkept".into()),
        digest: Some(read.digest.clone()),
        ..Default::default()
    };
    pve.qemu_update_config("pve1", 100, &mine).await.unwrap();
    let after = pve.qemu_config("pve1", 100).await.unwrap();
    assert_eq!(after.description.as_deref(), Some("mine\n\nkept"), "QEMU reads back without a final newline");
    assert_ne!(after.digest, read.digest);
    let stale = QemuConfigUpdate { description: Some("theirs".into()), ..mine };
    let e = pve.qemu_update_config("pve1", 100, &stale).await.unwrap_err();
    // QEMU words it differently from LXC (pve-qemu-day2.md §11).
    assert!(
        matches!(e, PveError::ConfigChanged(ref m) if m == "checksum mismatch (file change by other user?)"),
        "{e:?}"
    );
    assert_eq!(pve.qemu_config("pve1", 100).await.unwrap().description.as_deref(), Some("mine\n\nkept"));
    // "0" is Perl-false: QEMU drops the notes.
    pve.qemu_update_config("pve1", 100, &QemuConfigUpdate { description: Some("0".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(pve.qemu_config("pve1", 100).await.unwrap().description, None);
    // LXC likewise, reading back a newline per line.
    let read = pve.lxc_config("pve1", 9000).await.unwrap();
    let mine =
        LxcConfigUpdate { description: Some("a\nb".into()), digest: Some(read.digest.clone()), ..Default::default() };
    pve.lxc_update_config("pve1", 9000, &mine).await.unwrap();
    assert_eq!(pve.lxc_config("pve1", 9000).await.unwrap().description.as_deref(), Some("a\nb\n"));
    let e = pve.lxc_update_config("pve1", 9000, &mine).await.unwrap_err();
    assert!(matches!(e, PveError::ConfigChanged(_)), "{e:?}");
    // A guest of the other kind is not found, as on PVE.
    let x = QemuConfigUpdate { description: Some("x".into()), ..Default::default() };
    let e = pve.qemu_update_config("pve1", 9000, &x).await.unwrap_err();
    assert!(matches!(e, PveError::NotFound(_)), "{e:?}");
}

#[tokio::test]
async fn check_reports_templates_and_missing_privileges() {
    use proxdesk::domain::guest::MachineKind;
    use proxdesk::integrations::pve::check::{self, CatalogTemplate, TemplateState};
    let acl = vec![("/vms".to_owned(), vec!["VM.Audit".to_owned(), "VM.Clone".to_owned()])];
    let sim = Simulator::start(config().with_token("narrow@pve!tk", "s", acl)).await.unwrap();
    let pve = token_client(&sim);
    pve.wait_task(
        &pve.lxc_clone("pve1", 9000, &CloneRequest { newid: 700, ..Default::default() }).await.unwrap(),
        quick(),
    )
    .await
    .unwrap();
    let catalog =
        [("debian", "pve1", 9000), ("gone", "pve1", 9999), ("plain", "pve1", 700)].map(|(name, node, vmid)| {
            CatalogTemplate {
                name: name.into(),
                kind: MachineKind::Lxc,
                node: node.into(),
                vmid,
                nodes: vec![],
                isos: vec![],
            }
        });
    let report = check::run(&pve, &catalog).await.unwrap();
    let states: Vec<_> = report.templates.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(states, [TemplateState::Ok, TemplateState::Missing, TemplateState::NotATemplate]);
    assert!(report.privileges.iter().all(|p| p.2));

    let auth = PveAuth::Token { id: "narrow@pve!tk".into(), secret: Secret::new("s".into()) };
    let narrow = Client::new(PveConfig::new(sim.url(), auth).unwrap()).unwrap();
    let report = check::run(&narrow, &catalog[..1]).await.unwrap();
    let missing: Vec<&str> = report.privileges.iter().filter(|p| !p.2).map(|p| p.0).collect();
    assert!(missing.contains(&"VM.Allocate") && missing.contains(&"Sys.Audit") && !missing.contains(&"VM.Clone"));
    assert!(!report.all_ok());
    assert!(report.to_string().contains("VM.Allocate               /vms                       missing"));
}

#[tokio::test]
async fn a_ticket_client_logs_in_again_once_after_a_401() {
    let sim = sim().await;
    let pve = password_client(&sim, "portal@pve", "portal-password");
    pve.version().await.unwrap();
    sim.revoke_tickets();
    pve.lxc_update_config("pve1", 9000, &LxcConfigUpdate { cores: Some(2), ..Default::default() }).await.unwrap();
    assert_eq!(sim.calls().get(Endpoint::AccessTicket), 2, "logged in again after the ticket was refused");
    assert_eq!(sim.state().guests[&9000].config["cores"], "2");
}

/// PVE acted, then its answer was lost: the client reports an error whose outcome is unknown, and the
/// simulator's state shows the call took effect (so a caller must look before sending it again).
#[tokio::test]
async fn answers_lost_after_pve_acted_are_errors_with_an_unknown_outcome() {
    let sim = sim().await;
    let mut config = PveConfig::new(sim.url(), token_auth()).unwrap();
    config.timeout = Duration::from_millis(500);
    let pve = Client::new(config).unwrap();

    sim.faults().inject_times(
        Endpoint::LxcClone,
        Fault::AppliedThenStatus { code: 596, message: "Broken pipe".into() },
        1,
    );
    let newid = pve.next_id().await.unwrap();
    let req = CloneRequest { newid, hostname: Some("lost-reply".into()), ..Default::default() };
    let e = pve.lxc_clone("pve1", 9000, &req).await.unwrap_err();
    assert!(matches!(e, PveError::Api { status: 596, .. }) && e.outcome_unknown(), "{e:?}");
    assert!(sim.state().guests.contains_key(&newid), "the clone was carried out although its answer was lost");
    assert_eq!(sim.calls().get(Endpoint::LxcClone), 1, "writes are never repeated");

    sim.faults().inject_times(Endpoint::LxcConfigPut, Fault::AppliedThenDrop, 1);
    let mut waited = 0;
    while sim.state().guests[&newid].lock().is_some() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    let update = LxcConfigUpdate { cores: Some(3), ..Default::default() };
    let e = pve.lxc_update_config("pve1", newid, &update).await.unwrap_err();
    assert!(matches!(e, PveError::Connection(_)) && e.outcome_unknown(), "{e:?}");
    assert_eq!(sim.state().guests[&newid].config["cores"], "3", "the config was written before the drop");

    sim.faults().inject_times(Endpoint::LxcStart, Fault::AppliedThenDelay(Duration::from_secs(2)), 1);
    let e = pve.lxc_start("pve1", newid).await.unwrap_err();
    assert!(matches!(e, PveError::Timeout(_)) && e.outcome_unknown(), "{e:?}");
    let started = sim.state().tasks.values().any(|t| t.upid.task_type == "vzstart" && t.upid.id == newid.to_string());
    assert!(started, "the start task runs although its answer timed out");
}
