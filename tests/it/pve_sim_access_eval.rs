//! The simulator's permission evaluation against the scenarios pve-access.md §4.4 ran through PVE's
//! own `roles()`/`permissions()` code, for PVE 8 and PVE 9 roles, asked over HTTP the way proxdesk
//! asks (`GET /access/permissions?userid=…&path=…` with a service token holding `Sys.Audit`).

use std::collections::BTreeMap;

use proxdesk::integrations::pve::sim::access::{AccessConfig, PveMajor, builtin_roles};
use proxdesk::integrations::pve::sim::{SimConfig, SimHandle, Simulator, admin_acl};
use serde_json::{Value, json};

const SVC: &str = "svc@pve!audit";
const SVC_SECRET: &str = "audit-secret";
const U: &str = "u@pve";

type Privs = BTreeMap<String, u8>;

fn role(version: PveMajor, id: &str, flag: u8) -> Privs {
    let (_, privs) = builtin_roles(version).into_iter().find(|(r, _)| r == id).unwrap();
    privs.into_iter().map(|p| (p, flag)).collect()
}

fn union(a: Privs, b: Privs) -> Privs {
    let mut out = b;
    for (p, f) in a {
        let v = out.entry(p).or_insert(0);
        *v = (*v).max(f);
    }
    out
}

async fn sim_with(version: PveMajor, setup: impl FnOnce(&mut AccessConfig)) -> SimHandle {
    let mut config = SimConfig::for_tests().with_token(SVC, SVC_SECRET, admin_acl());
    config.access.version = version;
    config.access.user(U, "pw");
    setup(&mut config.access);
    Simulator::start(config).await.unwrap()
}

async fn permissions(sim: &SimHandle, userid: &str, path: &str) -> Privs {
    let answer: Value = reqwest::Client::new()
        .get(format!("{}/api2/json/access/permissions", sim.url()))
        .query(&[("userid", userid), ("path", path)])
        .header("Authorization", format!("PVEAPIToken={SVC}={SVC_SECRET}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = answer["data"].as_object().unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(data.keys().collect::<Vec<_>>(), [path], "exactly the path asked for");
    serde_json::from_value(data[path].clone()).unwrap()
}

/// One row of §4.4: the set-up, then (subject, path, expected privileges).
struct Row {
    name: &'static str,
    setup: fn(&mut AccessConfig),
    expect: fn(PveMajor) -> Vec<(&'static str, &'static str, Privs)>,
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "PVEVMUser on a pool reaches its guests with flag 0, nothing else",
            setup: |a| {
                a.pool("p1", &[100, 101]).acl("/pool/p1", U, "PVEVMUser", true);
            },
            expect: |v| {
                vec![
                    (U, "/vms/100", role(v, "PVEVMUser", 0)),
                    (U, "/vms/101", role(v, "PVEVMUser", 0)),
                    (U, "/vms/102", Privs::new()),
                    (U, "/pool/p1", role(v, "PVEVMUser", 1)),
                    (U, "/vms/100/", Privs::new()),
                    (U, "vms/100", Privs::new()),
                ]
            },
        },
        Row {
            name: "NoAccess on a guest beats the pool's roles",
            setup: |a| {
                a.pool("p1", &[100, 101]).acl("/pool/p1", U, "PVEVMUser", true).acl("/vms/100", U, "NoAccess", true);
            },
            expect: |v| vec![(U, "/vms/100", Privs::new()), (U, "/vms/101", role(v, "PVEVMUser", 0))],
        },
        Row {
            name: "NoAccess on the pool beats a propagated /vms grant for its members only",
            setup: |a| {
                a.pool("p1", &[100]).acl("/vms", U, "PVEVMUser", true).acl("/pool/p1", U, "NoAccess", true);
            },
            expect: |v| vec![(U, "/vms/100", Privs::new()), (U, "/vms/101", role(v, "PVEVMUser", 1))],
        },
        Row {
            name: "pool roles are added to a guest's own roles, which keep their flags",
            setup: |a| {
                a.pool("p1", &[100]).acl("/pool/p1", U, "PVEVMUser", true).acl("/vms/100", U, "PVEAuditor", true);
            },
            expect: |v| vec![(U, "/vms/100", union(role(v, "PVEAuditor", 1), role(v, "PVEVMUser", 0)))],
        },
        Row {
            name: "the user's entry overrides the group's at the deeper level",
            setup: |a| {
                a.group("g", &[U]).acl("/vms", "@g", "PVEVMUser", true).acl("/vms/100", U, "PVEAuditor", true);
            },
            expect: |v| vec![(U, "/vms/100", role(v, "PVEAuditor", 1)), (U, "/vms/101", role(v, "PVEVMUser", 1))],
        },
        Row {
            name: "NoAccess of one group blocks another group's role at the same level",
            setup: |a| {
                a.group("g1", &[U]).group("g2", &[U]);
                a.acl("/vms/100", "@g1", "NoAccess", true).acl("/vms/100", "@g2", "PVEVMUser", true);
            },
            expect: |_| vec![(U, "/vms/100", Privs::new())],
        },
        Row {
            name: "a /vms entry without propagation applies at /vms only; guests inherit from /",
            setup: |a| {
                a.acl("/", U, "PVEAuditor", true).acl("/vms", U, "PVEVMUser", false);
            },
            expect: |v| vec![(U, "/vms/100", role(v, "PVEAuditor", 1)), (U, "/vms", role(v, "PVEVMUser", 0))],
        },
        Row {
            name: "a non-propagating user entry does not block the group's propagated one below",
            setup: |a| {
                a.group("g", &[U]).acl("/vms", U, "PVEAuditor", false).acl("/vms", "@g", "PVEVMUser", true);
            },
            expect: |v| vec![(U, "/vms/100", role(v, "PVEVMUser", 1)), (U, "/vms", role(v, "PVEAuditor", 0))],
        },
        Row {
            name: "a privilege-separated token holds the intersection with its owner",
            setup: |a| {
                a.token("u@pve!tk", "s", true).acl("/vms", "u@pve!tk", "PVEVMUser", true).acl(
                    "/vms",
                    U,
                    "PVEAuditor",
                    true,
                );
            },
            expect: |v| {
                let mut both = Privs::from([("VM.Audit".to_owned(), 1)]);
                if v == PveMajor::V9 {
                    // PVE 9's PVEVMUser and PVEAuditor share VM.GuestAgent.Audit as well.
                    both.insert("VM.GuestAgent.Audit".to_owned(), 1);
                }
                vec![("u@pve!tk", "/vms/100", both), (U, "/vms/100", role(v, "PVEAuditor", 1))]
            },
        },
        Row {
            name: "nested pools inherit propagated roles of their parent",
            setup: |a| {
                a.pool("a", &[100]).pool("a/b", &[200]).acl("/pool/a", U, "PVEVMUser", true);
            },
            expect: |v| vec![(U, "/vms/100", role(v, "PVEVMUser", 0)), (U, "/vms/200", role(v, "PVEVMUser", 0))],
        },
        Row {
            name: "a non-propagating pool entry does not reach the nested pool",
            setup: |a| {
                a.pool("a", &[100]).pool("a/b", &[200]).acl("/pool/a", U, "PVEVMUser", false);
            },
            expect: |v| vec![(U, "/vms/100", role(v, "PVEVMUser", 0)), (U, "/vms/200", Privs::new())],
        },
    ]
}

