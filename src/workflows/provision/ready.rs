//! The last step: the machine is recorded with what its owner needs, and the request becomes `ready`.

use sea_orm::{ActiveValue::Set, EntityTrait, sea_query::OnConflict};
use serde_json::json;

use entities::machine;

use super::{Progress, Subject};
use crate::domain::guest::MachineKind;
use crate::domain::request_status::RequestEvent;
use crate::services::requests;
use crate::workflows::{Deps, StepError};

/// The login and sealed password the owner is shown: a container's only when it was finished over
/// SSH; a cloud-init VM's always (cloud-init set them); an ISO VM has none until its owner installs.
fn credentials(s: &Subject, p: &Progress) -> (Option<String>, Option<String>) {
    let given = match s.kind {
        MachineKind::Lxc => s.template.finish_mode != "none",
        MachineKind::QemuCloudInit => true,
        MachineKind::QemuIso => false,
    };
    if given { (Some(s.owner.username.clone()), p.password_sealed.clone()) } else { (None, None) }
}

/// Records the machine with its credentials and marks the request ready, in one transaction.
pub async fn mark_ready(deps: &Deps, s: &Subject, p: &Progress) -> Result<(), StepError> {
    let (login_user, password_sealed) = credentials(s, p);
    let install_media = (s.kind == MachineKind::QemuIso).then(|| s.request.iso.clone()).flatten();
    let node = p.node_or(&s.template.node).to_owned();
    let txn = crate::db::begin_write(&deps.db).await?;
    let row = machine::ActiveModel {
        request_id: Set(s.request.id),
        user_id: Set(s.request.user_id),
        kind: Set(s.kind.guest_type().as_str().to_owned()),
        node: Set(node.clone()),
        vmid: Set(p.vmid.map(|v| v as i64)),
        hostname: Set(s.request.hostname.clone()),
        ipv4: Set(p.ipv4.clone()),
        login_user: Set(login_user),
        password_sealed: Set(password_sealed),
        install_media: Set(install_media),
        created_at: Set(chrono::Utc::now()),
        deleted_at: Set(None),
        // Set once: a provision resumed after a crash keeps the lease it was given.
        expires_at: Set(Some(deps.leases.initial_expiry(&s.template, chrono::Utc::now()))),
        lease_stage: Set(crate::domain::lease::LeaseStage::Active.as_str().to_owned()),
        ..Default::default()
    };
    let update = [
        machine::Column::Kind,
        machine::Column::Node,
        machine::Column::Vmid,
        machine::Column::Ipv4,
        machine::Column::LoginUser,
        machine::Column::PasswordSealed,
        machine::Column::InstallMedia,
    ];
    machine::Entity::insert(row)
        .on_conflict(OnConflict::column(machine::Column::RequestId).update_columns(update).to_owned())
        .exec(&txn)
        .await?;
    let details = json!({"vmid": p.vmid, "node": node, "ipv4": p.ipv4});
    requests::transition_in(&txn, None, s.request.id, RequestEvent::ProvisioningSucceeded, vec![], details).await?;
    txn.commit().await?;
    Ok(())
}
