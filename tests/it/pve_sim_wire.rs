//! The simulator on the wire (raw HTTP, no client), checked against pve-api.md's examples, so the
//! simulator cannot drift together with the client.

use std::time::{Duration, Instant};

use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::pve_client::{TOKEN_ID, TOKEN_SECRET, config};

pub struct Answer {
    pub status_line: String,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// Sends one raw HTTP/1.1 request and reads the whole answer.
pub async fn raw(sim: &SimHandle, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut s = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: pve\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status_line = head.lines().next().unwrap().to_owned();
    Answer { status_line, head: head.to_owned(), body: body.to_owned() }
}

fn token() -> String {
    format!("PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}")
}

pub async fn get(sim: &SimHandle, path: &str) -> Answer {
    raw(sim, "GET", path, &[("Authorization", &token())], "").await
}

async fn sim() -> SimHandle {
    Simulator::start(config()).await.unwrap()
}

#[tokio::test]
async fn requests_without_credentials_get_401_no_ticket_with_an_empty_body() {
    let sim = sim().await;
    let a = raw(&sim, "GET", "/api2/json/version", &[], "").await;
    assert_eq!(a.status_line, "HTTP/1.1 401 No ticket");
    assert_eq!(a.body, "");
    let a = raw(&sim, "GET", "/api2/json/version", &[("Authorization", "PVEAPIToken=portal@pve!svc=wrong")], "").await;
    assert_eq!(a.status_line, "HTTP/1.1 401 Authentication failed!");
    assert_eq!(a.body, "");
}

#[tokio::test]
async fn the_401_delay_is_kept_unless_turned_off() {
    let delay = Duration::from_millis(300);
    let sim = Simulator::start(SimConfig { auth_failure_delay: delay, ..config() }).await.unwrap();
    let started = Instant::now();
    let a = raw(&sim, "GET", "/api2/json/nodes", &[], "").await;
    assert_eq!(a.status_line, "HTTP/1.1 401 No ticket");
    assert!(started.elapsed() >= delay);
}

#[tokio::test]
async fn answers_use_the_data_envelope_and_pves_headers() {
    let sim = sim().await;
    let a = get(&sim, "/api2/json/cluster/nextid").await;
    assert_eq!(a.status_line, "HTTP/1.1 200 OK");
    assert_eq!(a.body, r#"{"data":"103"}"#, "nextid is a string");
    assert_eq!(a.header("server").as_deref(), Some("pve-api-daemon/3.0"));
    assert_eq!(a.header("content-type").as_deref(), Some("application/json;charset=UTF-8"));
    let a = get(&sim, "/api2/json//version/").await;
    assert_eq!(a.json()["data"]["version"], "9.2.11", "empty segments are ignored");
    let a = get(&sim, "/api2/json/nodes/pve1/lxc/9000/interfaces").await;
    assert_eq!(a.body, r#"{"data":null}"#, "a stopped CT has no interfaces");
}

#[tokio::test]
async fn unknown_paths_are_501_not_implemented() {
    let sim = sim().await;
    let a = get(&sim, "/api2/json/nodes/pve1/foo").await;
    assert_eq!(a.status_line, "HTTP/1.1 501 Method 'GET /nodes/pve1/foo' not implemented");
    assert_eq!(a.json(), json!({"data": null, "message": "Method 'GET /nodes/pve1/foo' not implemented"}));
    assert_eq!(a.header("connection").as_deref(), Some("close"));
    let a = get(&sim, "/api2/xml/version").await;
    assert_eq!(a.status_line, "HTTP/1.1 501 no such uri");
    let a = raw(&sim, "GET", "/api2/json/version", &[("Authorization", &token())], "a=1").await;
    assert_eq!(a.status_line, "HTTP/1.1 501 Unexpected content for method 'GET'");
}

#[tokio::test]
async fn handler_errors_carry_the_message_in_reason_and_body() {
    let sim = sim().await;
    let a = get(&sim, "/api2/json/nodes/pve1/lxc/4242/config").await;
    assert_eq!(a.status_line, "HTTP/1.1 500 Configuration file 'nodes/pve1/lxc/4242.conf' does not exist");
    assert_eq!(
        a.json(),
        json!({"data": null, "message": "Configuration file 'nodes/pve1/lxc/4242.conf' does not exist\n"})
    );
    let a = get(&sim, "/api2/json/nodes/nosuch/lxc").await;
    assert_eq!(
        a.status_line,
        "HTTP/1.1 500 hostname lookup 'nosuch' failed - failed to get address info for: nosuch: Name or service not known"
    );
    let a = get(&sim, "/api2/json/cluster/nextid?vmid=9000").await;
    assert_eq!(a.status_line, "HTTP/1.1 400 Parameter verification failed.");
    assert_eq!(
        a.json(),
        json!({"data": null, "message": "Parameter verification failed.\n", "errors": {"vmid": "VM 9000 already exists"}})
    );
}

#[tokio::test]
async fn form_booleans_are_only_0_and_1_and_unknown_parameters_are_refused() {
    let sim = sim().await;
    let auth = [("Authorization", token())];
    let headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = raw(&sim, "PUT", "/api2/json/nodes/pve1/lxc/9000/config", &headers, "onboot=true&password=x").await;
    assert_eq!(a.status_line, "HTTP/1.1 400 Parameter verification failed.");
    assert_eq!(
        a.json()["errors"],
        json!({
            "onboot": "type check ('boolean') failed - got 'true'",
            "password": "property is not defined in schema and the schema does not allow additional properties",
        })
    );
}

#[tokio::test]
async fn permission_checks_come_first_with_path_and_privilege() {
    let acl = vec![("/vms/9000".to_owned(), vec!["VM.Audit".to_owned()])];
    let sim = Simulator::start(config().with_token("viewer@pve!ro", "s", acl)).await.unwrap();
    let h = [("Authorization", "PVEAPIToken=viewer@pve!ro=s")];
    let a = raw(&sim, "GET", "/api2/json/nodes/pve1/lxc/999/status/current", &h, "").await;
    assert_eq!(a.status_line, "HTTP/1.1 403 Permission check failed (/vms/999, VM.Audit)", "even for a missing guest");
    assert_eq!(a.json(), json!({"data": null, "message": "Permission check failed (/vms/999, VM.Audit)\n"}));
    let a = raw(&sim, "GET", "/api2/json/nodes/pve1/lxc/9000/status/current", &h, "").await;
    assert_eq!(a.json()["data"]["template"], 1);
    let a = raw(&sim, "GET", "/api2/json/nodes/pve1/lxc", &h, "").await;
    assert_eq!(a.json()["data"].as_array().unwrap().len(), 1, "lists are filtered by VM.Audit");
}

#[tokio::test]
async fn ticket_login_and_csrf_follow_pve() {
    let sim = sim().await;
    let a = raw(&sim, "POST", "/api2/json/access/ticket", &[], "username=root@pam&password=proxdesk").await;
    assert_eq!(a.status_line, "HTTP/1.1 200 OK");
    let data = a.json()["data"].clone();
    let ticket = data["ticket"].as_str().unwrap().to_owned();
    let csrf = data["CSRFPreventionToken"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("PVE:root@pam:") && ticket.contains("::"));
    let (time, mac) = csrf.split_once(':').unwrap();
    assert!(time.len() == 8 && time.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
    assert_eq!(mac.len(), 43);
    assert_eq!(data["cap"]["vms"]["VM.Clone"], 1);

    let cookie = format!("PVEAuthCookie={ticket}");
    let a = raw(&sim, "POST", "/api2/json/nodes/pve1/lxc/9000/status/start", &[("Cookie", &cookie)], "").await;
    assert_eq!(a.status_line, "HTTP/1.1 401 Permission denied - invalid csrf token");
    let a = raw(&sim, "POST", "/api2/json/no/such/path", &[("Cookie", &cookie)], "").await;
    assert_eq!(a.status_line, "HTTP/1.1 401 Permission denied - invalid csrf token", "CSRF is checked before routing");
    let h = [("Cookie", cookie.as_str()), ("CSRFPreventionToken", csrf.as_str())];
    let a = raw(&sim, "POST", "/api2/json/nodes/pve1/lxc/9000/status/start", &h, "").await;
    assert_eq!(a.status_line, "HTTP/1.1 200 OK");
    assert!(a.json()["data"].as_str().unwrap().starts_with("UPID:pve1:"));
    let a = get(&sim, "/api2/json/version").await;
    assert_eq!(a.status_line, "HTTP/1.1 200 OK", "GET needs no CSRF");

    let a = raw(&sim, "POST", "/api2/json/access/ticket", &[], "username=root@pam&password=nope").await;
    assert_eq!(a.status_line, "HTTP/1.1 401 authentication failure");
    assert_eq!(a.json(), json!({"data": null, "message": "authentication failure\n"}));
    let body = format!("username=root@pam&password={}", urlencode(&ticket));
    let a = raw(&sim, "POST", "/api2/json/access/ticket", &[], &body).await;
    assert_eq!(a.status_line, "HTTP/1.1 200 OK", "a valid ticket renews itself");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn clone_returns_a_upid_and_tasks_report_like_pve() {
    let sim = sim().await;
    let h = [("Authorization", token())];
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = raw(&sim, "POST", "/api2/json/nodes/pve1/lxc/9000/clone", &h, "newid=150&hostname=web1").await;
    let upid = a.json()["data"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = upid.split(':').collect();
    assert_eq!(parts[0], "UPID");
    assert_eq!(&parts[5..], ["vzclone", "9000", TOKEN_ID, ""]);
    assert!(
        parts[2..5].iter().all(|p| p.len() >= 8 && p.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()))
    );
    let a = get(&sim, "/api2/json/cluster/resources?type=vm").await;
    let target = a.json()["data"].as_array().unwrap().iter().find(|r| r["vmid"] == 150).cloned().unwrap();
    assert_eq!(target["lock"], "create");
    let a = get(&sim, &format!("/api2/json/nodes/pve1/tasks/{upid}/status")).await;
    let status = a.json()["data"].clone();
    assert_eq!((status["user"].clone(), status["tokenid"].clone()), (json!("portal@pve"), json!("svc")));
    assert!(status["status"] == "running" && status.get("exitstatus").is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = get(&sim, &format!("/api2/json/nodes/pve1/tasks/{upid}/status")).await;
    assert_eq!(
        (a.json()["data"]["status"].clone(), a.json()["data"]["exitstatus"].clone()),
        (json!("stopped"), json!("OK"))
    );
    let a = get(&sim, &format!("/api2/json/nodes/pve1/tasks/{}/log", urlencode(&upid))).await;
    let log = a.json();
    assert_eq!(log["total"], 2);
    assert_eq!(
        log["data"][0],
        json!({"n": 1, "t": "create linked clone of mount point rootfs (local-lvm:base-9000-disk-0)"})
    );
    assert_eq!(log["data"][1]["t"], "TASK OK");
    let a = get(&sim, "/api2/json/nodes/pve1/tasks/UPID:garbage/status").await;
    assert_eq!(a.json()["errors"], json!({"upid": "unable to parse worker upid"}));
    let a = get(&sim, "/api2/json/nodes/pve1/lxc/150/config").await;
    let config = a.json()["data"].clone();
    assert_eq!(config["hostname"], "web1");
    assert_eq!(config["cores"], 1, "integers are numbers");
    assert_eq!(
        config["description"], "Debian 12 base template\nManaged by: infra\n",
        "LXC notes end each line with \\n"
    );
    assert_eq!(config["digest"].as_str().unwrap().len(), 40);
    assert!(config.get("template").is_none());
}

#[tokio::test]
async fn stopping_a_clone_task_removes_its_target_and_releases_the_locks() {
    let sim = sim().await;
    sim.faults().inject(Endpoint::LxcClone, Fault::TaskHang);
    let h = [("Authorization", token())];
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = raw(&sim, "POST", "/api2/json/nodes/pve1/lxc/9000/clone", &h, "newid=151").await;
    let upid = a.json()["data"].as_str().unwrap().to_owned();
    let a = raw(&sim, "DELETE", &format!("/api2/json/nodes/pve1/tasks/{}", urlencode(&upid)), &h, "").await;
    assert_eq!(a.status_line, "HTTP/1.1 200 OK");
    assert_eq!(a.json(), json!({"data": null}));
    let status = get(&sim, &format!("/api2/json/nodes/pve1/tasks/{upid}/status")).await.json()["data"].clone();
    assert_eq!(
        (status["status"].clone(), status["exitstatus"].clone()),
        (json!("stopped"), json!("clone failed: received interrupt"))
    );
    let a = get(&sim, "/api2/json/nodes/pve1/lxc/151/config").await;
    assert!(a.status_line.starts_with("HTTP/1.1 500"), "{}", a.status_line);
    let template = get(&sim, "/api2/json/nodes/pve1/lxc/9000/config").await.json()["data"].clone();
    assert!(template.get("lock").is_none(), "{template}");
    let a = raw(&sim, "DELETE", "/api2/json/nodes/pve1/tasks/UPID:garbage", &h, "").await;
    assert_eq!(a.json()["errors"], json!({"upid": "unable to parse worker upid"}));
}

#[tokio::test]
async fn api_tokens_cannot_log_in_for_a_ticket() {
    let sim = sim().await;
    let body = "username=portal@pve&password=portal-password";
    let a = raw(&sim, "POST", "/api2/json/access/ticket", &[("Authorization", &token())], body).await;
    assert_eq!(
        a.status_line,
        "HTTP/1.1 403 Permission check failed (URI '/access/ticket' not available with API token, need proper ticket.)"
    );
    // A token id as user name is no user of user.cfg: the usual 401.
    let a = raw(&sim, "POST", "/api2/json/access/ticket", &[], "username=portal@pve!svc&password=x").await;
    assert_eq!(a.status_line, "HTTP/1.1 401 authentication failure");
}

#[tokio::test]
async fn vncwebsocket_without_upgrade_answers_the_port_and_checks_the_ticket() {
    let sim = sim().await;
    let h = [("Authorization", token())];
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = raw(&sim, "POST", "/api2/json/nodes/pve1/lxc/9000/vncproxy", &h, "websocket=1").await;
    let data = a.json()["data"].clone();
    let (port, ticket) = (data["port"].as_str().unwrap().to_owned(), data["ticket"].as_str().unwrap().to_owned());
    assert_eq!(port, "5900", "ports are strings");
    assert_eq!(&ticket[8..16], ":PVEVNC:", "the 8-character password prefixes the ticket");
    assert_eq!(data["user"], TOKEN_ID);
    let path = format!("/api2/json/nodes/pve1/lxc/9000/vncwebsocket?port={port}&vncticket={}", urlencode(&ticket));
    assert_eq!(get(&sim, &path).await.body, r#"{"data":{"port":"5900"}}"#);
    let path = format!("/api2/json/nodes/pve1/lxc/9000/vncwebsocket?port=5901&vncticket={}", urlencode(&ticket));
    assert_eq!(get(&sim, &path).await.status_line, "HTTP/1.1 401 permission denied - invalid PVEVNC ticket");
}

#[tokio::test]
async fn a_new_guest_shows_as_unknown_in_cluster_resources_until_the_rrd_catches_up() {
    let sim = Simulator::start(SimConfig { rrd_lag: Duration::from_secs(60), ..config() }).await.unwrap();
    let h = [("Authorization", token())];
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    raw(&sim, "POST", "/api2/json/nodes/pve1/lxc/9000/clone", &h, "newid=160").await;
    let a = get(&sim, "/api2/json/cluster/resources?type=vm").await;
    let entry = a.json()["data"].as_array().unwrap().iter().find(|r| r["vmid"] == 160).cloned().unwrap();
    assert_eq!(
        entry,
        json!({"id": "lxc/160", "type": "lxc", "vmid": 160, "node": "pve1", "status": "unknown", "lock": "create"})
    );
}

#[tokio::test]
async fn the_simulators_own_stats_show_calls_and_guests() {
    let sim = sim().await;
    get(&sim, "/api2/json/version").await;
    get(&sim, "/api2/json/version").await;
    let stats = raw(&sim, "GET", "/_sim/stats", &[], "").await;
    assert!(stats.status_line.contains("200"), "{}", stats.status_line);
    let v = stats.json();
    assert_eq!(v["calls"]["version"], 2);
    assert_eq!(v["total_calls"], 2, "the stats call itself is not counted");
    let t = v["guests"].as_array().unwrap().iter().find(|g| g["vmid"] == 9000).unwrap();
    assert_eq!(
        (t["node"].as_str(), t["template"].as_bool(), t["kind"].as_str()),
        (Some("pve1"), Some(true), Some("lxc"))
    );
}
