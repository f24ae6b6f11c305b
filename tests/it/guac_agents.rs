//! The Guacamole sync against clusters as unkind as real ones: a generated realistic inventory (agents
//! absent, off, not running or silent with PVE's 3 s ping; static, never-leased and docker0 addresses),
//! silent agents remembered across runs, and PVE's permanent errors never repeated.

use std::collections::BTreeSet;

use proxdesk::integrations::guacamole::notes::parse;
use proxdesk::integrations::guacamole::sync::MARKER_PARAM;
use proxdesk::integrations::pve::sim::{AgentState, Endpoint, Fault, GeneratedInventory, GuestKind, SimConfig};
use proxdesk::services::guest_agents;
use serde_json::Value;

use crate::guac_e2e::{NOTED_VM, NOTES, desk, desk_on};

/// (vmid, protocol, user, hostname) of a connection.
type Made = (u32, String, String, String);

/// The notes connections Guacamole holds, read back from their markers and parameters.
fn made(desk: &crate::guac_e2e::Desk) -> BTreeSet<Made> {
    desk.guac
        .state()
        .connections
        .values()
        .filter_map(|c| {
            let marker = c.parameters.get(MARKER_PARAM)?;
            let field = |k: &str| marker.split(' ').find_map(|p| p.strip_prefix(k)).map(str::to_owned);
            let user = marker.split_once(" user=")?.1.to_owned();
            let vmid = field("vm=")?.parse().ok()?;
            Some((vmid, field("proto=")?, user, c.parameters.get("hostname")?.clone()))
        })
        .collect()
}

/// VMIDs the run reports for their guest agent.
fn reported_agents(run: &entities::guac_sync_run::Model) -> BTreeSet<u32> {
    let diagnostics: Value = serde_json::from_str(&run.diagnostics).unwrap();
    diagnostics
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["message"].as_str().unwrap().contains("guest agent"))
        .map(|d| d["vmid"].as_u64().unwrap() as u32)
        .collect()
}

#[tokio::test]
async fn a_realistic_cluster_gets_exactly_the_expected_connections_with_no_needless_agent_calls() {
    let generated = Some(GeneratedInventory { guests: 500, seed: 42 });
    let desk = desk_on(SimConfig { generated, ..SimConfig::for_tests() }, |_| {}).await;

    // The expectation, from the simulator's state and the notes parser alone: each entry's protocols,
    // at the address the guest reports (or its static one), for guests that have an address at all.
    let state = desk.pve.state();
    let noted: Vec<_> = state
        .guests
        .values()
        .filter(|g| !g.is_template())
        .filter_map(|g| Some((g, parse(&g.description_read_back()?).entries)))
        .filter(|(_, entries)| !entries.is_empty())
        .collect();
    let mut expected: BTreeSet<Made> = BTreeSet::new();
    for (g, entries) in &noted {
        let Some(ip) = g.live_ipv4().or(g.static_ipv4()) else { continue };
        for e in entries {
            for p in &e.protocols {
                expected.insert((g.vmid as u32, p.as_str().into(), e.username.clone(), ip.to_string()));
            }
        }
    }
    let asked: Vec<_> =
        noted.iter().map(|(g, _)| *g).filter(|g| g.running && g.kind == GuestKind::Qemu && g.agent_enabled()).collect();
    let down: BTreeSet<u32> = asked.iter().filter(|g| !g.agent_answers()).map(|g| g.vmid as u32).collect();
    let containers = noted.iter().filter(|(g, _)| g.running && g.kind == GuestKind::Lxc).count() as u64;
    assert!(expected.len() > 30 && !down.is_empty() && containers > 0, "a mix worth testing");

    let run = desk.sync().await;
    assert_eq!(made(&desk), expected, "{}", run.diagnostics);
    let calls = desk.pve.calls();
    assert_eq!(calls.get(Endpoint::QemuAgentInterfaces), asked.len() as u64, "agents asked: wanted, running, enabled");
    assert_eq!(calls.get(Endpoint::LxcInterfaces), containers, "containers asked: wanted and running");
    assert_eq!(reported_agents(&run), down, "every silent agent of a noted guest is reported");
    let remembered: BTreeSet<u32> =
        guest_agents::silent(&desk.app.db).await.unwrap().into_keys().map(|(vmid, _)| vmid).collect();
    assert_eq!(remembered, down);

    // A guest whose agent falls silent keeps its connections as they are, though its lease changed.
    let (vmid, ip) = asked
        .iter()
        .find(|g| g.agent_answers() && g.static_ipv4().is_none() && g.live_ipv4().is_some())
        .map(|g| (g.vmid, g.live_ipv4().unwrap()))
        .expect("a guest with a responsive agent and a lease");
    desk.pve.with_state(|s| {
        let g = s.guests.get_mut(&vmid).unwrap();
        g.agent = AgentState::Silent;
        g.ip = Some(std::net::Ipv4Addr::new(10, 250, 0, 9));
    });
    desk.pve.calls().reset();
    desk.guac.reset_calls();
    let run = desk.sync().await;
    assert_eq!(desk.guac.calls().writes, 0, "{:?}", desk.guac.calls());
    assert_eq!((run.created, run.updated, run.deleted), (0, 0, 0), "{}", run.diagnostics);
    assert!(made(&desk).iter().filter(|m| m.0 == vmid as u32).all(|m| m.3 == ip.to_string()));
    // Remembered agents are not asked again (no 3 s waits); the one newly silent is.
    assert_eq!(desk.pve.calls().get(Endpoint::QemuAgentInterfaces), (asked.len() - down.len()) as u64);
    let mut now_down = down.clone();
    now_down.insert(vmid as u32);
    assert_eq!(reported_agents(&run), now_down);
}

