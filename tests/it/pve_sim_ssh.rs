//! The simulator's SSH side driven by proxdesk's own SSH client (ssh2): host-key pinning and
//! known_hosts, public-key auth, and the finishing command applied to container state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proxdesk::integrations::pve::WaitOptions;
use proxdesk::integrations::pve::sim::{FinishRecord, SimHandle, SimSsh, SimSshConfig, SimSshHandle, write_client_key};
use proxdesk::integrations::pve::wire::CloneRequest;
use proxdesk::integrations::ssh::{FinishMode, FinishSpec, SshConfig, SshError, SshTarget, finish_command, run};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use sha2::{Digest, Sha256};

use crate::pve_client::{sim, token_client};

/// A fresh client key in `dir`; returns its path and its public line.
fn client_key(dir: &Path, name: &str, comment: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let public = write_client_key(&path, comment).unwrap();
    (path, public)
}

struct Node {
    sim: SimHandle,
    ssh: SimSshHandle,
    key_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Node {
    fn config(&self) -> SshConfig {
        self.ssh.ssh_config(&self.key_file)
    }
    fn target(&self) -> SshTarget {
        self.config().target_for_node("pve1")
    }
}

/// A simulator with its SSH side; the client key's comment is hostile on purpose (comments are not
/// part of the key).
async fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let (key_file, public) = client_key(dir.path(), "id_ed25519", "proxdesk@desk '$(touch /tmp/pwned)`id`;");
    let sim = sim().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh = SimSsh::start(listener, &sim, SimSshConfig::new(vec![public])).await.unwrap();
    Node { sim, ssh, key_file, _dir: dir }
}

/// Clones template 9000 to `vmid` through the PVE API and starts it.
async fn running_container(sim: &SimHandle, vmid: u64) {
    let pve = token_client(sim);
    let wait = WaitOptions {
        deadline: Duration::from_secs(5),
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(50),
    };
    let req = CloneRequest { newid: vmid, hostname: Some("fresh".into()), ..CloneRequest::default() };
    pve.wait_task(&pve.lxc_clone("pve1", 9000, &req).await.unwrap(), wait).await.unwrap();
    pve.wait_task(&pve.lxc_start("pve1", vmid).await.unwrap(), wait).await.unwrap();
}

fn spec(vmid: i64, login_user: &str, hostname: &str, key: Option<&str>) -> FinishSpec {
    FinishSpec { vmid, login_user: login_user.into(), hostname: hostname.into(), ssh_public_key: key.map(Into::into) }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn pinned_fingerprint_and_the_finishing_command_set_up_the_container() {
    let node = node().await;
    running_container(&node.sim, 120).await;
    assert!(node.ssh.host_key_fingerprint().starts_with("SHA256:"));
    let owner_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwner alice@laptop";
    let cmd = finish_command(FinishMode::ViaNode, "pct", &spec(120, "alice", "web1", Some(owner_key)));
    let out = run(&node.config(), &node.target(), &cmd, Some(b"s3cret pw\n")).await.unwrap();
    assert_eq!((out.exit_status, out.stderr.as_str()), (0, ""));
    let guest = node.sim.state().guests[&120].clone();
    let expected = FinishRecord {
        login_user: "alice".into(),
        password_sha256: sha256_hex("s3cret pw"),
        authorized_key: Some(owner_key.into()),
        hostname: "web1".into(),
    };
    assert_eq!(guest.finished, Some(expected));
    let config = token_client(&node.sim).lxc_config("pve1", 120).await.unwrap();
    assert_eq!(config.hostname.as_deref(), Some("web1"));
    let recorded = node.ssh.commands();
    assert_eq!(recorded.len(), 1);
    assert_eq!((recorded[0].user.as_str(), recorded[0].command.as_str()), ("root", cmd.as_str()));
    assert_eq!(recorded[0].stdin_first_line_sha256, Some(sha256_hex("s3cret pw")));
    assert!(!format!("{recorded:?}{:?}", node.sim.state()).contains("s3cret"), "the password is kept only hashed");
    let probe = run(&node.config(), &node.target(), "echo ok", None).await.unwrap();
    assert_eq!((probe.exit_status, probe.stdout.as_str()), (0, "ok\n"));
}

#[tokio::test]
async fn unknown_or_changed_host_keys_are_refused_and_known_hosts_works() {
    let node = node().await;
    let mut config = node.config();
    config.fingerprints = vec!["SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".into()];
    let err = run(&config, &node.target(), "true", None).await.unwrap_err();
    assert!(
        matches!(&err, SshError::UnknownHostKey { fingerprint, .. } if *fingerprint == node.ssh.host_key_fingerprint()),
        "{err}"
    );

    let port = node.ssh.addr().port();
    let known_hosts = node._dir.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", node.ssh.known_hosts_line("127.0.0.1", port))).unwrap();
    config.fingerprints.clear();
    config.known_hosts = Some(known_hosts.clone());
    assert!(run(&config, &node.target(), "true", None).await.unwrap().success());

    let other = PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]));
    let line = other.public_key().to_openssh().unwrap();
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {line}\n")).unwrap();
    let err = run(&config, &node.target(), "true", None).await.unwrap_err();
    assert!(matches!(err, SshError::HostKeyMismatch { .. }), "{err}");
    assert_eq!(node.ssh.commands().len(), 1, "only the accepted connection ran a command");
}

