//! The machine details page `/machines/:id`, its fragment `/machines/:id/live` and the API's details and
//! metrics, end to end against the PVE simulator: live status and charts drawn from simulated RRD data,
//! owner-or-admin (anyone else 404), PVE down or slow (the page still renders, saying so), a stopped VM
//! and the gap in its chart.

use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use proxdesk::http::i18n::t;
use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig, SimHandle};
use reqwest::StatusCode;
use serde_json::Value;

use crate::console_fixtures::{app_on, ready_machine};
use crate::helpers::Browser;
use crate::qemu_lifecycle::{People, VmOf, wait_power};

/// Gives guest `vmid` a history: created two hours ago and running for the last `running_mins` minutes.
fn history(sim: &SimHandle, vmid: u64, running_mins: u64) {
    let now = Instant::now();
    sim.with_state(|st| {
        let g = st.guests.get_mut(&vmid).unwrap();
        g.created_at = now.checked_sub(Duration::from_secs(2 * 3600));
        if g.running {
            g.started_at = now.checked_sub(Duration::from_secs(running_mins * 60));
        }
    });
}

fn vmid_of(sim: &SimHandle, machine_hostname: &str) -> u64 {
    let st = sim.state();
    st.guests
        .values()
        .find(|g| g.config.get("hostname").or(g.config.get("name")).map(String::as_str) == Some(machine_hostname))
        .unwrap()
        .vmid
}

/// The `data-points` of `series` in chart `chart` of a page.
fn points(html: &str, chart: &str, series: &str) -> usize {
    let fig = &html[html.find(&format!("id=\"chart-{chart}\"")).unwrap_or_else(|| panic!("chart {chart}: {html}"))..];
    let fig = &fig[..fig.find("</figure>").unwrap()];
    let at = fig.find(&format!("data-series=\"{series}\" data-points=\"")).unwrap_or_else(|| panic!("{fig}"));
    let rest = &fig[at..];
    let n = rest.split("data-points=\"").nth(1).unwrap();
    n[..n.find('"').unwrap()].parse().unwrap()
}

fn paths(html: &str, chart: &str) -> usize {
    let fig = &html[html.find(&format!("id=\"chart-{chart}\"")).unwrap()..];
    fig[..fig.find("</figure>").unwrap()].matches("<path ").count()
}

