//! The optional migration of plain notes passwords to encrypted ones, VM by VM, through whatever writes
//! PVE notes (the PVE config API: `PUT /nodes/{node}/{qemu|lxc}/{vmid}/config` with `description`).

use super::{Diagnostic, VmInfo};
use crate::integrations::guacamole::notes::{FernetKey, Severity, encrypt_plain_passwords};

/// Writes a VM's notes back to PVE.
#[jobs::async_trait]
pub trait NotesWriter: Send + Sync {
    /// Replaces the `description` of `vm` with `notes`.
    async fn write_notes(&self, vm: &VmInfo, notes: &str) -> Result<(), String>;
}

/// One VM whose notes were (or would be) rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotesChange {
    /// The VM.
    pub vmid: u32,
    /// Its name.
    pub name: String,
    /// Entries whose password was encrypted.
    pub entries: usize,
    /// Lines of the original notes that changed (1-based), to point at them without showing them.
    pub lines: Vec<usize>,
}

/// What the migration did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotesMigration {
    /// VMs whose notes were rewritten.
    pub vms: Vec<NotesChange>,
    /// Entries whose password was encrypted.
    pub entries: usize,
    /// VMs whose notes could not be written.
    pub errors: Vec<Diagnostic>,
}

/// Encrypts every plain password in the notes of `vms`, one write per VM that has any; the rest of each
/// note stays byte for byte. With `dry_run`, nothing is written.
pub async fn encrypt_notes_passwords(
    vms: &[VmInfo],
    key: &FernetKey,
    writer: &dyn NotesWriter,
    dry_run: bool,
) -> NotesMigration {
    let mut out = NotesMigration::default();
    for vm in vms {
        let Some(rewrite) = vm.notes.as_deref().and_then(|n| encrypt_plain_passwords(n, key)) else {
            continue;
        };
        if !dry_run && let Err(e) = writer.write_notes(vm, &rewrite.notes).await {
            out.errors.push(Diagnostic::about(Some(vm.vmid), Severity::Error, format!("notes not rewritten: {e}")));
            continue;
        }
        let notes = vm.notes.as_deref().unwrap_or_default();
        let mut lines: Vec<usize> = rewrite.edits.iter().map(|e| notes[..e.start].matches('\n').count() + 1).collect();
        lines.dedup();
        out.vms.push(NotesChange { vmid: vm.vmid, name: vm.name.clone(), entries: rewrite.entries, lines });
        out.entries += rewrite.entries;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::integrations::guacamole::sync::VmKind;
    use crate::secrets::Secret;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u32, String)>>);

    #[jobs::async_trait]
    impl NotesWriter for Recorder {
        async fn write_notes(&self, vm: &VmInfo, notes: &str) -> Result<(), String> {
            if vm.vmid == 666 {
                return Err("config locked".into());
            }
            self.0.lock().unwrap().push((vm.vmid, notes.to_owned()));
            Ok(())
        }
    }

    fn vm(vmid: u32, notes: &str) -> VmInfo {
        VmInfo {
            vmid,
            node: "pve1".into(),
            name: format!("vm{vmid}"),
            kind: VmKind::Qemu,
            notes: Some(notes.into()),
            tags: None,
            ipv4: None,
            silent_agent: None,
            mac: None,
            unreadable: None,
        }
    }

    #[tokio::test]
    async fn only_vms_with_plain_passwords_are_written_and_failures_are_per_vm() {
        let key = FernetKey::from_passphrase(&Secret::new("k".into()));
        let vms =
            [vm(1, "keep me\nuser:a pass:p protos:ssh;"), vm(2, "nothing here"), vm(666, "user:b pass:q protos:rdp;")];
        let writer = Recorder::default();
        let dry = encrypt_notes_passwords(&vms, &key, &writer, true).await;
        let vmids = |m: &NotesMigration| m.vms.iter().map(|c| c.vmid).collect::<Vec<_>>();
        assert_eq!((vmids(&dry), dry.entries), (vec![1, 666], 2));
        assert_eq!((dry.vms[0].name.as_str(), dry.vms[0].lines.as_slice()), ("vm1", &[2][..]));
        assert!(writer.0.lock().unwrap().is_empty());
        let done = encrypt_notes_passwords(&vms, &key, &writer, false).await;
        assert_eq!(vmids(&done), [1]);
        assert_eq!(done.errors.len(), 1);
        let written = writer.0.lock().unwrap();
        assert!(written[0].1.starts_with("keep me\nuser:a encrypted_password:\"Z0FBQUFB"));
        assert!(written[0].1.ends_with("\" protos:ssh;"));
    }
}
