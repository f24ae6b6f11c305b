//! The command line, run as the real binary.

use std::io::Write;
use std::process::{Command, Stdio};

fn proxdesk(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proxdesk"))
        .args(args)
        .env("PROXDESK_DATA_DIR", dir)
        .env("PROXDESK_LOG", "warn")
        .env_remove("PROXDESK_DATABASE_URL")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn migrate_user_add_and_token_create() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = proxdesk(dir.path(), &["migrate"], None);
    assert!(ok && out.contains("migrations applied"));
    let (ok, out, _) = proxdesk(dir.path(), &["user", "add", "alice"], None);
    assert!(ok, "{out}");
    assert!(out.contains("created alice (user)"));
    let generated = out.lines().find_map(|l| l.strip_prefix("password: ")).expect("generated password printed once");
    assert_eq!(generated.len(), 16);
    let (ok, out, _) =
        proxdesk(dir.path(), &["user", "add", "chief", "--admin", "--password-stdin"], Some("a-long-password\n"));
    assert!(ok && out.contains("created chief (admin)") && !out.contains("password:"), "{out}");
    let (ok, out, _) = proxdesk(dir.path(), &["token", "create", "chief", "--name", "ci"], None);
    assert!(ok && out.trim().starts_with("pdk_"), "{out}");
    let (ok, _, err) = proxdesk(dir.path(), &["user", "add", "alice"], None);
    assert!(!ok && err.contains("username: this name is taken"), "{err}");
    let (ok, _, err) = proxdesk(dir.path(), &["user", "add", "x", "--password-stdin"], Some("short\n"));
    assert!(!ok && err.contains("username") && err.contains("password"), "{err}");
}

#[test]
fn invalid_configuration_fails_at_start_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_proxdesk"))
        .arg("serve")
        .env("PROXDESK_DATA_DIR", dir.path())
        .env("PROXDESK_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("PROXDESK_LISTEN") && err.contains("not-an-address"), "{err}");

    let toml = dir.path().join("bad.toml");
    std::fs::write(&toml, "session_hours = 0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_proxdesk"))
        .arg("migrate")
        .env("PROXDESK_DATA_DIR", dir.path())
        .env("PROXDESK_CONFIG", &toml)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("PROXDESK_SESSION_HOURS"), "{err}");
}

#[test]
fn the_domain_imports_neither_poem_nor_sea_orm() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/domain");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for forbidden in ["poem", "sea_orm", "entities::"] {
            assert!(!text.contains(forbidden), "{} mentions {forbidden}", path.display());
        }
    }
}
