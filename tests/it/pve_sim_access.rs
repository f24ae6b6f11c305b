//! The simulator's access-control endpoints (pve-access.md §8): realms, ticket login per realm type
//! with PVE's order of checks, texts and failure delay, TOTP, users and groups, `/access/permissions`,
//! and `/cluster/resources` filtered by a realm user's own ticket. Raw HTTP where the wire matters,
//! proxdesk's own PVE client where it fits.

use std::time::{Duration, Instant};

use proxdesk::integrations::pve::sim::access::{PveMajor, RealmKind, SimRealm, totp_code};
use proxdesk::integrations::pve::sim::{SimConfig, SimHandle, Simulator};
use proxdesk::integrations::pve::{Client, PasswordCheck, PveAuth, PveConfig, PveError};
use proxdesk::secrets::Secret;
use serde_json::{Value, json};

use crate::pve_sim_wire::raw;

const SVC: &str = "svc@pve!portal";
const SVC_SECRET: &str = "portal-secret";
const TOTP: &str = "JBSWY3DPEHPK3PXP";

/// A cluster with `pve`, an LDAP realm `corp` (case-insensitive), an OpenID realm and a dead AD
/// realm; users in each; a group with a pool; and a service token with PVEAuditor on `/`.
fn config() -> SimConfig {
    let mut c = SimConfig::for_tests();
    c.access.acl("/", SVC, "PVEAuditor", true).acl("/", "svc@pve", "PVEAuditor", true);
    let a = &mut c.access;
    a.token(SVC, SVC_SECRET, true).user("svc@pve", "unused");
    let mut corp = SimRealm::new("corp", RealmKind::Ldap);
    corp.case_sensitive = false;
    corp.default = true;
    corp.comment = Some("Staff directory".into());
    let mut dead = SimRealm::new("ad", RealmKind::Ad);
    dead.unreachable = true;
    a.realm(corp).realm(SimRealm::new("sso", RealmKind::OpenId)).realm(dead);
    a.user("alice@pve", "alice-pw").user("Bob@corp", "bob-pw").user("carol@sso", "carol-pw").user("dave@ad", "dave-pw");
    a.user("off@pve", "off-pw").user("old@pve", "old-pw").user("tfa@pve", "tfa-pw");
    a.user_mut("off@pve").unwrap().enable = false;
    a.user_mut("old@pve").unwrap().expire = 1_000_000_000;
    a.user_mut("tfa@pve").unwrap().totp = Some(TOTP.into());
    a.user_mut("alice@pve").unwrap().email = Some("alice@example.org".into());
    a.group("students", &["alice@pve", "Bob@corp"]).pool("lab", &[100, 101]);
    a.acl("/pool/lab", "@students", "PVEVMUser", true);
    c
}

async fn sim_with(f: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut c = config();
    f(&mut c);
    Simulator::start(c).await.unwrap()
}

fn service(sim: &SimHandle) -> Client {
    let auth = PveAuth::Token { id: SVC.into(), secret: Secret::new(SVC_SECRET.into()) };
    Client::new(PveConfig::new(sim.url(), auth).unwrap()).unwrap()
}