#[tokio::test]
async fn a_silent_agent_is_not_asked_again_until_its_recheck_and_is_forgotten_once_it_answers() {
    let desk = desk().await;
    desk.set_notes("pve1", NOTED_VM, NOTES).await;
    desk.pve.with_state(|s| s.guests.get_mut(&NOTED_VM).unwrap().agent = AgentState::Silent);
    let run = desk.sync().await;
    assert_eq!(run.created, 0, "no address, nothing to connect to");
    assert_eq!(reported_agents(&run), BTreeSet::from([NOTED_VM as u32]));
    assert_eq!(desk.pve.calls().get(Endpoint::QemuAgentInterfaces), 1);

    // The agent is back, but the re-check is not due: not asked.
    desk.pve.with_state(|s| s.guests.get_mut(&NOTED_VM).unwrap().agent = AgentState::Responsive);
    desk.pve.calls().reset();
    let run = desk.sync().await;
    assert_eq!((desk.pve.calls().get(Endpoint::QemuAgentInterfaces), run.created), (0, 0));
    assert!(run.diagnostics.contains("not asked again before"), "{}", run.diagnostics);

    // Due (as if 30 minutes had passed): asked, answers, connected, and forgotten.
    sea_orm::ConnectionTrait::execute_unprepared(
        &desk.app.db,
        "UPDATE silent_guest_agents SET checked_at = '2000-01-01T00:00:00Z'",
    )
    .await
    .unwrap();
    desk.pve.calls().reset();
    let run = desk.sync().await;
    assert_eq!((desk.pve.calls().get(Endpoint::QemuAgentInterfaces), run.created), (1, 2), "{}", run.diagnostics);
    assert!(reported_agents(&run).is_empty());
    assert!(guest_agents::silent(&desk.app.db).await.unwrap().is_empty());
}

#[tokio::test]
async fn no_pve_call_is_repeated_for_a_permanent_error_and_transient_ones_are() {
    let desk = desk().await;
    desk.set_notes("pve1", NOTED_VM, NOTES).await;
    let qemu_guests =
        desk.pve.state().guests.values().filter(|g| g.kind == GuestKind::Qemu && !g.is_template()).count() as u64;
    let status = |code: u16, message: &str| Fault::Status { code, message: message.into() };

    desk.pve.faults().inject(Endpoint::QemuAgentInterfaces, status(500, "Agent error: Guest agent command failed"));
    desk.pve.calls().reset();
    desk.sync().await;
    assert_eq!(desk.pve.calls().get(Endpoint::QemuAgentInterfaces), 1, "a guest-side agent error is PVE's answer");

    desk.pve.faults().clear();
    desk.pve.faults().inject_times(
        Endpoint::QemuConfigGet,
        status(500, "unable to parse value of 'net0' - format error"),
        1,
    );
    desk.pve.calls().reset();
    let run = desk.sync().await;
    assert_eq!(desk.pve.calls().get(Endpoint::QemuConfigGet), qemu_guests, "one config read per VM");
    assert!(run.diagnostics.contains("kept as they are"), "{}", run.diagnostics);

    // The counter does see repeats: pveproxy's 596 is worth another try.
    desk.pve.faults().inject_times(Endpoint::QemuAgentInterfaces, status(596, "Broken pipe"), 1);
    desk.pve.calls().reset();
    desk.sync().await;
    assert_eq!(desk.pve.calls().get(Endpoint::QemuAgentInterfaces), 2);
}
