//! proxdesk's own PVE client against the simulator's QEMU write side: the calls provisioning makes, in
//! its order, and what the guest ends up with.

use futures_util::{SinkExt, StreamExt};
use proxdesk::domain::guest::GuestType;
use proxdesk::integrations::pve::PveError;
use proxdesk::integrations::pve::wire::{
    DeleteOptions, PowerCommand, QemuCloneRequest, QemuConfigUpdate, QemuCreateRequest, ResizeRequest, decode_sshkeys,
    encode_sshkeys, first_ipv4,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::pve_client::{TOKEN_ID, TOKEN_SECRET, quick};
use crate::pve_sim_qemu::{KEY, Pve};

#[tokio::test]
async fn a_cloud_init_vm_is_cloned_configured_resized_started_reached_and_deleted() {
    let Pve { sim, client: pve } = Pve::start().await;
    let newid = pve.next_id().await.unwrap();
    let clone = QemuCloneRequest { newid, name: Some("alice-dev".into()), ..Default::default() };
    let upid = pve.qemu_clone("pve1", 9100, &clone).await.unwrap();
    assert_eq!((upid.task_type.as_str(), upid.id.as_str()), ("qmclone", "9100"));
    pve.wait_task(&upid, quick()).await.unwrap();

    let update = QemuConfigUpdate {
        cores: Some(2),
        memory: Some(2048),
        ciuser: Some("alice".into()),
        cipassword: Some("Gener4ted-pass".into()),
        sshkeys: Some(encode_sshkeys(&[KEY])),
        ipconfig0: Some("ip=192.0.2.60/24,gw=192.0.2.1".into()),
        nameserver: Some("192.0.2.53 192.0.2.54".into()),
        net0: Some("virtio,bridge=vmbr1".into()),
        tags: Some("proxdesk".into()),
        ..Default::default()
    };
    pve.qemu_update_config("pve1", newid, &update).await.unwrap();
    let config = pve.qemu_config("pve1", newid).await.unwrap();
    assert_eq!((config.cores, config.memory), (Some(2), Some(2048)));
    assert_eq!(config.other["cipassword"], "**********");
    assert_eq!(decode_sshkeys(config.other["sshkeys"].as_str().unwrap()), [KEY]);
    assert!(config.net0.as_deref().unwrap().ends_with(",bridge=vmbr1"));

    let resize = ResizeRequest { disk: "scsi0".into(), size: "10G".into() };
    let upid = pve.qemu_resize("pve1", newid, &resize).await.unwrap().expect("PVE 8+ answers with a task");
    pve.wait_task(&upid, quick()).await.unwrap();
    let shrink = ResizeRequest { disk: "scsi0".into(), size: "4G".into() };
    let upid = pve.qemu_resize("pve1", newid, &shrink).await.unwrap().unwrap();
    let e = pve.wait_task(&upid, quick()).await.unwrap_err();
    assert!(
        matches!(e, PveError::TaskFailed { ref exit_status, .. } if exit_status == "shrinking disks is not supported")
    );

    let upid = pve.guest_power("pve1", GuestType::Qemu, newid, PowerCommand::Start).await.unwrap();
    assert_eq!(upid.task_type, "qmstart");
    pve.wait_task(&upid, quick()).await.unwrap();
    let ifaces = pve.qemu_agent_interfaces("pve1", newid).await.unwrap();
    assert_eq!(first_ipv4(&ifaces), Some("192.0.2.60".parse().unwrap()));
    let image = sim.state().guests[&newid].cloudinit.clone().unwrap();
    assert!(image.password_matches("Gener4ted-pass") && image.user.as_deref() == Some("alice"));
    assert_eq!((image.ssh_keys.as_slice(), image.hostname.as_str()), ([KEY.to_owned()].as_slice(), "alice-dev"));
    assert_eq!(image.nameserver.as_deref(), Some("192.0.2.53 192.0.2.54"));

    let ticket = pve.guest_termproxy("pve1", GuestType::Qemu, newid).await.unwrap();
    let mut req = pve.vncwebsocket_url("pve1", "qemu", newid, &ticket).into_client_request().unwrap();
    let auth = format!("PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}");
    req.headers_mut().insert("Authorization", auth.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(format!("{TOKEN_ID}:{}\n", ticket.ticket))).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().as_ref(), b"OK");
    ws.send(Message::binary(b"0:3:id\n".to_vec())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().as_ref(), b"id\n");

    let e = pve.guest_delete("pve1", GuestType::Qemu, newid, DeleteOptions::default()).await.unwrap_err();
    assert!(e.to_string().ends_with(&format!("VM {newid} is running - destroy failed")), "{e}");
    let upid = pve.guest_power("pve1", GuestType::Qemu, newid, PowerCommand::Stop).await.unwrap();
    pve.wait_task(&upid, quick()).await.unwrap();
    let all = DeleteOptions { purge: true, destroy_unreferenced_disks: true };
    let upid = pve.guest_delete("pve1", GuestType::Qemu, newid, all).await.unwrap();
    assert_eq!(upid.task_type, "qmdestroy");
    pve.wait_task(&upid, quick()).await.unwrap();
    assert!(pve.qemu_list("pve1").await.unwrap().iter().all(|g| g.vmid != newid));
}