/// `POST /access/ticket` with a form → (status, reason phrase, body).
async fn login(sim: &SimHandle, form: &[(&str, &str)]) -> (u16, String, Value) {
    let resp =
        reqwest::Client::new().post(format!("{}/api2/json/access/ticket", sim.url())).form(form).send().await.unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    (
        status.as_u16(),
        status.canonical_reason().unwrap_or_default().into(),
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

async fn get_with_ticket(sim: &SimHandle, ticket: &str, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}/api2/json{path}", sim.url()))
        .header("Cookie", format!("PVEAuthCookie={ticket}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_with_token(sim: &SimHandle, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}/api2/json{path}", sim.url()))
        .header("Authorization", format!("PVEAPIToken={SVC}={SVC_SECRET}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn refused(answer: &(u16, String, Value)) -> bool {
    answer.0 == 401 && answer.2 == json!({"data": null, "message": "authentication failure\n"})
}

#[tokio::test]
async fn realms_are_listed_without_credentials_with_optional_keys_only_when_set() {
    let sim = sim_with(|_| {}).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/api2/json/access/domains", sim.url()))
        .header("Cookie", "PVEAuthCookie=PVE:expired:00000000::bad")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "credentials sent along are not even checked");
    let list: Value = resp.json().await.unwrap();
    let by_id = |id: &str| list["data"].as_array().unwrap().iter().find(|r| r["realm"] == id).cloned().unwrap();
    assert_eq!(by_id("pam"), json!({"realm": "pam", "type": "pam", "comment": "Linux PAM standard authentication"}));
    assert_eq!(by_id("pve"), json!({"realm": "pve", "type": "pve", "comment": "Proxmox VE authentication server"}));
    assert_eq!(by_id("corp"), json!({"realm": "corp", "type": "ldap", "comment": "Staff directory", "default": 1}));
    assert_eq!(by_id("sso"), json!({"realm": "sso", "type": "openid"}));
    let realms = service(&sim).realms().await.unwrap();
    assert_eq!(realms.len(), 5);
    assert!(realms.iter().any(|r| r.realm == "corp" && r.default && r.takes_passwords()));
    assert!(realms.iter().any(|r| r.realm == "sso" && !r.takes_passwords()));
}

#[tokio::test]
async fn a_realm_login_returns_a_working_ticket_csrf_token_and_cap() {
    let sim = sim_with(|_| {}).await;
    let (status, _, body) = login(&sim, &[("username", "alice"), ("realm", "pve"), ("password", "alice-pw")]).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["username"], "alice@pve");
    let ticket = data["ticket"].as_str().unwrap();
    assert!(ticket.starts_with("PVE:alice@pve:"));
    assert!(data["CSRFPreventionToken"].as_str().unwrap().contains(':'));
    let cap = data["cap"].as_object().unwrap();
    let mut keys: Vec<&str> = cap.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["access", "dc", "mapping", "nodes", "sdn", "storage", "vms"]);
    assert_eq!(cap["vms"]["VM.Console"], 1, "PVEVMUser on the pool shows in cap.vms");
    assert_eq!(cap["dc"], json!({}));
    assert!(data.get("clustername").is_none(), "no Sys.Audit on /");
    // The ticket works on other calls, and renews itself.
    let (status, perms) = get_with_ticket(&sim, ticket, "/access/permissions?path=/vms/100").await;
    assert_eq!(status, 200);
    assert_eq!(perms["data"]["/vms/100"]["VM.Console"], 0, "granted through the pool");
    let (status, _, renewed) = login(&sim, &[("username", "alice@pve"), ("password", ticket)]).await;
    assert_eq!(status, 200);
    assert!(renewed["data"]["ticket"].as_str().unwrap().starts_with("PVE:alice@pve:"));
}

#[tokio::test]
async fn the_realm_is_appended_unconditionally_and_a_bare_name_fails() {
    let sim = sim_with(|_| {}).await;
    assert!(refused(&login(&sim, &[("username", "alice@pve"), ("realm", "pve"), ("password", "alice-pw")]).await));
    assert!(refused(&login(&sim, &[("username", "alice"), ("password", "alice-pw")]).await));
    assert!(refused(&login(&sim, &[("username", "alice"), ("realm", "corp"), ("password", "alice-pw")]).await));
    assert!(refused(&login(&sim, &[("username", "alice"), ("realm", "nope"), ("password", "alice-pw")]).await));
    assert!(refused(&login(&sim, &[("username", "alice@pve"), ("password", "wrong")]).await));
    assert!(refused(&login(&sim, &[("username", "alice@pve"), ("password", "")]).await));
    let ok = login(&sim, &[("username", "alice@pve"), ("password", "alice-pw")]).await;
    assert_eq!(ok.0, 200);
}

#[tokio::test]
async fn disabled_expired_unknown_and_openid_users_are_refused_like_a_wrong_password() {
    let sim = sim_with(|_| {}).await;
    for (user, pw) in [("off@pve", "off-pw"), ("old@pve", "old-pw"), ("ghost@pve", "x"), ("carol@sso", "carol-pw")] {
        let answer = login(&sim, &[("username", user), ("password", pw)]).await;
        assert!(refused(&answer), "{user}: {answer:?}");
        assert_eq!(answer.1, "Unauthorized");
    }
    // The user must exist before the directory is asked: an unknown LDAP user fails even though the
    // realm would answer.
    assert!(refused(&login(&sim, &[("username", "eve"), ("realm", "corp"), ("password", "bob-pw")]).await));
    // A user disabled at run time can no longer use their ticket either.
    let (_, _, ok) = login(&sim, &[("username", "alice@pve"), ("password", "alice-pw")]).await;
    let ticket = ok["data"]["ticket"].as_str().unwrap().to_owned();
    sim.with_access(|a| a.user_mut("alice@pve").unwrap().enable = false);
    assert_eq!(get_with_ticket(&sim, &ticket, "/access/permissions").await.0, 401);
}

