//! Encrypting plain passwords in VM notes through Proxmox VE (simulated), and the sync afterwards.

use std::time::Duration;

use proxdesk::integrations::guacamole::notes::FernetKey;
use proxdesk::integrations::guacamole::sync::migrate::encrypt_notes_passwords;
use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimHandle};
use proxdesk::integrations::pve::wire::{CloneRequest, LxcConfigUpdate};
use proxdesk::integrations::pve::{Client, WaitOptions};
use proxdesk::secrets::Secret;
use proxdesk::workflows::guac_notes::{PveNotesWriter, encrypt_notes};
use proxdesk::workflows::guac_source::read_vms;

use crate::guac_e2e::{Desk, NOTED_VM, desk_with};

const PASSPHRASE: &str = "correct horse battery staple";
const CT: u64 = 120;
const QEMU_NOTES: &str =
    "Web server, ask Carol.\nuser:\"admin\" pass:\"Tr0ub4dor&3\" protos:\"rdp,ssh\";\nBackups nightly.";
// Two entries on one line, a `;` inside quotes, and both spellings of the password key.
const LXC_NOTES: &str =
    "Build box  \n\nuser:ci pass:'s3;cret' protos:ssh; user:ro password:\"r0-pw\" protos:vnc vnc_port:5901;\n# end\n";

fn key() -> FernetKey {
    FernetKey::from_passphrase(&Secret::new(PASSPHRASE.into()))
}

fn pve(desk: &Desk) -> Client {
    desk.app.state.pve.clone().expect("a cluster is configured")
}

/// VM 100 (QEMU) and a fresh running container 120 (LXC), both with plain passwords in their notes.
async fn noted_desk() -> Desk {
    let desk = desk_with(|raw| raw.set("notes_key", PASSPHRASE)).await;
    desk.set_notes("pve1", NOTED_VM, QEMU_NOTES).await;
    let pve = pve(&desk);
    let wait = WaitOptions {
        deadline: Duration::from_secs(5),
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(50),
    };
    let clone = CloneRequest { newid: CT, hostname: Some("build".into()), ..CloneRequest::default() };
    pve.wait_task(&pve.lxc_clone("pve1", 9000, &clone).await.unwrap(), wait).await.unwrap();
    let notes = LxcConfigUpdate { description: Some(LXC_NOTES.into()), ..Default::default() };
    pve.lxc_update_config("pve1", CT, &notes).await.unwrap();
    pve.wait_task(&pve.lxc_start("pve1", CT).await.unwrap(), wait).await.unwrap();
    // The address shows a moment after the start.
    tokio::time::sleep(Duration::from_millis(100)).await;
    desk
}

/// The notes as PVE's API returns them.
fn notes(sim: &SimHandle, vmid: u64) -> String {
    sim.state().guests[&vmid].description_read_back().unwrap_or_default()
}

