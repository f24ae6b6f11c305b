//! The finishing script run in a new container: the owner's login, password, SSH key and hostname.
//!
//! Every value is shell-quoted into the script, and the password travels on stdin, so it is in no
//! command line, process list or log.

use super::quote::shell_quote;

/// How the script reaches the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishMode {
    /// SSH to the PVE node and run `pct exec <vmid> -- …`.
    ViaNode,
    /// SSH straight to the guest as root.
    Guest,
}

/// What to set up; the password is written to the command's stdin separately.
#[derive(Debug, Clone)]
pub struct FinishSpec {
    pub vmid: i64,
    pub login_user: String,
    pub hostname: String,
    pub ssh_public_key: Option<String>,
}

/// The remote command for `spec`. Its stdin must carry the password and a newline.
pub fn finish_command(mode: FinishMode, pct: &str, spec: &FinishSpec) -> String {
    let user = shell_quote(&spec.login_user);
    let host = shell_quote(&spec.hostname);
    let key = shell_quote(spec.ssh_public_key.as_deref().unwrap_or(""));
    let script = format!(
        "set -eu\n\
         IFS= read -r pw\n\
         u={user}\n\
         h={host}\n\
         k={key}\n\
         if ! id -u \"$u\" >/dev/null 2>&1; then\n\
         \x20 if command -v useradd >/dev/null 2>&1; then useradd -m -s /bin/sh \"$u\"; else adduser -D -s /bin/sh \"$u\"; fi\n\
         fi\n\
         printf '%s:%s\\n' \"$u\" \"$pw\" | chpasswd\n\
         if [ -n \"$k\" ]; then\n\
         \x20 mkdir -p \"/home/$u/.ssh\"\n\
         \x20 printf '%s\\n' \"$k\" > \"/home/$u/.ssh/authorized_keys\"\n\
         \x20 chmod 700 \"/home/$u/.ssh\"\n\
         \x20 chmod 600 \"/home/$u/.ssh/authorized_keys\"\n\
         \x20 chown -R \"$u\" \"/home/$u/.ssh\"\n\
         fi\n\
         printf '%s\\n' \"$h\" > /etc/hostname\n\
         hostname \"$h\" 2>/dev/null || true\n"
    );
    match mode {
        FinishMode::ViaNode => format!("{pct} exec {} -- sh -c {}", spec.vmid, shell_quote(&script)),
        FinishMode::Guest => format!("sh -c {}", shell_quote(&script)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the guest command in a real shell with stub tools that log their arguments, and checks
    /// that hostile values arrive as data and never run.
    #[test]
    fn hostile_values_stay_data_in_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let log = root.join("log");
        let bin = root.join("bin");
        std::fs::create_dir(&bin).unwrap();
        for tool in ["id", "useradd", "adduser", "chpasswd", "hostname", "chown"] {
            let script = format!(
                "#!/bin/sh\necho \"{tool} $*\" >> {}\n[ {tool} = id ] && exit 1\n[ {tool} = chpasswd ] && cat >> {}\nexit 0\n",
                log.display(),
                log.display()
            );
            let path = bin.join(tool);
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        let pwned = root.join("pwned");
        let hostile = format!("ssh-ed25519 AAAA x'$(touch {p})`touch {p}`;touch {p}", p = pwned.display());
        let spec = FinishSpec {
            vmid: 101,
            login_user: "alice".into(),
            hostname: "web1".into(),
            ssh_public_key: Some(hostile.clone()),
        };
        // Run the script with the filesystem paths redirected into the temp dir.
        let cmd = finish_command(FinishMode::Guest, "pct", &spec)
            .replace("/home/", &format!("{}/home/", root.display()))
            .replace("/etc/hostname", &root.join("hostname").display().to_string());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b"s3cret pw'\n")?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!pwned.exists(), "a value was executed");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("useradd -m -s /bin/sh alice"), "{logged}");
        assert!(logged.contains("alice:s3cret pw'"), "password reached chpasswd on stdin: {logged}");
        let keys = std::fs::read_to_string(root.join("home/alice/.ssh/authorized_keys")).unwrap();
        assert_eq!(keys, format!("{hostile}\n"));
        assert_eq!(std::fs::read_to_string(root.join("hostname")).unwrap(), "web1\n");
        assert!(!cmd.contains("s3cret"), "the password is not in the command");
    }

    #[test]
    fn via_node_wraps_the_script_in_pct_exec() {
        let spec = FinishSpec { vmid: 123, login_user: "bob".into(), hostname: "h".into(), ssh_public_key: None };
        let cmd = finish_command(FinishMode::ViaNode, "pct", &spec);
        assert!(cmd.starts_with("pct exec 123 -- sh -c '"), "{cmd}");
    }
}