#[tokio::test]
async fn ldap_logins_map_case_and_a_dead_directory_fails_after_its_timeout() {
    let sim = sim_with(|c| {
        c.auth_failure_delay = Duration::from_millis(200);
        let ad = c.access.realms.iter_mut().find(|r| r.id == "ad").unwrap();
        ad.connect_timeout = Duration::from_millis(500);
    })
    .await;
    let (status, _, body) = login(&sim, &[("username", "BOB"), ("realm", "corp"), ("password", "bob-pw")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["username"], "Bob@corp", "the stored spelling is canonical");
    let started = Instant::now();
    assert!(refused(&login(&sim, &[("username", "dave"), ("realm", "ad"), ("password", "dave-pw")]).await));
    assert!(started.elapsed() >= Duration::from_millis(500), "the directory's timeout shows through");
    // Two stored spellings differing in case: PVE cannot tell who is meant.
    sim.with_access(|a| {
        a.user("bob@corp", "other");
    });
    let started = Instant::now();
    let (status, _, body) = login(&sim, &[("username", "bob"), ("realm", "corp"), ("password", "bob-pw")]).await;
    assert_eq!(status, 500);
    assert_eq!(
        body["message"],
        "ambiguous case insensitive match of username 'bob@corp', cannot safely grant access!\n"
    );
    assert!(started.elapsed() < Duration::from_millis(200), "raised outside the padded catch-all");
}

#[tokio::test]
async fn tokens_get_403_and_schema_errors_400() {
    let sim = sim_with(|_| {}).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api2/json/access/ticket", sim.url()))
        .header("Authorization", format!("PVEAPIToken={SVC}={SVC_SECRET}"))
        .form(&[("username", "alice@pve"), ("password", "alice-pw")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["message"],
        "Permission check failed (URI '/access/ticket' not available with API token, need proper ticket.)\n"
    );
    let long = "a".repeat(65);
    let (status, _, body) = login(&sim, &[("username", &long), ("password", "x")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"]["username"], "value may only be 64 characters long");
    let (status, _, body) = login(&sim, &[("username", "alice@pve")]).await;
    assert_eq!(
        (status, body["errors"]["password"].clone()),
        (400, json!("property is missing and it is not optional"))
    );
    let (status, _, body) = login(&sim, &[("username", "a"), ("realm", "1x"), ("password", "x")]).await;
    assert_eq!(
        (status, body["errors"]["realm"].clone()),
        (400, json!("invalid format - value does not look like a valid realm\n"))
    );
    let (status, _, body) = login(&sim, &[("username", "alice@pve"), ("password", "x"), ("path", "/vms")]).await;
    assert_eq!((status, body["errors"]["privs"].clone()), (400, json!("missing property required by 'path'")));
}

#[tokio::test]
async fn failures_are_padded_from_request_start_each_on_its_own_timer() {
    let delay = Duration::from_millis(300);
    let sim = sim_with(|c| c.auth_failure_delay = delay).await;
    let started = Instant::now();
    let bad = |user: &'static str| {
        let sim = &sim;
        async move {
            let t = Instant::now();
            let answer = login(sim, &[("username", user), ("password", "wrong")]).await;
            (answer, t.elapsed())
        }
    };
    let good = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        let answer = login(&sim, &[("username", "alice@pve"), ("password", "alice-pw")]).await;
        (answer, t.elapsed())
    };
    let ((a, ta), (b, tb), (ok, tok)) = tokio::join!(bad("alice@pve"), bad("ghost@pve"), good);
    let total = started.elapsed();
    assert!(refused(&a) && refused(&b));
    assert_eq!(ok.0, 200);
    assert!(ta >= delay && tb >= delay, "each failure waits the delay: {ta:?} {tb:?}");
    assert!(total < delay * 2, "the two failures waited side by side, not in turn: {total:?}");
    assert!(tok < delay / 2, "a successful login meanwhile is not held: {tok:?}");
}

#[tokio::test]
async fn totp_is_asked_after_the_password_and_its_half_ticket_is_good_for_nothing_else() {
    let sim = sim_with(|_| {}).await;
    let (status, _, first) = login(&sim, &[("username", "tfa@pve"), ("password", "tfa-pw")]).await;
    assert_eq!(status, 200);
    let data = &first["data"];
    assert_eq!(data["NeedTFA"], 1);
    assert!(data.get("cap").is_none());
    let half = data["ticket"].as_str().unwrap().to_owned();
    assert!(half.starts_with("PVE:!tfa!{\"totp\"%3Atrue}:"), "{half}");
    assert!(!half.contains("tfa@pve"), "the user id is signed, not written");
    assert_eq!(get_with_ticket(&sim, &half, "/access/permissions").await.0, 401, "not a ticket");
    assert!(refused(&login(&sim, &[("username", "tfa@pve"), ("password", &half)]).await), "nor a password");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let code = totp_code(TOTP, now).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let second = |user: &'static str, response: String| {
        let (sim, half) = (&sim, half.clone());
        async move { login(sim, &[("username", user), ("tfa-challenge", &half), ("password", &response)]).await }
    };
    assert!(refused(&second("tfa@pve", format!("totp:{wrong}")).await));
    assert!(refused(&second("alice@pve", format!("totp:{code}")).await), "bound to its user");
    assert!(refused(&second("tfa@pve", code.clone()).await), "the response names its type");
    let (status, _, full) = second("tfa@pve", format!("totp:{code}")).await;
    assert_eq!(status, 200, "{full}");
    assert!(full["data"]["ticket"].as_str().unwrap().starts_with("PVE:tfa@pve:"));
    assert!(full["data"]["cap"].is_object());
    // Through proxdesk's client.
    let pve = service(&sim);
    let password = Secret::new("tfa-pw".to_owned());
    let PasswordCheck::NeedsSecondFactor { username, challenge } =
        pve.check_password("tfa", "pve", &password).await.unwrap()
    else {
        panic!("a second factor is due")
    };
    let code = totp_code(TOTP, now).unwrap();
    let answer = pve.check_second_factor(&username, &challenge, &Secret::new(format!("totp:{code}"))).await.unwrap();
    assert!(matches!(answer, PasswordCheck::Valid { ref username } if username == "tfa@pve"), "{answer:?}");
    let answer = pve.check_second_factor(&username, &challenge, &Secret::new("totp:12345x".into())).await.unwrap();
    assert!(matches!(answer, PasswordCheck::Refused));
}

#[tokio::test]
async fn a_realm_that_enforces_totp_refuses_users_without_one() {
    let sim =
        sim_with(|c| c.access.realms.iter_mut().find(|r| r.id == "corp").unwrap().tfa = Some("oath".into())).await;
    assert!(refused(&login(&sim, &[("username", "bob"), ("realm", "corp"), ("password", "bob-pw")]).await));
    let (status, list) = (200, service(&sim).realms().await.unwrap());
    assert_eq!(status, 200);
    assert_eq!(list.iter().find(|r| r.realm == "corp").unwrap().tfa.as_deref(), Some("oath"));
}

#[tokio::test]
async fn verify_mode_checks_privileges_without_issuing_a_ticket() {
    let sim = sim_with(|_| {}).await;
    let form = [("username", "alice@pve"), ("password", "alice-pw"), ("path", "/vms/100"), ("privs", "VM.Console")];
    let (status, _, body) = login(&sim, &form).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["username"], "alice@pve");
    assert!(body["data"].get("ticket").is_none() && body["data"]["cap"].is_object());
    let form = [("username", "alice@pve"), ("password", "alice-pw"), ("path", "/vms/102"), ("privs", "VM.Console")];
    assert!(refused(&login(&sim, &form).await));
}

