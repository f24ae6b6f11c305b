//! `wrk` (Debian's package) driven from a benchmark, its summary parsed.

use std::process::{Command, Stdio};

pub struct WrkResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
}

/// Whether `wrk` runs here.
pub fn available() -> bool {
    Command::new("wrk").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// `wrk` with `threads` threads and `connections` connections on `url` for `seconds`, sending `header`.
pub fn wrk(url: &str, header: &str, seconds: u64, threads: u64, connections: u64) -> WrkResult {
    let out = Command::new("wrk")
        .args([&format!("-t{threads}"), &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency"])
        .args(["-H", header, url])
        .output()
        .expect("wrk runs (apt-get install wrk)");
    parse(&String::from_utf8_lossy(&out.stdout))
}

fn parse(text: &str) -> WrkResult {
    let ms = |s: &str| -> f64 {
        let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
        let v: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => v / 1000.0,
            "s" => v * 1000.0,
            _ => v,
        }
    };
    let pct = |p: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(ms)
            .unwrap_or(f64::NAN)
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    WrkResult { rps, p50_ms: pct("50%"), p99_ms: pct("99%"), non_2xx }
}
