//! The PVE simulator in a child process of the benchmark (the benchmark's own executable, re-run with
//! `BENCH_SIM_CHILD` set), so the figures of proxdesk's process are its own.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use proxdesk::integrations::pve::sim::{SimConfig, Simulator, admin_acl};

pub const TOKEN_ID: &str = "proxdesk@pve!bench";
pub const SECRET: &str = "bench-secret";
const CHILD: &str = "BENCH_SIM_CHILD";

/// The simulated durations: a clone, a start or stop, and the time until a started guest has an IPv4.
#[derive(Clone, Copy)]
pub struct SimTimes {
    pub clone_ms: u64,
    pub power_ms: u64,
    pub ip_ms: u64,
}

/// In the child, runs the simulator until killed and returns `true`; in the benchmark, `false`.
pub fn run_if_child(rt: &tokio::runtime::Runtime, times: SimTimes) -> bool {
    if std::env::var_os(CHILD).is_none() {
        return false;
    }
    rt.block_on(async {
        let config = SimConfig {
            clone_duration: Duration::from_millis(times.clone_ms),
            power_duration: Duration::from_millis(times.power_ms),
            ip_delay: Duration::from_millis(times.ip_ms),
            ..SimConfig::for_tests()
        }
        .with_token(TOKEN_ID, SECRET, admin_acl());
        let sim = Simulator::start(config).await.expect("sim");
        println!("{}", sim.url());
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    });
    true
}

/// Starts the child simulator; returns it and its URL.
pub fn spawn() -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("child simulator");
    let mut url = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut url)
        .expect("sim url");
    (child, url.trim().to_owned())
}

/// The simulator's `/_sim/stats` (calls by endpoint, guests…).
pub async fn stats(url: &str) -> serde_json::Value {
    reqwest::get(format!("{url}/_sim/stats")).await.expect("stats").json().await.expect("stats json")
}
