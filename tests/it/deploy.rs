//! The deployment files: the systemd unit is valid for the systemd on this machine, starts the binary
//! this build makes, uses only settings proxdesk knows, and keeps its sandbox tight.

use std::process::Command;

use crate::external::require;

const UNIT: &str = include_str!("../../deploy/proxdesk.service");

/// The unit as shipped, pointed at this build's binary (`verify` checks that `ExecStart` exists).
fn unit_for_this_build(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("proxdesk.service");
    std::fs::write(&path, UNIT.replace("/usr/local/bin/proxdesk", env!("CARGO_BIN_EXE_proxdesk"))).unwrap();
    path
}

#[test]
fn the_systemd_unit_verifies_and_its_sandbox_is_tight() {
    let Some(analyze) = require("systemd-analyze", &["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let out = Command::new(&analyze).arg("verify").arg(&unit).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");

    let out = Command::new(&analyze).args(["security", "--offline=true", "--no-pager"]).arg(&unit).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let line = report.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("{report}"));
    let score: f64 = line.split(':').nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    eprintln!("systemd-analyze security: {}", line.trim());
    // systemd's scale: 0 is fully confined, below 2 is "OK"; a service that talks to PVE, SSH and
    // PostgreSQL keeps a network and its own files, nothing more.
    assert!(score <= 2.0, "the unit's exposure is {score}:\n{report}");
}

#[test]
fn the_systemd_unit_runs_serve_with_known_settings_only() {
    let exec = UNIT.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart");
    assert!(exec.ends_with(" serve"), "{exec}");
    for env in UNIT.lines().filter_map(|l| l.strip_prefix("Environment=")) {
        let name = env.split('=').next().unwrap();
        let key = name.strip_prefix("PROXDESK_").expect("only proxdesk's own variables").to_lowercase();
        let known = key == "config" || proxdesk::config::KEYS.iter().any(|(k, _, _)| *k == key);
        assert!(known, "{name} is not a proxdesk setting");
    }
    for needed in ["DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n"] {
        assert!(UNIT.contains(needed), "the unit lacks {needed:?}");
    }
}
