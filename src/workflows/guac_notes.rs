//! The notes-password migration through Proxmox VE: plain passwords in VM notes become encrypted ones,
//! written back with the config `digest`, so a concurrent edit in PVE is refused rather than overwritten.

use crate::integrations::guacamole::notes::FernetKey;
use crate::integrations::guacamole::sync::migrate::{NotesMigration, NotesWriter, encrypt_notes_passwords};
use crate::integrations::guacamole::sync::{VmInfo, VmKind};
use crate::integrations::pve::wire::{LxcConfigUpdate, QemuConfigUpdate};
use crate::integrations::pve::{self, PveError};

/// Why a VM's notes were not written.
#[derive(Debug, thiserror::Error)]
pub enum NotesWriteError {
    /// The notes differ from those the rewrite was computed from.
    #[error("the notes were edited since they were read; run again")]
    Edited,
    /// PVE refused or could not be reached (a stale digest is [`PveError::ConfigChanged`]).
    #[error("Proxmox VE: {0}")]
    Pve(#[from] PveError),
}

/// Writes notes with `PUT /nodes/{node}/{qemu|lxc}/{vmid}/config` (`description` + `digest`).
pub struct PveNotesWriter {
    /// The cluster.
    pub pve: pve::Client,
}

impl PveNotesWriter {
    async fn write(&self, vm: &VmInfo, notes: &str) -> Result<(), NotesWriteError> {
        let node = vm.node.as_str();
        let vmid = u64::from(vm.vmid);
        // The digest covers the whole config as it is now; comparing the notes too makes sure the rewrite
        // was computed from exactly these, whatever happened between the sync's read and this one.
        let config = match vm.kind {
            VmKind::Qemu => self.pve.qemu_config(node, vmid).await?,
            VmKind::Lxc => self.pve.lxc_config(node, vmid).await?,
        };
        if config.description != vm.notes {
            return Err(NotesWriteError::Edited);
        }
        let (description, digest) = (Some(notes.to_owned()), Some(config.digest));
        match vm.kind {
            VmKind::Qemu => {
                let update = QemuConfigUpdate { description, digest, ..Default::default() };
                self.pve.qemu_update_config(node, vmid, &update).await?
            }
            VmKind::Lxc => {
                let update = LxcConfigUpdate { description, digest, ..Default::default() };
                self.pve.lxc_update_config(node, vmid, &update).await?
            }
        }
        Ok(())
    }
}

#[jobs::async_trait]
impl NotesWriter for PveNotesWriter {
    async fn write_notes(&self, vm: &VmInfo, notes: &str) -> Result<(), String> {
        self.write(vm, notes).await.map_err(|e| e.to_string())
    }
}

/// Reads every VM's notes from PVE and encrypts their plain passwords with `key` (nothing is written with
/// `dry_run`). Fails only when the VM list cannot be read; per-VM failures are in the result.
#[tracing::instrument(skip_all, fields(dry_run))]
pub async fn encrypt_notes(pve: &pve::Client, key: &FernetKey, dry_run: bool) -> Result<NotesMigration, String> {
    let vms = super::guac_source::read_vms(pve, super::guac_source::DEFAULT_PVE_CONCURRENCY).await?;
    let writer = PveNotesWriter { pve: pve.clone() };
    let done = encrypt_notes_passwords(&vms, key, &writer, dry_run).await;
    tracing::info!(vms = done.vms.len(), entries = done.entries, errors = done.errors.len(), "notes migration");
    Ok(done)
}