#[tokio::test]
async fn proxdesk_checks_passwords_and_reads_users_through_its_client() {
    let sim = sim_with(|_| {}).await;
    let pve = service(&sim);
    let pw = |p: &str| Secret::new(p.to_owned());
    let valid = pve.check_password("BOB", "corp", &pw("bob-pw")).await.unwrap();
    assert!(matches!(valid, PasswordCheck::Valid { ref username } if username == "Bob@corp"));
    assert!(matches!(pve.check_password("alice", "pve", &pw("no")).await.unwrap(), PasswordCheck::Refused));
    let record = pve.user_record("alice@pve").await.unwrap();
    assert!(record.enable);
    assert_eq!(record.email.as_deref(), Some("alice@example.org"));
    assert_eq!(record.groups, ["students"]);
    let perms = pve.permissions_of("alice@pve", Some("/vms/101")).await.unwrap();
    assert!(perms["/vms/101"].contains_key("VM.PowerMgmt"));
    let perms = pve.permissions_of("alice@pve", Some("/vms/102")).await.unwrap();
    assert!(perms["/vms/102"].is_empty());
    let e = pve.user_record("ghost@pve").await.unwrap_err();
    assert!(matches!(e, PveError::Api { status: 500, .. } | PveError::NotFound(_)), "{e:?}");
}