#[tokio::test]
async fn only_the_configured_keys_and_user_may_log_in() {
    let node = node().await;
    let (stranger, _) = client_key(node._dir.path(), "stranger", "stranger");
    let mut config = node.config();
    config.key_file = stranger;
    let err = run(&config, &node.target(), "true", None).await.unwrap_err();
    assert!(matches!(err, SshError::Auth { .. }), "{err}");

    let mut config = node.config();
    config.user = "admin".into();
    let err = run(&config, &node.target(), "true", None).await.unwrap_err();
    assert!(matches!(err, SshError::Auth { .. }), "{err}");
    assert!(node.ssh.commands().is_empty(), "nothing ran");
}

#[tokio::test]
async fn hostile_values_arrive_verbatim() {
    let node = node().await;
    running_container(&node.sim, 121).await;
    let key = "ssh-ed25519 AAAA x'$(touch /tmp/pwned)`id`;\n\"q\" \\ && reboot";
    let user = "bob'$(id)`x`;#&&";
    let host = "web$(id)\n'x'";
    let password = " pw with ' \" $(id) \\ ";
    let cmd = finish_command(FinishMode::ViaNode, "pct", &spec(121, user, host, Some(key)));
    let out = run(&node.config(), &node.target(), &cmd, Some(format!("{password}\nignored").as_bytes())).await.unwrap();
    assert_eq!(out.exit_status, 0, "{}", out.stderr);
    let finished = node.sim.state().guests[&121].finished.clone().unwrap();
    assert_eq!(finished.login_user, user);
    assert_eq!(finished.hostname, host);
    assert_eq!(finished.authorized_key.as_deref(), Some(key));
    assert_eq!(finished.password_sha256, sha256_hex(password));

    // A name chpasswd could not take is refused like useradd does, and nothing changes.
    let cmd = finish_command(FinishMode::ViaNode, "pct", &spec(121, "a:b", "other", None));
    let out = run(&node.config(), &node.target(), &cmd, Some(b"pw\n")).await.unwrap();
    assert_eq!((out.exit_status, out.stderr.as_str()), (3, "useradd: invalid user name 'a:b'\n"));
    assert_eq!(node.sim.state().guests[&121].finished.as_ref().unwrap().login_user, user);
}

#[tokio::test]
async fn pct_errors_match_the_real_node() {
    let node = node().await;
    let finish = |vmid| finish_command(FinishMode::ViaNode, "pct", &spec(vmid, "alice", "web1", None));
    let out = run(&node.config(), &node.target(), &finish(4242), Some(b"pw\n")).await.unwrap();
    assert_eq!(out.exit_status, 2);
    assert_eq!(out.stderr, "Configuration file 'nodes/pve1/lxc/4242.conf' does not exist\n");

    // Template 9000 exists but is not running.
    let out = run(&node.config(), &node.target(), &finish(9000), Some(b"pw\n")).await.unwrap();
    assert_eq!((out.exit_status, out.stderr.as_str()), (255, "CT 9000 not running\n"));
    assert_eq!(node.sim.state().guests[&9000].finished, None);

    let out = run(&node.config(), &node.target(), "reboot now", None).await.unwrap();
    assert_eq!((out.exit_status, out.stderr.as_str()), (127, "sh: 1: reboot: not found\n"));
    let statuses: Vec<u32> = node.ssh.commands().iter().map(|c| c.exit_status).collect();
    assert_eq!(statuses, [2, 255, 127]);
}

#[test]
fn client_keys_are_private_and_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let (path, line) = client_key(dir.path(), "k", "a comment");
    assert!(line.starts_with("ssh-ed25519 AAAA") && line.ends_with(" a comment"), "{line}");
    assert!(PublicKey::from_openssh(&line).is_ok());
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(PrivateKey::from_openssh(std::fs::read(&path).unwrap()).is_ok());
    assert!(write_client_key(&path, "again").is_err(), "an existing key is never overwritten");
}

#[tokio::test]
async fn printed_settings_configure_proxdesk_and_the_host_key_follows_the_seed() {
    let node = node().await;
    let mut raw = proxdesk::config::RawSettings::defaults();
    for (name, value) in node.ssh.settings(&node.key_file) {
        raw.set(&name.trim_start_matches("PROXDESK_").to_lowercase(), value);
    }
    let config = SshConfig::from_settings(&raw).unwrap().unwrap();
    for n in ["pve1", "pve2", "pve3"] {
        assert_eq!(config.target_for_node(n), node.target());
    }
    assert!(run(&config, &node.target(), "true", None).await.unwrap().success());

    let again = |seed| {
        let sim = &node.sim;
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let cfg = SimSshConfig { host_key_seed: seed, ..SimSshConfig::new(vec![]) };
            SimSsh::start(listener, sim, cfg).await.unwrap().host_key_fingerprint()
        }
    };
    assert_eq!(again(None).await, node.ssh.host_key_fingerprint(), "same simulator seed, same host key");
    assert_ne!(again(Some(99)).await, node.ssh.host_key_fingerprint());
}