async fn page(b: &Browser, path: &str) -> (StatusCode, String) {
    let r = b.get(path).await;
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_owner_sees_status_and_charts_an_admin_too_and_anyone_else_gets_404() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (machine, alice_t, _) = ready_machine(&app).await;
    let vmid = vmid_of(&sim, "lab-1");
    history(&sim, vmid, 30);
    sim.with_state(|st| st.guests.get_mut(&vmid).unwrap().config.insert("tags".into(), "course;lab".into()));
    let alice = app.logged_in("alice", "alice-password-123").await;

    let (s, html) = page(&alice, &format!("/machines/{machine}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&t("en", "machine.state.running")) && html.contains(&t("en", "mdetails.status")));
    assert!(html.contains(&format!("<dd>{vmid}</dd>")) && html.contains(">course<") && html.contains(">lab<"));
    assert!(!html.contains(&t("en", "mdetails.live_unavailable")));
    // Charts from the simulated hour: the CPU ran the last 30 minutes, so about 30 points in one line.
    let cpu = points(&html, "cpu", &t("en", "mdetails.cpu"));
    assert!((28..=32).contains(&cpu), "{cpu} CPU points");
    assert_eq!(paths(&html, "cpu"), 1);
    assert!(points(&html, "network", &t("en", "mdetails.net_in")) == cpu);
    assert!(html.contains("role=\"img\"") && html.contains("<title id=\"cpu-title\">"), "labelled charts");
    assert!(html.contains(">100\u{a0}%<") && html.contains(">0\u{a0}%<"), "axis labels");
    assert!(html.contains("minimum") && html.contains("class=\"sr\""), "a summary for screen readers");
    // The rest of the page: actions, snapshots, timeline, the no-script refresh link.
    assert!(html.contains(&format!("action=\"/machines/{machine}/action\"")));
    assert!(html.contains(&t("en", "snapshot.title")));
    assert!(html.contains(&t("en", "audit.request.created")) && html.contains(&t("en", "audit.request.approved")));
    assert!(html.contains("id=\"refresh\"") && html.contains("/static/machine-live.js"));

    // The day: a chart of 5-minute means, the day tab current.
    let (_, day) = page(&alice, &format!("/machines/{machine}?range=day")).await;
    let n = points(&day, "cpu", &t("en", "mdetails.cpu"));
    assert!((5..=8).contains(&n), "{n} points of 4 minutes over 30 running minutes");
    assert!(
        day.contains(
            "href=\"/machines/1?range=day\" aria-current=\"page\"".replace('1', &machine.to_string()).as_str()
        )
    );

    // The fragment: the status block and charts, no layout.
    let (s, frag) = page(&alice, &format!("/machines/{machine}/live?range=day")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(frag.contains("data-live-poll") && frag.contains("id=\"chart-memory\"") && !frag.contains("<html"));

    // The API.
    let d: Value = app.get(&alice_t, &format!("/api/v1/machines/{machine}/details")).await.json().await.unwrap();
    assert_eq!(d["live"]["state"], "running", "{d}");
    assert_eq!(d["machine"]["vmid"], vmid);
    assert_eq!(d["live"]["tags"], serde_json::json!(["course", "lab"]));
    assert!(d["live"]["cpu_percent"].as_f64().is_some() && d["live"]["net_in_bytes"].as_u64().is_some());
    let r = app.get(&alice_t, &format!("/api/v1/machines/{machine}/metrics?range=hour")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    let pts = m["points"].as_array().unwrap();
    assert_eq!((m["range"].as_str(), pts.len()), (Some("hour"), 60));
    assert!(pts[0]["cpu_percent"].is_null() && pts[59]["cpu_percent"].as_f64().is_some(), "off, then running");
    let r = app.get(&alice_t, &format!("/api/v1/machines/{machine}/metrics?range=week")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Bob: 404 everywhere.
    let (bob, bob_pw) = app.user("bob", Role::User).await;
    let bob_t = app.token(&bob).await;
    let bob_b = app.logged_in("bob", &bob_pw).await;
    for path in [format!("/machines/{machine}"), format!("/machines/{machine}/live")] {
        assert_eq!(bob_b.get(&path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for path in [format!("/api/v1/machines/{machine}/details"), format!("/api/v1/machines/{machine}/metrics")] {
        assert_eq!(app.get(&bob_t, &path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // An admin sees it.
    let (ada, ada_pw) = app.user("ada", Role::Admin).await;
    let ada_b = app.logged_in("ada", &ada_pw).await;
    let (s, html) = page(&ada_b, &format!("/machines/{machine}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("id=\"chart-cpu\""));
    assert_eq!(app.get(&app.token(&ada).await, &format!("/api/v1/machines/{machine}/details")).await.status(), 200);

    // The request page links here; the machines list too.
    let request = d["machine"]["request_id"].as_i64().unwrap();
    let (_, html) = page(&alice, &format!("/requests/{request}")).await;
    assert!(html.contains(&format!("href=\"/machines/{machine}\"")) && html.contains(&t("en", "mdetails.link")));
    let (_, html) = page(&alice, "/machines").await;
    assert!(html.contains(&format!("href=\"/machines/{machine}\">lab-1<")), "{html}");
}

#[tokio::test]
async fn with_pve_down_or_slow_the_page_still_renders_and_says_so() {
    let (app, sim) = app_on(SimConfig::for_tests(), |raw, _| raw.set("machine_live_timeout_ms", "300")).await;
    let (machine, alice_t, _) = ready_machine(&app).await;
    let alice = app.logged_in("alice", "alice-password-123").await;

    // Down: pveproxy's 596 for the live reads.
    let down = || Fault::Status { code: 596, message: "Connection refused".into() };
    sim.faults().inject(Endpoint::LxcStatusCurrent, down());
    sim.faults().inject(Endpoint::LxcRrdData, down());
    let (s, html) = page(&alice, &format!("/machines/{machine}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains(&t("en", "mdetails.live_unavailable")) && html.contains(&t("en", "mdetails.charts_unavailable"))
    );
    assert!(html.contains(">lab-1<") && html.contains(&t("en", "machine.state.unknown")), "stored facts stay");
    let (s, frag) = page(&alice, &format!("/machines/{machine}/live")).await;
    assert_eq!((s, frag.contains(&t("en", "mdetails.live_unavailable"))), (StatusCode::OK, true));
    let r = app.get(&alice_t, &format!("/api/v1/machines/{machine}/metrics")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let d: Value = app.get(&alice_t, &format!("/api/v1/machines/{machine}/details")).await.json().await.unwrap();
    assert!(d["live"].is_null() && d["machine"]["hostname"] == "lab-1", "{d}");

    // Slow: answers past `machine_live_timeout_ms` are not waited for.
    sim.faults().clear();
    sim.faults().inject(Endpoint::LxcStatusCurrent, Fault::Latency(Duration::from_secs(5)));
    sim.faults().inject(Endpoint::LxcRrdData, Fault::Latency(Duration::from_secs(5)));
    let (s, html) = page(&alice, &format!("/machines/{machine}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&t("en", "mdetails.live_unavailable")));
}

#[tokio::test]
async fn a_stopped_vm_shows_stopped_and_the_gap_in_its_charts() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "chart-vm").await;
    history(&sim, vm.vmid, 50);
    let alice = app.logged_in("alice", "alice-password-123").await;
    let (s, html) = page(&alice, &format!("/machines/{}", vm.machine)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&t("en", "kind.qemu.short")) && html.contains(&t("en", "machine.state.running")));
    let running = points(&html, "cpu", &t("en", "mdetails.cpu"));
    assert!((48..=52).contains(&running), "{running}");

    let r = app.post(&people.alice, &format!("/api/v1/machines/{}/stop", vm.machine), serde_json::json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_power(&sim, vm.vmid, false).await;
    // It stopped 20 minutes ago (in the simulator's books), after running since two hours ago.
    sim.with_state(|st| {
        let g = st.guests.get_mut(&vm.vmid).unwrap();
        g.stopped_at = Instant::now().checked_sub(Duration::from_secs(20 * 60));
    });
    let (_, html) = page(&alice, &format!("/machines/{}", vm.machine)).await;
    assert!(html.contains(&t("en", "machine.state.stopped")) && html.contains(&t("en", "machine.start")));
    let cpu = points(&html, "cpu", &t("en", "mdetails.cpu"));
    assert!((38..=42).contains(&cpu), "no points for the last 20 minutes: {cpu}");
    let m: Value =
        app.get(&people.alice, &format!("/api/v1/machines/{}/metrics", vm.machine)).await.json().await.unwrap();
    let last = m["points"].as_array().unwrap().last().unwrap().clone();
    assert!(last["cpu_percent"].is_null() && last["max_memory_bytes"].as_f64().is_some(), "{last}");
}
