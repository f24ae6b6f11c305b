//! The Guacamole client against the Guacamole simulator: login, tokens, errors, CRUD, batches, permissions.

use std::collections::BTreeMap;
use std::time::Duration;

use proxdesk::integrations::guacamole::sim::{Fault, SimConfig, SimHandle, Simulator};
use proxdesk::integrations::guacamole::wire::{Connection, ConnectionGroup, Patch, User};
use proxdesk::integrations::guacamole::{Client, GuacError, GuacSettings};

pub async fn sim() -> SimHandle {
    Simulator::start(SimConfig::default()).await.expect("simulator starts")
}

pub fn admin_client(sim: &SimHandle) -> Client {
    Client::new(&GuacSettings::new(&sim.url(), "guacadmin", "guacadmin")).unwrap()
}

fn ssh(name: &str, parent: &str, host: &str) -> Connection {
    Connection {
        name: name.into(),
        parent_identifier: Some(parent.into()),
        protocol: "ssh".into(),
        parameters: Some(BTreeMap::from([
            ("hostname".to_owned(), host.to_owned()),
            ("port".to_owned(), "22".to_owned()),
        ])),
        ..Connection::default()
    }
}

#[tokio::test]
async fn login_discovers_the_data_source_the_server_returns() {
    let sim = sim().await;
    let client = admin_client(&sim);
    assert_eq!(client.login().await.unwrap(), "postgresql");
    assert_eq!(sim.calls().logins, 1);
}

#[tokio::test]
async fn a_wrong_password_is_invalid_credentials_and_repeated_failures_are_banned() {
    let sim = sim().await;
    let client = Client::new(&GuacSettings::new(&sim.url(), "guacadmin", "nope")).unwrap();
    for _ in 0..5 {
        assert!(matches!(client.login().await, Err(GuacError::InvalidCredentials(m)) if m == "Invalid login"));
    }
    assert!(matches!(client.login().await, Err(GuacError::TooManyAttempts(_))));
}

#[tokio::test]
async fn a_configured_data_source_that_the_session_lacks_is_a_config_error() {
    let sim = sim().await;
    let mut settings = GuacSettings::new(&sim.url(), "guacadmin", "guacadmin");
    settings.data_source = Some("mysql".into());
    let client = Client::new(&settings).unwrap();
    assert!(matches!(client.login().await, Err(GuacError::Config(_))));
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_and_the_call_retried() {
    let sim = sim().await;
    let client = admin_client(&sim);
    client.connections().await.unwrap();
    sim.expire_sessions();
    assert!(client.connections().await.unwrap().is_empty());
    assert_eq!(sim.calls().logins, 2);
}

#[tokio::test]
async fn tokens_die_after_the_idle_timeout() {
    let sim = Simulator::start(SimConfig { session_timeout: Duration::from_millis(200), ..SimConfig::default() })
        .await
        .unwrap();
    let client = admin_client(&sim);
    client.connections().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.connections().await.unwrap();
    assert_eq!(sim.calls().logins, 2);
}

#[tokio::test]
async fn connections_round_trip_with_parameters_apart_and_attributes_filtered() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let mut c = ssh("web-01 (SSH)", "ROOT", "10.0.0.21");
    c.attributes.insert("max-connections".into(), Some("2".into()));
    c.attributes.insert("not-in-schema".into(), Some("x".into()));
    let created = client.create_connection(&c).await.unwrap();
    let id = created.identifier.clone().unwrap();
    assert_eq!(id, "1");
    assert!(!created.attributes.contains_key("not-in-schema"));
    let listed = client.connections().await.unwrap();
    assert!(listed[&id].parameters.is_none());
    assert_eq!(listed[&id].attributes["max-connections"].as_deref(), Some("2"));
    assert_eq!(listed[&id].attributes["weight"], None);
    let params = client.connection_parameters(&id).await.unwrap();
    assert_eq!(params["hostname"], "10.0.0.21");

    client.update_connection(&id, &ssh("web-01 (SSH)", "ROOT", "10.0.0.99")).await.unwrap();
    assert_eq!(client.connection_parameters(&id).await.unwrap()["hostname"], "10.0.0.99");
    client.delete_connection(&id).await.unwrap();
    assert!(matches!(client.delete_connection(&id).await, Err(GuacError::NotFound(m)) if m == "Not found: \"1\""));
}

