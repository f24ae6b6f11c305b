//! Real outside programs for tests: found, or skipped with a reason (failed under
//! `PROXDESK_REQUIRE_EXTERNAL=1`, as in CI).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of `program` if installed; otherwise prints why the test skips, or panics in CI.
pub fn require(program: &str, candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        if Path::new(c).exists() {
            return Some(PathBuf::from(c));
        }
    }
    if std::env::var("PROXDESK_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
        panic!("{program} is required (PROXDESK_REQUIRE_EXTERNAL=1) but none of {candidates:?} exists");
    }
    eprintln!("SKIPPED: {program} is not installed (looked for {candidates:?})");
    None
}

/// A real OpenSSH server on 127.0.0.1 with a temporary host key, one authorized client key, and a
/// `pct` shim first in the session's PATH that records each call (arguments and stdin).
pub struct Sshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Sshd {
    pub fn start() -> Option<Sshd> {
        let sshd = require("sshd", &["/usr/sbin/sshd"])?;
        let keygen = require("ssh-keygen", &["/usr/bin/ssh-keygen"])?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["host_key", "client_key"] {
            let ok = Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(name))
                .status()
                .unwrap()
                .success();
            assert!(ok, "ssh-keygen failed");
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let shim = d.join("shim");
        std::fs::create_dir(&shim).unwrap();
        let calls = d.join("calls");
        std::fs::create_dir(&calls).unwrap();
        let script = format!(
            "#!/bin/sh\nn={calls}/$$\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > $n.args\ncat > $n.stdin\nexit 0\n",
            calls = calls.display()
        );
        std::fs::write(shim.join("pct"), script).unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(shim.join("pct")).unwrap().permissions(),
            0o755,
        );
        std::fs::set_permissions(shim.join("pct"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nSetEnv PATH={shim}:/usr/sbin:/usr/bin:/sbin:/bin\n",
            d = d.display(),
            shim = shim.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts");
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "sshd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Sshd { port, dir, child })
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A known_hosts file with this server's real host key.
    pub fn known_hosts(&self) -> PathBuf {
        let key = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let path = self.dir.path().join("known_hosts");
        std::fs::write(&path, format!("[127.0.0.1]:{} {}", self.port, key)).unwrap();
        path
    }

    /// A known_hosts file naming another key for this server (a changed host key).
    pub fn wrong_known_hosts(&self) -> PathBuf {
        let other = self.dir.path().join("other_key");
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).status().unwrap();
        let key = std::fs::read_to_string(other.with_extension("pub")).unwrap();
        let path = self.dir.path().join("wrong_known_hosts");
        std::fs::write(&path, format!("[127.0.0.1]:{} {}", self.port, key)).unwrap();
        path
    }

    /// Every `pct` call so far: its arguments and what it read on stdin.
    pub fn pct_calls(&self) -> Vec<(Vec<String>, String)> {
        let calls = self.dir.path().join("calls");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&calls).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "args") {
                let args = std::fs::read(&path).unwrap();
                let args = args
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                let stdin = std::fs::read_to_string(path.with_extension("stdin")).unwrap_or_default();
                out.push((args, stdin));
            }
        }
        out
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
