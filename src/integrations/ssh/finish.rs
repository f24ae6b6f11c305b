//! The finishing script run in a new container: the owner's login, password, SSH key and hostname.
//!
//! Every value is shell-quoted into the script, and the password travels on stdin, so it is in no
//! command line, process list or log.
//!
//! An account that already exists with a system UID (below [`LOGIN_UID_MIN`], above
//! [`LOGIN_UID_MAX`], or root's 0) is left alone: the script exits [`EXIT_SYSTEM_ACCOUNT`] before
//! anything is changed, so finishing never sets the password of `daemon`, `www-data` or an image's own
//! service accounts, whatever proxdesk's list of reserved names knows.

use super::quote::shell_quote;

/// The lowest UID of a login account (Debian's, RHEL's and `login.defs`' `UID_MIN`).
pub const LOGIN_UID_MIN: u32 = 1000;
/// The highest UID of a login account (`UID_MAX`); above are `nobody` (65534) and the like.
pub const LOGIN_UID_MAX: u32 = 59999;
/// The script's exit status when the login exists in the guest as a system account; nothing was changed.
pub const EXIT_SYSTEM_ACCOUNT: i32 = 10;

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
         lo={LOGIN_UID_MIN}\n\
         hi={LOGIN_UID_MAX}\n\
         if uid=$(id -u \"$u\" 2>/dev/null); then\n\
         \x20 if [ \"$uid\" -lt \"$lo\" ] || [ \"$uid\" -gt \"$hi\" ]; then\n\
         \x20   printf 'proxdesk: %s is a system account here (uid %s); its password is left alone\\n' \"$u\" \"$uid\" >&2\n\
         \x20   exit {EXIT_SYSTEM_ACCOUNT}\n\
         \x20 fi\n\
         else\n\
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
        let out = run_sh(&cmd, &bin, b"s3cret pw'\n");
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

    /// Runs `cmd` in a real `sh` with the stubs in `bin` first in its PATH, writing `stdin` to it.
    fn run_sh(cmd: &str, bin: &std::path::Path, stdin: &[u8]) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(stdin)?;
                child.wait_with_output()
            })
            .unwrap()
    }

    /// Runs the guest command for `user` in a real shell against a guest whose `/etc/passwd` is
    /// `passwd` (read by a stub `id`, as the real one reads it); the other tools log their arguments.
    /// Returns the exit status, stderr and the log.
    fn run_against_passwd(passwd: &str, user: &str) -> (i32, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (log, bin, file) = (root.join("log"), root.join("bin"), root.join("passwd"));
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(&file, passwd).unwrap();
        let id = format!(
            "#!/bin/sh\n[ \"$1\" = -u ] || exit 2\nwhile IFS=: read -r name _ uid _; do\n  [ \"$name\" = \"$2\" ] && {{ echo \"$uid\"; exit 0; }}\ndone < {}\necho \"id: '$2': no such user\" >&2\nexit 1\n",
            file.display()
        );
        let logger = format!("#!/bin/sh\necho \"$(basename \"$0\") $*\" >> {}\nexit 0\n", log.display());
        for (tool, script) in [("id", &id), ("useradd", &logger), ("chpasswd", &logger), ("hostname", &logger)] {
            let path = bin.join(tool);
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        let spec = FinishSpec { vmid: 1, login_user: user.into(), hostname: "h".into(), ssh_public_key: None };
        let cmd = finish_command(FinishMode::Guest, "pct", &spec)
            .replace("/etc/hostname", &root.join("hostname").display().to_string());
        let out = run_sh(&cmd, &bin, b"pw\n");
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned(), logged)
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
        deploy:x:998:998::/srv/deploy:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
        edge:x:59999:59999::/home/edge:/bin/sh\n";

    #[test]
    fn an_existing_system_account_is_refused_with_exit_10_and_left_alone() {
        for (user, uid) in [("root", 0), ("daemon", 1), ("www-data", 33), ("deploy", 998), ("nobody", 65534)] {
            let (status, stderr, logged) = run_against_passwd(PASSWD, user);
            assert_eq!(status, EXIT_SYSTEM_ACCOUNT, "{user}: {stderr}");
            assert!(stderr.contains(&format!("{user} is a system account here (uid {uid})")), "{stderr}");
            assert_eq!(logged, "", "{user}: nothing ran after the refusal");
        }
    }

    #[test]
    fn login_accounts_get_their_password_and_new_ones_are_made() {
        for user in ["alice", "edge"] {
            let (status, stderr, logged) = run_against_passwd(PASSWD, user);
            assert_eq!(status, 0, "{user}: {stderr}");
            assert!(logged.starts_with("chpasswd"), "{user} exists: no useradd, a password: {logged}");
        }
        let (status, stderr, logged) = run_against_passwd(PASSWD, "bob");
        assert_eq!(status, 0, "{stderr}");
        assert!(logged.starts_with("useradd -m -s /bin/sh bob\nchpasswd"), "{logged}");
    }

    #[test]
    fn via_node_wraps_the_script_in_pct_exec() {
        let spec = FinishSpec { vmid: 123, login_user: "bob".into(), hostname: "h".into(), ssh_public_key: None };
        let cmd = finish_command(FinishMode::ViaNode, "pct", &spec);
        assert!(cmd.starts_with("pct exec 123 -- sh -c '"), "{cmd}");
    }
}
