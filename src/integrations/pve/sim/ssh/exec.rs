//! What the simulated node does with an `exec` request: `pct exec <vmid> -- sh -c '<finishing script>'`
//! is applied to the container's state; `pct list`, `true`, `echo` and `hostname` answer probes; anything else
//! is "not found", as from `sh`.
//!
//! The finishing script is read, not run: its literal assignments (`u=`, `h=`, `k=`, and the login UID
//! range `lo=`, `hi=`) are applied to the container's `/etc/passwd` ([`Passwd`]) the way the script's
//! shell code does (the code itself is run in a real shell by `integrations::ssh::finish`'s tests): an
//! existing account outside `lo`–`hi` ends the script with exit status 10 and nothing changed; a script
//! without the range (an older proxdesk) sets the existing account's password, whatever its UID.

use sha2::{Digest, Sha256};

use super::super::Sim;
use super::super::passwd::Passwd;
use super::super::state::{FinishRecord, GuestKind};
use super::words::{Token, Word, commands, lex};

/// What a command printed and its exit status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub exit_status: u32,
}

impl Outcome {
    fn ok(stdout: impl Into<String>) -> Self {
        Self { stdout: stdout.into(), ..Self::default() }
    }
    fn fail(exit_status: u32, stderr: impl Into<String>) -> Self {
        Self { stderr: format!("{}\n", stderr.into()), exit_status, ..Self::default() }
    }
}

/// Runs `command` (as the node's login shell would receive it) with `stdin`. `node` is the node this
/// server stands for; `None` serves every node.
pub(crate) fn run(sim: &Sim, node: Option<&str>, command: &str, stdin: &[u8]) -> Outcome {
    match simple_words(command) {
        Ok(words) => on_node(sim, node, &words, stdin),
        Err(outcome) => outcome,
    }
}

/// The words of a single simple command without expansions, or the shell's complaint.
fn simple_words(text: &str) -> Result<Vec<String>, Outcome> {
    let tokens = lex(text).map_err(|_| Outcome::fail(2, "sh: 1: Syntax error: Unterminated quoted string"))?;
    let mut cmds = commands(tokens);
    if cmds.len() > 1 {
        return Err(Outcome::fail(2, "sh: 1: simulator: only one simple command per exec is supported"));
    }
    let mut words = Vec::new();
    for token in cmds.pop().unwrap_or_default() {
        match token {
            Token::Word(Word { expands: false, text, .. }) => words.push(text),
            _ => return Err(Outcome::fail(2, "sh: 1: simulator: redirections and expansions are not supported")),
        }
    }
    Ok(words)
}

fn on_node(sim: &Sim, node: Option<&str>, words: &[String], stdin: &[u8]) -> Outcome {
    match words.first().map(String::as_str) {
        Some("pct") => pct(sim, node, &words[1..], stdin),
        Some("hostname") => {
            let state = sim.state.lock().expect("state");
            Outcome::ok(format!("{}\n", node.or(state.nodes.first().map(String::as_str)).unwrap_or("pve")))
        }
        _ => common(words),
    }
}

/// Commands every shell has: the connectivity probes.
fn common(words: &[String]) -> Outcome {
    match words.first().map(String::as_str) {
        None | Some("true" | ":") => Outcome::ok(""),
        Some("false") => Outcome { exit_status: 1, ..Outcome::default() },
        Some("echo") => Outcome::ok(format!("{}\n", words[1..].join(" "))),
        Some(other) => Outcome::fail(127, format!("sh: 1: {other}: not found")),
    }
}

/// `pct list`: the node's containers in `pct`'s table, nothing at all when it has none.
fn pct_list(sim: &Sim, node: Option<&str>) -> Outcome {
    let state = sim.state.lock().expect("state");
    let here = node.map(str::to_owned).or_else(|| state.nodes.first().cloned()).unwrap_or_else(|| "pve".into());
    let mut rows: Vec<_> = state.guests.values().filter(|g| g.kind == GuestKind::Lxc && g.node == here).collect();
    if rows.is_empty() {
        return Outcome::ok("");
    }
    rows.sort_by_key(|g| g.vmid);
    let line = |a: &str, b: &str, c: &str, d: &str| format!("{a:<10} {b:<10} {c:<12} {d:<20}\n");
    let mut out = line("VMID", "Status", "Lock", "Name");
    for g in rows {
        let status = if g.running { "running" } else { "stopped" };
        let lock = g.config.get("lock").map_or("", String::as_str);
        let name = g.config.get("hostname").map_or("", String::as_str);
        out.push_str(&line(&g.vmid.to_string(), status, lock, name));
    }
    Outcome::ok(out)
}