#[tokio::test]
async fn every_scenario_pve_executed_evaluates_the_same_on_pve8_and_pve9() {
    for version in [PveMajor::V8, PveMajor::V9] {
        for row in rows() {
            let sim = sim_with(version, row.setup).await;
            for (who, path, want) in (row.expect)(version) {
                let got = permissions(&sim, who, path).await;
                assert_eq!(got, want, "{version:?} · {} · {who} on {path}", row.name);
            }
        }
    }
}

#[tokio::test]
async fn root_holds_everything_and_unknown_subjects_nothing() {
    let sim = sim_with(PveMajor::V9, |a| {
        a.acl("/", "ghost@pve", "Administrator", true);
    })
    .await;
    let root = permissions(&sim, "root@pam", "/vms/100").await;
    assert!(root.contains_key("Permissions.Modify") && root.values().all(|f| *f == 1));
    assert_eq!(permissions(&sim, "nobody@pve", "/vms/100").await, Privs::new());
    assert_eq!(permissions(&sim, "u@pve!missing", "/vms/100").await, Privs::new());
    // ACL entries of a user missing from user.cfg still count: existence is never checked here.
    assert!(permissions(&sim, "ghost@pve", "/").await.contains_key("Sys.Modify"));
}

#[tokio::test]
async fn the_full_dump_lists_candidate_paths_with_privileges_only() {
    let sim = sim_with(PveMajor::V9, |a| {
        a.pool("p1", &[101]).acl("/pool/p1", U, "PVEVMUser", true).acl("/sdn/zones/lab", U, "PVESDNUser", true);
    })
    .await;
    let answer: Value = reqwest::Client::new()
        .get(format!("{}/api2/json/access/permissions?userid={U}", sim.url()))
        .header("Authorization", format!("PVEAPIToken={SVC}={SVC_SECRET}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = answer["data"].as_object().unwrap();
    let mut paths: Vec<&str> = data.keys().map(String::as_str).collect();
    paths.sort();
    assert_eq!(paths, ["/pool/p1", "/sdn/zones/lab", "/vms/101"], "empty paths are left out");
    assert_eq!(data["/vms/101"]["VM.PowerMgmt"], json!(0), "pool grants carry flag 0");
    assert_eq!(data["/pool/p1"]["VM.PowerMgmt"], json!(1));
}