#[tokio::test]
async fn an_iso_vm_is_created_from_what_discovery_offers_and_its_iso_detached() {
    let Pve { sim, client: pve } = Pve::start().await;
    let isos = pve.storage_content("pve2", "local", "iso").await.unwrap();
    assert_eq!(isos.len(), 3);
    assert_eq!((isos[1].file_name(), isos[1].bytes()), ("debian-12.8.0-amd64-netinst.iso", Some(661_651_456)));
    let bridges = pve.network("pve2", Some("any_bridge")).await.unwrap();
    let names: Vec<(&str, bool)> = bridges.iter().map(|b| (b.iface.as_str(), b.active)).collect();
    assert_eq!(names, [("vmbr0", true), ("vmbr1", true), ("lab10", true)]);
    let disks = pve.storage("pve2", Some("images")).await.unwrap();
    assert_eq!(disks.iter().map(|s| s.storage.as_str()).collect::<Vec<_>>(), ["local-lvm"]);

    let vmid = pve.next_id().await.unwrap();
    let create = QemuCreateRequest {
        vmid,
        name: Some("bob-win".into()),
        cores: Some(2),
        memory: Some(4096),
        ostype: Some("l26".into()),
        scsihw: Some("virtio-scsi-single".into()),
        scsi0: Some("local-lvm:20,iothread=1,discard=on".into()),
        ide2: Some(format!("{},media=cdrom", isos[1].volid)),
        net0: Some("virtio,bridge=lab10".into()),
        boot: Some("order=scsi0;ide2;net0".into()),
        agent: Some("1".into()),
        start: Some(true),
        ..Default::default()
    };
    let upid = pve.qemu_create("pve2", &create).await.unwrap();
    assert_eq!(pve.wait_task(&upid, quick()).await.unwrap().warnings, 0);
    let status = pve.guest_status("pve2", GuestType::Qemu, vmid).await.unwrap();
    assert_eq!(status.status, "running");
    let config = pve.guest_config("pve2", GuestType::Qemu, vmid).await.unwrap();
    assert_eq!(config.other["scsi0"], format!("local-lvm:vm-{vmid}-disk-0,discard=on,iothread=1,size=20G"));
    let e = pve.qemu_agent_interfaces("pve2", vmid).await.unwrap_err();
    assert!(e.to_string().contains("QEMU guest agent is not running"), "{e}");

    let detach = QemuConfigUpdate { ide2: Some("none,media=cdrom".into()), ..Default::default() };
    pve.qemu_update_config("pve2", vmid, &detach).await.unwrap();
    assert_eq!(pve.qemu_config("pve2", vmid).await.unwrap().other["ide2"], "none,media=cdrom");
    assert!(sim.install_os(vmid));
    let ifaces = pve.qemu_agent_interfaces("pve2", vmid).await.unwrap();
    assert!(first_ipv4(&ifaces).is_some());
}
