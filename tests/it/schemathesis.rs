//! The API's contract, checked from the outside: schemathesis (PyPI, `st`) reads the served
//! `/api/v1/openapi.json`, generates valid and invalid requests for every operation and checks every
//! answer against the spec (`--checks all`): no server error, every status, header, content type and body
//! as declared, invalid input refused, valid input accepted. Once as a user, once as an admin, once for
//! revoking tokens, against the real server on the PVE simulator with a ready machine, a pending request
//! and catalog entries.

use std::process::Command;

use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::SimConfig;

use crate::console_fixtures::{app_on, ready_machine};
use crate::external::require;
use crate::helpers::TestApp;

/// `st` from the PATH (pip installs it beside python).
fn st() -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let candidates: Vec<String> = path.split(':').map(|d| format!("{d}/st")).collect();
    let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
    require("schemathesis (st)", &candidates)
}

/// Runs schemathesis against `app` with `token` on the operations `filter` selects; returns (success,
/// its output).
async fn run(st: std::path::PathBuf, app: &TestApp, token: &str, filter: [&str; 2], report: &str) -> (bool, String) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/schemathesis.toml");
    let spec = app.url("/api/v1/openapi.json");
    let header = format!("Authorization: Bearer {token}");
    let report = app.data_dir.join(report);
    let filter = filter.map(str::to_owned);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .arg("--config-file")
            .arg(config)
            .args(["--no-color", "run", &spec, "--checks", "all", "-H", &header])
            .args(filter)
            .args(["--report", "junit", "--report-dir"])
            .arg(report)
            .output()
            .expect("st runs")
    })
    .await
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The run's closing summary (from its `SUMMARY` banner on).
fn summary(output: &str) -> &str {
    output.rfind("SUMMARY").map_or(output, |at| &output[output[..at].rfind('\n').unwrap_or(0)..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_no_server_error_and_no_contract_violation_as_user_or_admin() {
    let Some(st) = st() else { return };
    // The webhooks it creates deliver the events it causes: only ever to this machine.
    let (app, _sim) = app_on(SimConfig::default(), |raw, _| raw.set("webhook_hosts", "127.0.0.1")).await;
    let (_machine, alice_t, _) = ready_machine(&app).await;
    // A pending request besides the ready machine, so approvals and cancellations have something to act on.
    let tpl = app.template("Ubuntu").await;
    app.submit_ok(&alice_t, tpl, "lab-2").await;
    let (admin, _) = app.user("ops", Role::Admin).await;
    let admin_t = app.token(&admin).await;
    let tokens_t = app.token(&admin).await;

    // `DELETE /tokens/{id}` gets a run of its own: fuzzing reuses the ids `GET /tokens` answers, so it
    // revokes the token it runs with, and a run signed out halfway tests nothing after that.
    let all_but_revoking = ["--exclude-name", "DELETE /tokens/{id}"];
    let mut failed = vec![];
    for (who, token, filter) in [
        ("user", &alice_t, all_but_revoking),
        ("admin", &admin_t, all_but_revoking),
        ("tokens", &tokens_t, ["--include-path-regex", "^/tokens"]),
    ] {
        let (ok, output) = run(st.clone(), &app, token, filter, who).await;
        println!("schemathesis as {who}:\n{}", summary(&output));
        if !ok {
            eprintln!("schemathesis as {who}, full output:\n{output}");
            failed.push(who);
        }
    }
    assert!(failed.is_empty(), "schemathesis found failures as {failed:?} (output above)");
}