/// `pct list`, and `pct exec <vmid> [--] <command…>`.
fn pct(sim: &Sim, node: Option<&str>, args: &[String], stdin: &[u8]) -> Outcome {
    if args.len() == 1 && args[0] == "list" {
        return pct_list(sim, node);
    }
    let (Some("exec"), Some(vmid_raw)) = (args.first().map(String::as_str), args.get(1)) else {
        return Outcome::fail(255, "simulator: only 'pct list' and 'pct exec <vmid> -- <command>' are simulated");
    };
    let Ok(vmid) = vmid_raw.parse::<u64>() else {
        return Outcome::fail(
            255,
            format!("400 Parameter verification failed.\nvmid: type check ('integer') failed - got '{vmid_raw}'"),
        );
    };
    let inner = match args.get(2).map(String::as_str) {
        Some("--") => &args[3..],
        _ => &args[2..],
    };
    let mut state = sim.state.lock().expect("state");
    let home = match node {
        Some(n) => n.to_owned(),
        None => match state.guests.get(&vmid) {
            Some(g) => g.node.clone(),
            None => state.nodes.first().cloned().unwrap_or_else(|| "pve".into()),
        },
    };
    let guest = match state.guest_mut(&home, GuestKind::Lxc, vmid) {
        Ok(g) => g,
        Err(e) => return Outcome::fail(2, e.message),
    };
    if !guest.running {
        return Outcome::fail(255, format!("CT {vmid} not running"));
    }
    match inner {
        [sh, c, script, ..] if sh == "sh" && c == "-c" => match finish_script(script, stdin, &mut guest.passwd) {
            Ok(record) => {
                guest.config.insert("hostname".into(), record.hostname.clone());
                guest.finished = Some(record);
                Outcome::ok("")
            }
            Err(outcome) => outcome,
        },
        words => common(words),
    }
}

/// Reads the `u=`, `h=`, `k=`, `lo=` and `hi=` assignments of `ssh::finish_command`'s script and the
/// password from the first line of stdin, as `IFS= read -r pw` would, and applies them to `passwd`.
fn finish_script(script: &str, stdin: &[u8], passwd: &mut Passwd) -> Result<FinishRecord, Outcome> {
    let tokens = lex(script).map_err(|_| Outcome::fail(2, "sh: 1: Syntax error: Unterminated quoted string"))?;
    let (mut user, mut host, mut key, mut lo, mut hi) = (None, None, None, None, None);
    for cmd in commands(tokens) {
        let [Token::Word(word)] = cmd.as_slice() else { continue };
        let Some((name, value)) = word.assignment() else { continue };
        let slot = match name {
            "u" => &mut user,
            "h" => &mut host,
            "k" => &mut key,
            "lo" => &mut lo,
            "hi" => &mut hi,
            _ => continue,
        };
        if word.expands {
            return Err(Outcome::fail(2, format!("sh: simulator: {name}= must be a literal value")));
        }
        *slot = Some(value.to_owned());
    }
    let (Some(login_user), Some(hostname)) = (user, host) else {
        return Err(Outcome::fail(2, "sh: simulator: only proxdesk's finishing script (u=, h=, k=) is interpreted"));
    };
    // `read` fails at end of input without a newline, and `set -e` ends the script there.
    let Some(end) = stdin.iter().position(|&b| b == b'\n') else {
        return Err(Outcome { exit_status: 1, ..Outcome::default() });
    };
    // `[ "$uid" -lt "$lo" ]` on a value that is not a number is an error, and `set -e` ends the script.
    let bound =
        |v: Option<String>| v.map(|v| v.parse::<u32>().map_err(|_| Outcome::fail(2, "sh: 1: [: Illegal number")));
    let range = match (bound(lo).transpose()?, bound(hi).transpose()?) {
        (Some(lo), Some(hi)) => Some((lo, hi)),
        _ => None,
    };
    match (passwd.uid(&login_user), range) {
        (Some(uid), Some((lo, hi))) if uid < lo || uid > hi => {
            let message =
                format!("proxdesk: {login_user} is a system account here (uid {uid}); its password is left alone");
            return Err(Outcome::fail(crate::integrations::ssh::EXIT_SYSTEM_ACCOUNT as u32, message));
        }
        (Some(_), _) => {}
        (None, _) => {
            if login_user.is_empty() || login_user.contains([':', '/', '\n']) {
                return Err(Outcome::fail(3, format!("useradd: invalid user name '{login_user}'")));
            }
            let (first, last) = range.unwrap_or((1000, 59999));
            passwd.add_login(&login_user, first, last);
        }
    }
    Ok(FinishRecord {
        login_user,
        password_sha256: hex::encode(Sha256::digest(&stdin[..end])),
        authorized_key: key.filter(|k| !k.is_empty()),
        hostname,
    })
}