#[tokio::test]
async fn users_and_groups_are_shown_to_whom_pve_shows_them() {
    let sim = sim_with(|_| {}).await;
    let (_, _, ok) = login(&sim, &[("username", "alice@pve"), ("password", "alice-pw")]).await;
    let alice = ok["data"]["ticket"].as_str().unwrap().to_owned();
    // Alice sees herself only, cannot read even her own record, nor any group.
    let (status, list) = get_with_ticket(&sim, &alice, "/access/users?full=1").await;
    assert_eq!(status, 200);
    assert_eq!(
        list["data"],
        json!([{"userid": "alice@pve", "enable": 1, "expire": 0, "email": "alice@example.org",
                "realm-type": "pve", "groups": "students", "tokens": null}])
    );
    let (status, body) = get_with_ticket(&sim, &alice, "/access/users/alice@pve").await;
    assert_eq!((status, body["message"].clone()), (403, json!("Permission check failed\n")));
    let (status, body) = get_with_ticket(&sim, &alice, "/access/users/ghost@pve").await;
    assert_eq!((status, body["message"].clone()), (500, json!("no such user ('ghost@pve')\n")));
    assert_eq!(get_with_ticket(&sim, &alice, "/access/groups").await.1["data"], json!([]));
    assert_eq!(get_with_ticket(&sim, &alice, "/access/groups/students").await.0, 403);
    // The auditor token sees everyone, sorted, and the groups.
    let (_, list) = get_with_token(&sim, "/access/users?enabled=1").await;
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|u| u["userid"].as_str().unwrap()).collect();
    let want = ["Bob@corp", "alice@pve", "carol@sso", "dave@ad", "old@pve", "root@pam", "svc@pve", "tfa@pve"];
    assert_eq!(ids, want, "byte order; `enabled` filters on the flag only");
    let (_, user) = get_with_token(&sim, "/access/users/svc@pve").await;
    assert_eq!(user["data"]["tokens"], json!({"portal": {"expire": 0, "privsep": 1}}));
    assert_eq!(user["data"]["groups"], json!([]));
    let (_, groups) = get_with_token(&sim, "/access/groups").await;
    assert_eq!(groups["data"], json!([{"groupid": "students", "users": "Bob@corp,alice@pve"}]));
    let (_, group) = get_with_token(&sim, "/access/groups/students").await;
    assert_eq!(group["data"], json!({"members": ["alice@pve", "Bob@corp"]}));
    let (status, body) = get_with_token(&sim, "/access/groups/nope").await;
    assert_eq!((status, body["message"].clone()), (500, json!("group 'nope' does not exist\n")));
}

