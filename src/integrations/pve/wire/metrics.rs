//! Live usage (`status/current`) and RRD history (`…/rrddata`) as PVE sends them
//! (pve-qemu-day2.md §8). Every counter is optional: a stopped guest's RRD rows leave out `cpu`, `mem`
//! and the rates, rows before the guest existed carry only `time`, PVE 8 has no `memhost`/`pressure*`,
//! and PVE 8's last row may be `time` only (PVE 9 drops it).

use serde::{Deserialize, Deserializer};

/// Accepts `12`, `12.5` and `"12.5"` (pve-api.md §1: numbers sometimes travel as strings).
fn lenient_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(f64),
        Str(String),
    }
    Ok(match Option::<N>::deserialize(d)? {
        None => None,
        Some(N::Num(n)) => Some(n),
        // Rust reads `NaN` and `inf` as numbers; PVE never sends them and charts cannot draw them.
        Some(N::Str(s)) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Some(n),
            Ok(n) => return Err(serde::de::Error::custom(format!("{n} is not a finite number"))),
            Err(e) => return Err(serde::de::Error::custom(e)),
        },
    })
}

/// The usage part of `GET …/status/current` (LXC and QEMU; §8.1/§8.2). Byte counters are cumulative
/// since the guest started; all are 0 (or absent) while it is stopped.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GuestUsage {
    pub status: String,
    /// QEMU: the QMP run state (`running`, `paused`, …).
    #[serde(default)]
    pub qmpstatus: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub tags: Option<String>,
    /// Fraction (0…1) of `cpus`.
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub cpu: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub cpus: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub mem: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub maxmem: Option<f64>,
    /// Always 0 for QEMU (§8.1).
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub disk: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub maxdisk: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub netin: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub netout: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub diskread: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub diskwrite: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub uptime: Option<f64>,
}

/// One row of `…/rrddata`: `time` always, the rest only when known. Net and disk values are rates in
/// bytes/s here, not the counters of `status/current`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct RrdPoint {
    pub time: u64,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub cpu: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub maxcpu: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub mem: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub maxmem: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub disk: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub maxdisk: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub netin: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub netout: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub diskread: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub diskwrite: Option<f64>,
    /// PVE 9 only.
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub memhost: Option<f64>,
}

/// The `timeframe` of `rrddata` (guests: `decade` is for nodes only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeframe {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Timeframe {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Timeframe::Hour => "hour",
            Timeframe::Day => "day",
            Timeframe::Week => "week",
            Timeframe::Month => "month",
            Timeframe::Year => "year",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_both_versions_parse() {
        let rows: Vec<RrdPoint> = serde_json::from_str(
            r#"[{"time":60},{"time":120,"maxcpu":2,"maxmem":1073741824,"maxdisk":8589934592,"disk":0},
                {"time":180,"cpu":0.25,"mem":"1000","netin":12.5,"memhost":900,"pressurecpusome":0.1},
                {"time":240}]"#,
        )
        .unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1].cpu, None);
        assert_eq!(rows[2].mem, Some(1000.0));
        assert_eq!(rows[2].memhost, Some(900.0));
    }

    #[test]
    fn a_counter_that_is_not_a_finite_number_is_refused() {
        for bad in ["NaN", "inf", "-infinity", "1e400"] {
            let row = serde_json::json!({"time": 60, "cpu": bad});
            assert!(serde_json::from_value::<RrdPoint>(row).is_err(), "{bad}");
        }
    }
}