/// SHA-256 (hex) of the first line of `stdin`, `None` when stdin is empty.
pub(crate) fn first_line_sha256(stdin: &[u8]) -> Option<String> {
    let line = stdin.split(|&b| b == b'\n').next().filter(|_| !stdin.is_empty())?;
    Some(hex::encode(Sha256::digest(line)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::ssh::{FinishMode, FinishSpec, finish_command};

    #[test]
    fn the_finishing_script_is_read_back_verbatim() {
        let hostile = "ssh-ed25519 AAAA x'$(touch /p)`id`;\n\"q\" \\";
        let spec = FinishSpec {
            vmid: 101,
            login_user: "al'ice".into(),
            hostname: "web$1".into(),
            ssh_public_key: Some(hostile.into()),
        };
        let cmd = finish_command(FinishMode::ViaNode, "pct", &spec);
        let words = simple_words(&cmd).unwrap();
        assert_eq!(words[..4], ["pct", "exec", "101", "--"]);
        let record = finish_script(&words[6], b"pw ' x\nrest", &mut Passwd::default()).unwrap();
        assert_eq!(record.login_user, "al'ice");
        assert_eq!(record.hostname, "web$1");
        assert_eq!(record.authorized_key.as_deref(), Some(hostile));
        assert_eq!(record.password_sha256, hex::encode(Sha256::digest(b"pw ' x")));
        assert_eq!(finish_script(&words[6], b"no newline", &mut Passwd::default()).unwrap_err().exit_status, 1);
        let none = FinishSpec { ssh_public_key: None, ..spec };
        let words = simple_words(&finish_command(FinishMode::ViaNode, "pct", &none)).unwrap();
        assert_eq!(finish_script(&words[6], b"x\n", &mut Passwd::default()).unwrap().authorized_key, None);
    }

    fn script_for(user: &str) -> String {
        let spec = FinishSpec { vmid: 101, login_user: user.into(), hostname: "h".into(), ssh_public_key: None };
        simple_words(&finish_command(FinishMode::ViaNode, "pct", &spec)).unwrap().remove(6)
    }

    #[test]
    fn a_system_account_of_the_guest_ends_the_script_with_exit_10() {
        let mut passwd = Passwd::default();
        passwd.set("deploy", 998);
        for (user, uid) in [("root", 0), ("www-data", 33), ("deploy", 998), ("nobody", 65534)] {
            let out = finish_script(&script_for(user), b"pw\n", &mut passwd).unwrap_err();
            assert_eq!(out.exit_status, 10, "{user}");
            assert!(out.stderr.contains(&format!("{user} is a system account here (uid {uid})")), "{}", out.stderr);
        }
        assert_eq!(
            passwd,
            {
                let mut p = Passwd::default();
                p.set("deploy", 998);
                p
            },
            "nothing changed"
        );
    }

    #[test]
    fn logins_are_made_from_uid_1000_and_existing_ones_reused() {
        let mut passwd = Passwd::default();
        assert_eq!(finish_script(&script_for("alice"), b"pw\n", &mut passwd).unwrap().login_user, "alice");
        assert_eq!(passwd.uid("alice"), Some(1000));
        assert!(finish_script(&script_for("alice"), b"pw2\n", &mut passwd).is_ok(), "a login is reused");
        assert_eq!(passwd.uid("alice"), Some(1000));
        finish_script(&script_for("bob"), b"pw\n", &mut passwd).unwrap();
        assert_eq!(passwd.uid("bob"), Some(1001));
    }

    #[test]
    fn a_script_without_the_uid_range_sets_a_system_account_password_as_it_would_in_a_guest() {
        let old = "set -eu\nIFS= read -r pw\nu='root'\nh='h'\nk=''\nprintf '%s:%s\\n' \"$u\" \"$pw\" | chpasswd\n";
        let record = finish_script(old, b"pw\n", &mut Passwd::default()).unwrap();
        assert_eq!(record.login_user, "root");
    }

    #[test]
    fn probes_and_unknown_commands() {
        assert_eq!(common(&simple_words("echo 'a  b' c").unwrap()), Outcome::ok("a  b c\n"));
        assert_eq!(common(&simple_words("true").unwrap()).exit_status, 0);
        let missing = common(&simple_words("rm -rf /").unwrap());
        assert_eq!((missing.exit_status, missing.stderr.as_str()), (127, "sh: 1: rm: not found\n"));
        assert_eq!(simple_words("echo $HOME").unwrap_err().exit_status, 2);
        assert_eq!(simple_words("true; rm x").unwrap_err().exit_status, 2);
        assert_eq!(first_line_sha256(b""), None);
        assert_eq!(first_line_sha256(b"a\nb"), Some(hex::encode(Sha256::digest(b"a"))));
    }
}