#[tokio::test]
async fn permissions_of_others_need_sys_audit_on_access() {
    let sim = sim_with(|c| {
        c.access.token("alice@pve!ci", "ci-secret", true).acl("/vms/100", "alice@pve!ci", "PVEVMUser", true);
    })
    .await;
    let (_, _, ok) = login(&sim, &[("username", "alice@pve"), ("password", "alice-pw")]).await;
    let alice = ok["data"]["ticket"].as_str().unwrap().to_owned();
    let (status, own) = get_with_ticket(&sim, &alice, "/access/permissions?userid=alice@pve").await;
    assert_eq!(status, 200);
    assert!(own["data"]["/vms/100"].is_object() && own["data"].get("/").is_none());
    let (status, token) = get_with_ticket(&sim, &alice, "/access/permissions?userid=alice@pve!ci&path=/vms/100").await;
    assert_eq!(status, 200, "her own token");
    assert_eq!(token["data"]["/vms/100"]["VM.Console"], 0, "the owner's pool grant is flag 0: so is the token's");
    let (status, body) = get_with_ticket(&sim, &alice, "/access/permissions?userid=Bob@corp").await;
    assert_eq!((status, body["message"].clone()), (403, json!("Permission check failed (/access, Sys.Audit)\n")));
    let (status, _) = get_with_token(&sim, "/access/permissions?userid=Bob@corp&path=/vms/100").await;
    assert_eq!(status, 200, "the auditor may ask for anyone");
    let (status, body) = get_with_token(&sim, "/access/permissions?userid=bob").await;
    assert_eq!((status, body["errors"]["userid"].clone()), (400, json!("value does not match the regex pattern")));
    // A token cannot ask for its owner without Sys.Audit.
    let resp = reqwest::Client::new()
        .get(format!("{}/api2/json/access/permissions?userid=alice@pve", sim.url()))
        .header("Authorization", "PVEAPIToken=alice@pve!ci=ci-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn cluster_resources_show_a_realm_user_only_the_guests_they_may_audit() {
    let sim = sim_with(|c| {
        c.access.user("teacher@pve", "t-pw").acl("/pool/lab", "teacher@pve", "PVEPoolUser", true).acl(
            "/vms",
            "teacher@pve",
            "PVEAuditor",
            true,
        );
    })
    .await;
    let (_, _, ok) = login(&sim, &[("username", "alice@pve"), ("password", "alice-pw")]).await;
    let alice = ok["data"]["ticket"].as_str().unwrap().to_owned();
    let (_, list) = get_with_ticket(&sim, &alice, "/cluster/resources?type=vm").await;
    let guests = list["data"].as_array().unwrap();
    let ids: Vec<u64> = guests.iter().map(|g| g["vmid"].as_u64().unwrap()).collect();
    assert_eq!(ids, [100, 101], "VM.Audit through the pool, nothing else");
    assert!(guests.iter().all(|g| g.get("pool").is_none()), "PVEVMUser has no Pool.Audit");
    let (_, _, ok) = login(&sim, &[("username", "teacher@pve"), ("password", "t-pw")]).await;
    let teacher = ok["data"]["ticket"].as_str().unwrap().to_owned();
    let (_, list) = get_with_ticket(&sim, &teacher, "/cluster/resources?type=vm").await;
    let guests = list["data"].as_array().unwrap();
    assert!(guests.len() > 3, "PVEAuditor on /vms sees every guest");
    let g100 = guests.iter().find(|g| g["vmid"] == 100).unwrap();
    assert_eq!(g100["pool"], "lab", "Pool.Audit on the pool shows it");
    // Acting needs the privilege on the guest itself.
    let (_, _, ok) = login(&sim, &[("username", "alice@pve"), ("password", "alice-pw")]).await;
    let start = |vmid: u64, node: &'static str| {
        let (sim, ok) = (&sim, ok.clone());
        async move {
            let resp = reqwest::Client::new()
                .post(format!("{}/api2/json/nodes/{node}/qemu/{vmid}/status/start", sim.url()))
                .header("Cookie", format!("PVEAuthCookie={}", ok["data"]["ticket"].as_str().unwrap()))
                .header("CSRFPreventionToken", ok["data"]["CSRFPreventionToken"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = start(102, "pve3").await;
    assert_eq!((status, body["message"].clone()), (403, json!("Permission check failed (/vms/102, VM.PowerMgmt)\n")));
    assert_eq!(start(101, "pve2").await.0, 200, "the pool grants VM.PowerMgmt on 101");
}

#[tokio::test]
async fn pve8_names_the_reason_when_a_ticket_user_is_disabled() {
    let sim = sim_with(|c| c.access.version = PveMajor::V8).await;
    let (_, _, ok) = login(&sim, &[("username", "alice@pve"), ("password", "alice-pw")]).await;
    let ticket = ok["data"]["ticket"].as_str().unwrap().to_owned();
    sim.with_access(|a| a.user_mut("alice@pve").unwrap().enable = false);
    let cookie = format!("PVEAuthCookie={ticket}");
    let answer = raw(&sim, "GET", "/api2/json/access/permissions", &[("Cookie", &cookie)], "").await;
    assert_eq!(answer.status_line, "HTTP/1.1 401 user 'alice@pve' is disabled");
    assert_eq!(answer.body, "", "an auth-layer 401 has no body");
    let roles: Vec<Value> = get_with_token(&sim, "/access/roles").await.1["data"].as_array().unwrap().clone();
    let vmadmin = roles.iter().find(|r| r["roleid"] == "PVEVMAdmin").unwrap();
    assert!(vmadmin["privs"].as_str().unwrap().split(',').any(|p| p == "VM.Monitor"));
    assert_eq!(vmadmin["special"], 1);
}
