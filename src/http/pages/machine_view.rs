//! The machine card of a request page: what PVE says of the guest now, its kind (container or VM),
//! what its owner may do with it, and for a VM being installed from an ISO, how to go on.

use minijinja::{Value, context};

use super::ctx::Ctx;
use crate::domain::guest::GuestType;
use crate::services::{self, Actor};

/// The card of `m` (neither deleted nor lost), as the template sees it.
pub async fn view(ctx: &Ctx, user: &Actor, m: &entities::machine::Model) -> Result<Value, poem::Response> {
    let pve = ctx.state.pve.as_ref();
    let live = services::machines::live_status(pve, m).await;
    let password = services::machines::password_for(user, m, &ctx.state.settings.secret_key)
        .map_err(|e| ctx.service_error(&e))?
        .map(|p| p.expose().clone());
    let ty = services::machines::guest_type(m).map_err(|e| ctx.service_error(&e))?;
    let running = live.state == "running";
    // A VM offers a terminal only with a serial port; its config is read now (only while it runs, when
    // the button would show), so a port an admin adds shows without proxdesk keeping a copy.
    let terminal = match (ty, running, pve) {
        (GuestType::Lxc, ..) => true,
        (GuestType::Qemu, true, Some(pve)) => services::consoles::has_terminal(pve, m).await.unwrap_or(false),
        (GuestType::Qemu, ..) => false,
    };
    let iso = m.install_media.as_deref().map(iso_name);
    Ok(context! {
        id => m.id, hostname => m.hostname.clone(), node => m.node.clone(), vmid => m.vmid, ipv4 => m.ipv4.clone(), login_user => m.login_user.clone(),
        password => password, state => live.state, uptime => live.uptime_secs,
        kind => ty.as_str(),
        // Installed by its owner: proxdesk made no login, so there is nothing to show before an address.
        owner_installed => ty == GuestType::Qemu && m.login_user.is_none(),
        installing => iso.is_some(),
        iso => iso,
        can_detach => services::machines::can_detach(m),
        terminal => terminal,
    })
}

/// `debian-12.iso` of `local:iso/debian-12.iso`.
fn iso_name(volid: &str) -> String {
    volid.rsplit(['/', ':']).next().unwrap_or(volid).to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_iso_is_named_by_its_file() {
        assert_eq!(super::iso_name("local:iso/debian-12.8.0-amd64-netinst.iso"), "debian-12.8.0-amd64-netinst.iso");
        assert_eq!(super::iso_name("nfs:custom.iso"), "custom.iso");
    }
}
