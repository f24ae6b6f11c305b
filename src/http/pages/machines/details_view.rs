//! What the details page shows of a machine's live state and history, as template values: the status
//! block's texts (formatted in the visitor's language) and the charts' SVG with their summaries.

use minijinja::{Value, context};

use super::charts::{self, Chart, Series};
use crate::http::i18n::format;
use crate::http::pages::ctx::Ctx;
use crate::services::machines::{LiveUsage, MachineDetails, MetricPoint, Metrics, MetricsRange};

/// At most this many points per line: a day of minutes becomes 5-minute means (the page stays small).
const MAX_POINTS: usize = 360;

fn size(ctx: &Ctx, bytes: f64) -> String {
    format::size_mib(ctx.lang, bytes / 1_048_576.0)
}

fn rate(ctx: &Ctx, bytes_per_s: f64) -> String {
    let kib = bytes_per_s / 1024.0;
    if kib >= 1024.0 {
        format!("{}\u{a0}{}/s", format::number(ctx.lang, kib / 1024.0, 1), if ctx.lang == "fr" { "Mio" } else { "MiB" })
    } else {
        format!("{}\u{a0}{}/s", format::number(ctx.lang, kib, 1), if ctx.lang == "fr" { "Kio" } else { "KiB" })
    }
}

fn percent(ctx: &Ctx, p: f64) -> String {
    let decimals = if (p - p.round()).abs() < 0.05 { 0 } else { 1 };
    format!("{}\u{a0}%", format::number(ctx.lang, p, decimals))
}

/// The status block's values; `available` is false when PVE did not tell.
pub fn live_view(ctx: &Ctx, d: &MachineDetails) -> Value {
    let Some(u) = &d.live else {
        return context! { available => false, state => "unknown" };
    };
    let LiveUsage { state, run_state, uptime_secs, cpu_percent, cpus, lock, tags, .. } = u;
    let of = |used: String, total: String| ctx.tp("mdetails.of", &[("used", &used), ("total", &total)]);
    let memory = match (u.memory_bytes, u.max_memory_bytes) {
        (Some(m), Some(max)) => Some(of(size(ctx, m as f64), size(ctx, max as f64))),
        (None, Some(max)) => Some(size(ctx, max as f64)),
        _ => None,
    };
    let disk = match (u.disk_bytes, u.max_disk_bytes) {
        (Some(used), Some(max)) => Some(of(size(ctx, used as f64), size(ctx, max as f64))),
        (None, Some(max)) if max > 0 => Some(size(ctx, max as f64)),
        _ => None,
    };
    let cpu = match (cpu_percent, cpus) {
        (Some(p), Some(n)) => Some(
            ctx.tp("mdetails.cpu_of", &[("percent", &percent(ctx, *p)), ("cpus", &format::number(ctx.lang, *n, 0))]),
        ),
        (None, Some(n)) => Some(ctx.tp("mdetails.cpus", &[("cpus", &format::number(ctx.lang, *n, 0))])),
        _ => None,
    };
    let state_key = if state == "running" || state == "stopped" { state.as_str() } else { "unknown" };
    context! {
        available => true, state => state_key, run_state => run_state, uptime => (*uptime_secs > 0 && state == "running").then_some(*uptime_secs),
        cpu => cpu, memory => memory, disk => disk,
        net_in => u.net_in_bytes.map(|b| size(ctx, b as f64)), net_out => u.net_out_bytes.map(|b| size(ctx, b as f64)),
        lock => lock, tags => tags,
    }
}

/// Means over runs of `k` points (a run with no value stays a gap).
pub fn downsample(points: &[(i64, Option<f64>)], max: usize) -> Vec<(i64, Option<f64>)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let k = points.len().div_ceil(max);
    points
        .chunks(k)
        .map(|c| {
            let known: Vec<f64> = c.iter().filter_map(|(_, v)| *v).collect();
            let t = c[c.len() - 1].0;
            (t, (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64))
        })
        .collect()
}