/// The `encrypted_password:"…"` values of `notes`, in order.
fn tokens(notes: &str) -> Vec<String> {
    notes.split("encrypted_password:\"").skip(1).map(|rest| rest.split('"').next().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn plain_passwords_become_encrypted_and_the_rest_of_the_notes_stays_byte_for_byte() {
    let desk = noted_desk().await;
    let run = desk.sync().await;
    assert_eq!((run.created, run.error_count), (4, 0), "{}", run.diagnostics);
    let before = desk.connections();
    assert_eq!(before["ci@build-ssh"].1["password"], "s3;cret");
    let (qemu_before, lxc_before) = (notes(&desk.pve, NOTED_VM), notes(&desk.pve, CT));
    assert_eq!(lxc_before, LXC_NOTES, "LXC reads back a newline per line");
    let puts = || desk.pve.calls().get(Endpoint::QemuConfigPut) + desk.pve.calls().get(Endpoint::LxcConfigPut);
    let puts_before = puts();

    // A dry run says what would change and writes nothing.
    let dry = encrypt_notes(&pve(&desk), &key(), true).await.unwrap();
    let changes: Vec<(u32, usize, Vec<usize>)> = dry.vms.iter().map(|c| (c.vmid, c.entries, c.lines.clone())).collect();
    assert_eq!(changes, [(100, 1, vec![2]), (120, 2, vec![3])]);
    assert_eq!((notes(&desk.pve, NOTED_VM), notes(&desk.pve, CT)), (qemu_before.clone(), lxc_before.clone()));
    assert_eq!(puts(), puts_before);

    let done = encrypt_notes(&pve(&desk), &key(), false).await.unwrap();
    assert!(done.errors.is_empty(), "{:?}", done.errors);
    assert_eq!((done.vms.len(), done.entries), (2, 3));
    assert_eq!(puts(), puts_before + 2, "one write per VM");

    // Exactly the password pairs changed, into tokens that open to the same passwords.
    let qemu_after = notes(&desk.pve, NOTED_VM);
    let t = tokens(&qemu_after);
    assert_eq!(t.len(), 1);
    assert_eq!(qemu_after, QEMU_NOTES.replace("pass:\"Tr0ub4dor&3\"", &format!("encrypted_password:\"{}\"", t[0])));
    let lxc_after = notes(&desk.pve, CT);
    let l = tokens(&lxc_after);
    assert_eq!(l.len(), 2);
    let expected = LXC_NOTES
        .replace("pass:'s3;cret'", &format!("encrypted_password:\"{}\"", l[0]))
        .replace("password:\"r0-pw\"", &format!("encrypted_password:\"{}\"", l[1]));
    assert_eq!(lxc_after, expected);
    let opened: Vec<String> =
        t.iter().chain(&l).map(|t| key().decrypt_note_password(t).unwrap().expose().clone()).collect();
    assert_eq!(opened, ["Tr0ub4dor&3", "s3;cret", "r0-pw"]);
    assert!(t.iter().chain(&l).all(|t| t.starts_with("Z0FBQUFB")));

    // A second run has nothing left to do.
    let again = encrypt_notes(&pve(&desk), &key(), false).await.unwrap();
    assert!(again.vms.is_empty() && again.errors.is_empty(), "{again:?}");
    assert_eq!((notes(&desk.pve, NOTED_VM), notes(&desk.pve, CT)), (qemu_after, lxc_after));

    // The sync reads the encrypted passwords with the notes key: same connections, nothing written.
    desk.guac.reset_calls();
    let run = desk.sync().await;
    assert_eq!(run.error_count, 0, "{}", run.diagnostics);
    assert_eq!(desk.guac.calls().writes, 0, "{:?}", desk.guac.calls());
    assert_eq!(desk.connections(), before);
}

#[tokio::test]
async fn notes_edited_in_pve_meanwhile_are_not_overwritten() {
    let desk = noted_desk().await;
    let pve = pve(&desk);
    let writer = PveNotesWriter { pve: pve.clone() };

    // Edited after the VMs were read: the writer sees the notes differ and leaves them.
    let vms = read_vms(&pve, 8).await.unwrap();
    desk.set_notes("pve1", NOTED_VM, "edited by Carol").await;
    let done = encrypt_notes_passwords(&vms, &key(), &writer, false).await;
    let refused: Vec<(Option<u32>, &str)> = done.errors.iter().map(|e| (e.vmid, e.message.as_str())).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, Some(100));
    assert!(refused[0].1.contains("edited since they were read"), "{}", refused[0].1);
    assert_eq!(notes(&desk.pve, NOTED_VM), "edited by Carol");
    assert_eq!(done.vms.iter().map(|c| c.vmid).collect::<Vec<_>>(), [120], "the other VM is done");

    // Edited between the writer's read and its write: PVE refuses the stale digest.
    desk.set_notes("pve1", NOTED_VM, QEMU_NOTES).await;
    let vms = read_vms(&pve, 8).await.unwrap();
    desk.pve.faults().inject_times(Endpoint::QemuConfigPut, Fault::Latency(Duration::from_millis(300)), 1);
    let migration = tokio::spawn(async move { encrypt_notes_passwords(&vms, &key(), &writer, false).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    desk.pve.with_state(|s| {
        s.guests.get_mut(&NOTED_VM).unwrap().config.insert("description".into(), "edited again".into());
    });
    let done = migration.await.unwrap();
    assert_eq!(done.errors.len(), 1, "{:?}", done.errors);
    assert!(
        done.errors[0].message.contains("checksum mismatch (file change by other user?)"),
        "{}",
        done.errors[0].message
    );
    assert_eq!(notes(&desk.pve, NOTED_VM), "edited again");
}

/// `proxdesk guac encrypt-notes` as the real binary, against the simulator served by this process.
async fn encrypt_notes_cli(sim: &SimHandle, notes_key: Option<&str>, args: &[&str]) -> (bool, String, String) {
    use crate::pve_client::{TOKEN_ID, TOKEN_SECRET};
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_proxdesk"));
    cmd.args(["guac", "encrypt-notes"])
        .args(args)
        .env("PROXDESK_DATA_DIR", dir.path())
        .env("PROXDESK_LOG", "warn")
        .env("PROXDESK_PVE_URL", sim.url())
        .env("PROXDESK_PVE_TOKEN", format!("{TOKEN_ID}={TOKEN_SECRET}"))
        .env_remove("PROXDESK_NOTES_KEY")
        .env_remove("PROXDESK_DATABASE_URL")
        .current_dir(dir.path());
    if let Some(k) = notes_key {
        cmd.env("PROXDESK_NOTES_KEY", k);
    }
    let out = cmd.output().await.unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn the_cli_prints_what_changes_per_vm_and_never_a_password() {
    let sim = crate::pve_client::sim().await;
    let pve = crate::pve_client::token_client(&sim);
    let update = proxdesk::integrations::pve::wire::QemuConfigUpdate {
        description: Some(QEMU_NOTES.into()),
        ..Default::default()
    };
    pve.qemu_update_config("pve1", NOTED_VM, &update).await.unwrap();

    let (ok, _, err) = encrypt_notes_cli(&sim, None, &["--dry-run"]).await;
    assert!(!ok && err.contains("PROXDESK_NOTES_KEY is not set"), "{err}");

    let (ok, out, err) = encrypt_notes_cli(&sim, Some(PASSPHRASE), &["--dry-run"]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "vm 100 (web-legacy): would encrypt 1 password(s), notes line(s) 2");
    assert_eq!(notes(&sim, NOTED_VM), QEMU_NOTES);

    let (ok, out, err) = encrypt_notes_cli(&sim, Some(PASSPHRASE), &[]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "vm 100 (web-legacy): encrypted 1 password(s), notes line(s) 2");
    assert!(!format!("{out}{err}").contains("Tr0ub4dor"));
    let t = tokens(&notes(&sim, NOTED_VM));
    assert_eq!(key().decrypt_note_password(&t[0]).unwrap().expose(), "Tr0ub4dor&3");

    let (ok, out, _) = encrypt_notes_cli(&sim, Some(PASSPHRASE), &[]).await;
    assert!(ok && out.trim() == "no plain passwords in any notes", "{out}");
}