#[tokio::test]
async fn duplicate_names_are_refused_within_a_group_only() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let group = ConnectionGroup {
        name: "vm".into(),
        parent_identifier: Some("ROOT".into()),
        kind: "ORGANIZATIONAL".into(),
        ..Default::default()
    };
    let gid = client.create_connection_group(&group).await.unwrap().identifier.unwrap();
    client.create_connection(&ssh("a", "ROOT", "h")).await.unwrap();
    client.create_connection(&ssh("a", &gid, "h")).await.unwrap();
    let err = client.create_connection(&ssh("a", "ROOT", "h")).await.unwrap_err();
    assert!(
        matches!(err, GuacError::BadRequest { status: 400, ref message, .. } if message == "The connection \"a\" already exists.")
    );
    let err = client.create_connection(&ssh(" ", "ROOT", "h")).await.unwrap_err();
    assert!(
        matches!(err, GuacError::BadRequest { ref message, .. } if message == "Connection names must not be blank.")
    );
    let err = client.create_connection(&ssh("b", "ROOT", &"x".repeat(4097))).await.unwrap_err();
    assert!(matches!(err, GuacError::BadRequest { status: 413, .. }));
    // Deleting the group takes its connection with it.
    client.delete_connection_group(&gid).await.unwrap();
    assert_eq!(sim.state().connections.len(), 1);
}

