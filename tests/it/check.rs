//! `proxdesk check` as the real binary: the Proxmox VE part, SSH to every online node (host keys, the
//! key's login, `pct`) and the Guacamole sync account (login, data source, system permissions).

use std::path::Path;

use proxdesk::integrations::guacamole::sim::{SimConfig as GuacSimConfig, Simulator as GuacSim};
use proxdesk::integrations::pve::sim::{GuestKind, SimHandle, SimSsh, SimSshConfig, write_client_key};

use crate::external::Sshd;
use crate::pve_client::{TOKEN_ID, TOKEN_SECRET};

/// Runs `proxdesk check` against `sim` with `env` added; returns (success, stdout, stderr).
async fn check(sim: &SimHandle, env: &[(&str, String)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_proxdesk"));
    cmd.arg("check")
        .env("PROXDESK_DATA_DIR", dir.path())
        .env("PROXDESK_LOG", "warn")
        .env("PROXDESK_PVE_URL", sim.url())
        .env("PROXDESK_PVE_TOKEN", format!("{TOKEN_ID}={TOKEN_SECRET}"))
        .env_remove("PROXDESK_DATABASE_URL")
        .current_dir(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn guac_env(url: &str, user: &str, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PROXDESK_GUAC_URL", url.to_owned()),
        ("PROXDESK_GUAC_USER", user.into()),
        ("PROXDESK_GUAC_PASSWORD", password.into()),
    ]
}

/// The row of `node` in the SSH table.
fn ssh_row<'a>(out: &'a str, node: &str) -> &'a str {
    let table = &out[out.find("SSH NODE").unwrap_or_else(|| panic!("no SSH table in {out}"))..];
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(node))
        .unwrap_or_else(|| panic!("no row {node} in {out}"))
}

fn key_pair(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let public = write_client_key(&path, "proxdesk check").unwrap();
    (path, public)
}

#[tokio::test]
async fn a_configured_desk_passes_every_part_of_the_check() {
    let sim = crate::pve_client::sim().await;
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = key_pair(dir.path(), "id");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh = SimSsh::start(listener, &sim, SimSshConfig::new(vec![public])).await.unwrap();
    let guac = GuacSim::start(GuacSimConfig::default()).await.unwrap();

    let mut env: Vec<(&str, String)> = ssh.settings(&key);
    env.extend(guac_env(&guac.url(), "guacadmin", "guacadmin"));
    env.push(("PROXDESK_GUAC_CREATE_USERS", "true".into()));
    let (ok, out, err) = check(&sim, &env).await;
    assert!(ok, "{out}{err}");
    let state = sim.state();
    for node in &state.nodes {
        let containers = state.guests.values().filter(|g| &g.node == node && g.kind == GuestKind::Lxc).count();
        assert!(ssh_row(&out, node).ends_with(&format!("ok ({containers} containers)")), "{out}");
    }
    assert!(ssh.commands().iter().all(|c| c.command == "pct list" && c.exit_status == 0));
    assert_eq!(ssh.commands().len(), state.nodes.len(), "one probe per online node");
    assert!(out.contains("login ok, data source postgresql"), "{out}");
    assert!(out.contains("ADMINISTER                ok (implies the rest)"), "{out}");
    assert!(out.contains("CREATE_USER               ok"), "{out}");
}

#[tokio::test]
async fn the_check_names_each_broken_part_and_fails() {
    let sim = crate::pve_client::sim().await;
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = key_pair(dir.path(), "id");
    let (stranger, _) = key_pair(dir.path(), "stranger");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh = SimSsh::start(listener, &sim, SimSshConfig::new(vec![public])).await.unwrap();
    let guac = GuacSim::start(GuacSimConfig::default()).await.unwrap();
    // Allowed to create connections, but not the groups they are filed in, nor users.
    guac.add_user("narrow", "narrow-password", &["CREATE_CONNECTION"]);
    let node = sim.state().nodes[0].clone();

    let with = |key_file: &Path, fingerprint: Option<&str>, guac_user: (&str, &str)| {
        let mut env: Vec<(&str, String)> = ssh
            .settings(key_file)
            .into_iter()
            .map(|(k, v)| match (k, fingerprint) {
                ("PROXDESK_SSH_FINGERPRINTS", Some(f)) => (k, f.to_owned()),
                _ => (k, v),
            })
            .collect();
        env.extend(guac_env(&guac.url(), guac_user.0, guac_user.1));
        env.push(("PROXDESK_GUAC_CREATE_USERS", "true".into()));
        env
    };

    // A host key other than the pinned one: refused before logging in, nothing runs.
    let other = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    let (ok, out, _) = check(&sim, &with(&key, Some(other), ("narrow", "narrow-password"))).await;
    assert!(!ok, "{out}");
    assert!(
        ssh_row(&out, &node).contains("host key refused") && ssh_row(&out, &node).contains("is not known"),
        "{out}"
    );
    assert!(ssh.commands().is_empty(), "nothing ran on a node whose key was refused");
    // The narrow Guacamole account: logged in, two permissions missing.
    assert!(out.contains("login ok, data source postgresql"), "{out}");
    assert!(out.contains("CREATE_CONNECTION         ok"), "{out}");
    assert!(out.contains("CREATE_CONNECTION_GROUP   missing"), "{out}");
    assert!(out.contains("CREATE_USER               missing"), "{out}");

    // A key the node does not authorize, and a wrong Guacamole password.
    let (ok, out, _) = check(&sim, &with(&stranger, None, ("guacadmin", "wrong"))).await;
    assert!(!ok);
    assert!(ssh_row(&out, &node).contains("login refused"), "{out}");
    assert!(out.contains("login failed"), "{out}");
    assert!(!out.contains("wrong"), "the password is never printed: {out}");

    // Everything right but Guacamole: the exit status still says so.
    let (ok, out, _) = check(&sim, &with(&key, None, ("narrow", "narrow-password"))).await;
    assert!(!ok && ssh_row(&out, &node).contains("ok ("), "{out}");
    let (ok, out, err) = check(&sim, &with(&key, None, ("guacadmin", "guacadmin"))).await;
    assert!(ok, "{out}{err}");
}

/// Against a real OpenSSH server: a node with `pct` passes; without it, the check says so.
#[tokio::test]
async fn a_real_node_without_pct_is_named() {
    let Some(sshd) = Sshd::start() else { return };
    let sim = crate::pve_client::sim().await;
    let nodes = sim.state().nodes;
    let env = vec![
        ("PROXDESK_SSH_KEY_FILE", sshd.client_key().display().to_string()),
        ("PROXDESK_SSH_KNOWN_HOSTS", sshd.known_hosts().display().to_string()),
        (
            "PROXDESK_SSH_NODES",
            nodes.iter().map(|n| format!("{n}=127.0.0.1:{}", sshd.port)).collect::<Vec<_>>().join(","),
        ),
    ];
    let (ok, out, err) = check(&sim, &env).await;
    assert!(ok, "{out}{err}");
    assert!(ssh_row(&out, &nodes[0]).ends_with("ok (0 containers)"), "{out}");
    assert!(sshd.pct_calls().iter().all(|(args, _)| args == &["list"]), "{:?}", sshd.pct_calls());

    std::fs::remove_file(sshd.dir.path().join("shim/pct")).unwrap();
    let (ok, out, _) = check(&sim, &env).await;
    assert!(!ok);
    // The login shell's own words: `sh: 1: pct: not found` from dash, `… pct: command not found` from bash.
    let row = ssh_row(&out, &nodes[0]);
    assert!(row.contains("pct not found:") && row.matches("pct").count() >= 2, "{out}");
}