fn series(points: &[MetricPoint], pick: fn(&MetricPoint) -> Option<f64>) -> Vec<(i64, Option<f64>)> {
    downsample(&points.iter().map(|p| (p.time, pick(p))).collect::<Vec<_>>(), MAX_POINTS)
}

/// A chart's id, title, fixed top, lines and value format.
type ChartSpec<'a> = (&'static str, String, Option<f64>, Vec<Series<'a>>, &'a dyn Fn(f64) -> String);

/// The three charts (CPU, memory, network in and out) over the range, or `None` when PVE did not answer.
pub fn charts_view(ctx: &Ctx, d: &MachineDetails, range: MetricsRange, now: i64) -> Option<Vec<Value>> {
    let Metrics { points, .. } = d.metrics.as_ref()?;
    let span = if range == MetricsRange::Day { 86_400 } else { 3_600 };
    let range_text = ctx.t(&format!("mdetails.range_{}", range.as_str()));
    let max_mem = points.iter().filter_map(|p| p.max_memory_bytes).fold(0.0, f64::max);
    let cpu_label = ctx.t("mdetails.cpu");
    let mem_label = ctx.t("mdetails.memory");
    let (in_label, out_label) = (ctx.t("mdetails.net_in"), ctx.t("mdetails.net_out"));
    let pct = |v: f64| percent(ctx, v);
    let bytes = |v: f64| size(ctx, v);
    let per_s = |v: f64| rate(ctx, v);
    let specs: [ChartSpec<'_>; 3] = [
        (
            "cpu",
            ctx.t("mdetails.chart_cpu"),
            Some(100.0),
            vec![Series { label: &cpu_label, class: "chart-a", points: series(points, |p| p.cpu_percent) }],
            &pct,
        ),
        (
            "memory",
            ctx.t("mdetails.chart_memory"),
            (max_mem > 0.0).then_some(max_mem),
            vec![Series { label: &mem_label, class: "chart-a", points: series(points, |p| p.memory_bytes) }],
            &bytes,
        ),
        (
            "network",
            ctx.t("mdetails.chart_network"),
            None,
            vec![
                Series { label: &in_label, class: "chart-a", points: series(points, |p| p.net_in_rate) },
                Series { label: &out_label, class: "chart-b", points: series(points, |p| p.net_out_rate) },
            ],
            &per_s,
        ),
    ];
    Some(
        specs
            .into_iter()
            .map(|(id, title, y_max, series, fmt)| {
                let desc = ctx.tp("mdetails.chart_desc", &[("what", &title), ("range", &range_text)]);
                let summaries: Vec<String> = series
                    .iter()
                    .map(|s| match charts::summary(&s.points) {
                        Some(sum) => ctx.tp(
                            "mdetails.summary",
                            &[
                                ("what", s.label),
                                ("min", &fmt(sum.min)),
                                ("avg", &fmt(sum.avg)),
                                ("max", &fmt(sum.max)),
                            ],
                        ),
                        None => format!("{}: {}", s.label, ctx.t("mdetails.no_data")),
                    })
                    .collect();
                let legend: Vec<Value> =
                    series.iter().map(|s| context! { label => s.label, class => s.class }).collect();
                let chart = Chart { id, title: &title, desc: &desc, start: now - span, end: now, y_max, series };
                context! {
                    id => id, title => title.clone(), svg => Value::from_safe_string(charts::render(&chart, fmt)),
                    summaries => summaries, legend => legend,
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn downsampling_keeps_gaps_and_means() {
        let pts: Vec<(i64, Option<f64>)> = (0..8).map(|i| (i, if i < 4 { None } else { Some(i as f64) })).collect();
        let out = super::downsample(&pts, 4);
        assert_eq!(out, vec![(1, None), (3, None), (5, Some(4.5)), (7, Some(6.5))]);
        assert_eq!(super::downsample(&pts, 10).len(), 8);
    }
}