#[tokio::test]
async fn a_failed_batch_rolls_back_and_reports_each_patch() {
    let sim = sim().await;
    let client = admin_client(&sim);
    client.create_connection(&ssh("taken", "ROOT", "h")).await.unwrap();
    let err = client
        .patch_connections(&[Patch::add("/", ssh("new", "ROOT", "h")), Patch::add("/", ssh("taken", "ROOT", "h"))])
        .await
        .unwrap_err();
    match err {
        GuacError::BadRequest { status: 400, message, patches } => {
            assert_eq!(message, "The provided patches failed to apply.");
            assert_eq!(patches, vec!["add /: The connection \"taken\" already exists.".to_owned()]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(sim.state().connections.len(), 1);
    let ok = client.patch_connections(&[Patch::add("/", ssh("new", "ROOT", "h")), Patch::remove("1")]).await.unwrap();
    assert_eq!(ok.patches[0].identifier.as_deref(), Some("2"));
    assert_eq!(sim.state().connections.keys().collect::<Vec<_>>(), ["2"]);
}

#[tokio::test]
async fn permissions_patch_adds_before_removes_and_checks_the_caller() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let id = client.create_connection(&ssh("a", "ROOT", "h")).await.unwrap().identifier.unwrap();
    client
        .create_user(&User { username: "alice".into(), password: Some("pw".into()), ..User::default() })
        .await
        .unwrap();
    let path = format!("/connectionPermissions/{id}");
    client
        .patch_permissions("alice", &[Patch::add(path.clone(), "READ".into()), Patch::add(path.clone(), "READ".into())])
        .await
        .unwrap();
    let perms = client.permissions("alice").await.unwrap();
    assert_eq!(perms.connection_permissions[&id], vec!["READ".to_owned()]);
    assert_eq!(perms.user_permissions["alice"], vec!["READ".to_owned()]);

    let alice = Client::new(&GuacSettings::new(&sim.url(), "alice", "pw")).unwrap();
    assert_eq!(alice.connections().await.unwrap().len(), 1);
    assert!(matches!(alice.connection_parameters(&id).await, Err(GuacError::PermissionDenied(_))));
    assert!(
        matches!(alice.create_connection(&ssh("b", "ROOT", "h")).await, Err(GuacError::PermissionDenied(m)) if m == "Permission denied.")
    );
    assert_eq!(sim.calls().logins, 2, "a real permission error must not trigger a new login");
}

#[tokio::test]
async fn injected_faults_surface_as_typed_errors_and_gets_retry_transient_ones() {
    let sim = sim().await;
    let client = admin_client(&sim);
    sim.inject_fault(Fault {
        method: Some("GET".into()),
        path_contains: "connections".into(),
        status: 503,
        times: Some(1),
    });
    assert!(client.connections().await.is_ok(), "a transient GET failure is retried");
    sim.inject_fault(Fault {
        method: Some("POST".into()),
        path_contains: "connections".into(),
        status: 500,
        times: None,
    });
    assert!(matches!(
        client.create_connection(&ssh("a", "ROOT", "h")).await,
        Err(GuacError::Server { status: 500, .. })
    ));
    sim.clear_faults();
    assert!(client.create_connection(&ssh("a", "ROOT", "h")).await.is_ok());
}

#[tokio::test]
async fn usernames_with_any_characters_survive_the_path() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let name = "Ann O'Neil/ops@lab #1";
    client.create_user(&User { username: name.into(), ..User::default() }).await.unwrap();
    let id = client.create_connection(&ssh("a", "ROOT", "h")).await.unwrap().identifier.unwrap();
    client.patch_permissions(name, &[Patch::add(format!("/connectionPermissions/{id}"), "READ".into())]).await.unwrap();
    assert!(client.permissions(name).await.unwrap().connection_permissions.contains_key(&id));
    let bad = client.patch_permissions(name, &[Patch::add("/nope/1", "READ".to_owned())]).await.unwrap_err();
    assert!(
        matches!(bad, GuacError::BadRequest { ref message, .. } if message == "Unsupported patch path: \"/nope/1\"")
    );
}

#[test]
fn settings_come_from_proxdesk_keys_and_guacamole_is_optional() {
    use proxdesk::config::RawSettings;
    let mut raw = RawSettings::defaults();
    assert!(GuacSettings::from_raw(&raw).unwrap().is_none());
    raw.set("guac_url", "https://guac.example/guacamole/");
    assert!(matches!(GuacSettings::from_raw(&raw), Err(GuacError::Config(m)) if m.contains("PROXDESK_GUAC_USER")));
    raw.merge_env([
        ("PROXDESK_GUAC_USER".to_owned(), "sync".to_owned()),
        ("PROXDESK_GUAC_PASSWORD".to_owned(), "pw".to_owned()),
        ("PROXDESK_NOTES_KEY".to_owned(), "k".to_owned()),
    ]);
    let s = GuacSettings::from_raw(&raw).unwrap().unwrap();
    assert_eq!(
        (s.url.as_str(), s.user.as_str(), s.schedule.as_str()),
        ("https://guac.example/guacamole", "sync", "0 */5 * * * *")
    );
    assert_eq!((s.data_source, s.create_users, s.concurrency), (None, false, 8));
    assert!(s.notes_key.is_some());
    assert_eq!(format!("{:?}", s.password), "***");
    assert_eq!((s.pve_concurrency, s.agent_recheck), (16, std::time::Duration::from_secs(30 * 60)));
    raw.merge_env([
        ("PROXDESK_GUAC_PVE_CONCURRENCY".to_owned(), "32".to_owned()),
        ("PROXDESK_GUAC_AGENT_RECHECK_MINS".to_owned(), "5".to_owned()),
    ]);
    let s = GuacSettings::from_raw(&raw).unwrap().unwrap();
    assert_eq!((s.pve_concurrency, s.agent_recheck), (32, std::time::Duration::from_secs(5 * 60)));
    for (key, bad) in [("guac_pve_concurrency", "0"), ("guac_pve_concurrency", "65"), ("guac_agent_recheck_mins", "x")]
    {
        let mut wrong = raw.clone();
        wrong.set(key, bad);
        let e = GuacSettings::from_raw(&wrong).unwrap_err();
        assert!(e.to_string().contains(&format!("PROXDESK_{}", key.to_ascii_uppercase())), "{e}");
    }
    raw.set("guac_create_users", "maybe");
    assert!(GuacSettings::from_raw(&raw).is_err());
}
