//! Server-side line charts: a series of `(time, value)` points in, one SVG string out. Pure functions,
//! no script: a point without a value breaks the line (the guest was off or did not exist), the y axis
//! starts at 0 and ends at a round number, and colours come from the page's CSS (`.chart-*` classes) so
//! light and dark themes both hold.

/// One line of a chart.
pub struct Series<'a> {
    /// Shown in the legend and the summary.
    pub label: &'a str,
    /// CSS class of the line (`chart-a`, `chart-b`).
    pub class: &'a str,
    pub points: Vec<(i64, Option<f64>)>,
}

/// A chart to draw.
pub struct Chart<'a> {
    /// Unique on the page: the `<title>`/`<desc>` ids derive from it.
    pub id: &'a str,
    pub title: &'a str,
    /// Said to screen readers (`<desc>`).
    pub desc: &'a str,
    /// The time span drawn, epoch seconds.
    pub start: i64,
    pub end: i64,
    /// A fixed top of the y axis (100 for percentages); `None`: from the data.
    pub y_max: Option<f64>,
    pub series: Vec<Series<'a>>,
}

/// Drawing area, in SVG units.
const W: f64 = 600.0;
const H: f64 = 160.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// Minimum, mean and maximum of the known values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

/// The summary of `points`, `None` when no value is known.
pub fn summary(points: &[(i64, Option<f64>)]) -> Option<Summary> {
    let known: Vec<f64> = points.iter().filter_map(|(_, v)| *v).filter(|v| v.is_finite()).collect();
    if known.is_empty() {
        return None;
    }
    let min = known.iter().copied().fold(f64::INFINITY, f64::min);
    let max = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Summary { min, avg: known.iter().sum::<f64>() / known.len() as f64, max })
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `v` (1 for nothing to show).
pub fn nice_ceiling(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|c| *c >= v * (1.0 - 1e-9)).unwrap_or(v)
}

/// Escapes text for SVG/HTML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The lines of one series: a path per run of known values (`M` then `L`s), with the number of points
/// drawn. A lone point between gaps is drawn as a dot-sized segment so it stays visible.
pub fn paths(points: &[(i64, Option<f64>)], x: impl Fn(i64) -> f64, y: impl Fn(f64) -> f64) -> (Vec<String>, usize) {
    let (mut out, mut run, mut drawn) = (vec![], String::new(), 0);
    let mut in_run = 0;
    let close = |run: &mut String, in_run: &mut usize, out: &mut Vec<String>| {
        if *in_run == 1 {
            run.push_str(" h0.1");
        }
        if *in_run > 0 {
            out.push(std::mem::take(run));
        }
        *in_run = 0;
    };
    for (t, v) in points {
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                let cmd = if in_run == 0 { "M" } else { " L" };
                run.push_str(&format!("{cmd}{:.1},{:.1}", x(*t), y(v)));
                in_run += 1;
                drawn += 1;
            }
            None => close(&mut run, &mut in_run, &mut out),
        }
    }
    close(&mut run, &mut in_run, &mut out);
    (out, drawn)
}

/// `HH:MM` (UTC) of an epoch second.
fn clock(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%H:%M").to_string()).unwrap_or_default()
}

/// The chart as an `<svg>` with `role="img"`, `<title>` and `<desc>`, axis labels (formatted by
/// `fmt`: 0, half and the top on y; start, middle and end time on x) and one path per run of values.
pub fn render(chart: &Chart<'_>, fmt: &dyn Fn(f64) -> String) -> String {
    let top = chart.y_max.unwrap_or_else(|| {
        let max = chart.series.iter().filter_map(|s| summary(&s.points)).map(|s| s.max).fold(0.0, f64::max);
        nice_ceiling(max)
    });
    let span = (chart.end - chart.start).max(1) as f64;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: i64| LEFT + ((t - chart.start) as f64 / span).clamp(0.0, 1.0) * pw;
    let y = |v: f64| TOP + ph - (v / top).clamp(0.0, 1.0) * ph;
    let id = escape(chart.id);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        escape(chart.title),
        escape(chart.desc)
    );
    svg.push_str("<g class=\"chart-grid\" aria-hidden=\"true\">");
    for frac in [0.0, 0.5, 1.0] {
        let gy = TOP + ph - frac * ph;
        svg.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{gy:.1}\" y2=\"{gy:.1}\"/><text class=\"chart-label\" x=\"{:.1}\" \
             y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            gy + 4.0,
            escape(&fmt(top * frac))
        ));
    }
    let mid = chart.start + (chart.end - chart.start) / 2;
    for (t, anchor) in [(chart.start, "start"), (mid, "middle"), (chart.end, "end")] {
        svg.push_str(&format!(
            "<text class=\"chart-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            x(t),
            H - 6.0,
            clock(t)
        ));
    }
    svg.push_str("</g>");
    for s in &chart.series {
        let (runs, drawn) = paths(&s.points, x, y);
        svg.push_str(&format!(
            "<g class=\"chart-line {}\" data-series=\"{}\" data-points=\"{drawn}\" aria-hidden=\"true\">",
            escape(s.class),
            escape(s.label)
        ));
        for d in runs {
            svg.push_str(&format!("<path d=\"{d}\"/>"));
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(points: Vec<(i64, Option<f64>)>, y_max: Option<f64>) -> String {
        let c = Chart {
            id: "cpu",
            title: "CPU <load> & \"more\"",
            desc: "last hour",
            start: 0,
            end: 3600,
            y_max,
            series: vec![Series { label: "CPU", class: "chart-a", points }],
        };
        render(&c, &|v| format!("{v:.0} %"))
    }

    #[test]
    fn values_scale_into_the_plot_area() {
        let svg = chart(vec![(0, Some(0.0)), (3600, Some(100.0))], Some(100.0));
        // 0 at the bottom-left corner of the plot, 100 at its top-right.
        assert!(svg.contains(&format!("M{LEFT:.1},{:.1} L{:.1},{TOP:.1}", H - BOTTOM, W - RIGHT)), "{svg}");
        assert!(svg.contains("data-points=\"2\""));
    }

    #[test]
    fn a_missing_value_breaks_the_line() {
        let svg = chart(vec![(0, Some(1.0)), (60, Some(2.0)), (120, None), (180, Some(3.0)), (240, Some(4.0))], None);
        assert_eq!(svg.matches("<path ").count(), 2, "two runs: {svg}");
        assert!(svg.contains("data-points=\"4\""));
        let lone = chart(vec![(0, None), (60, Some(2.0)), (120, None)], None);
        assert!(lone.contains(" h0.1"), "a lone point stays visible: {lone}");
    }

    #[test]
    fn axis_labels_show_zero_half_top_and_times() {
        let svg = chart(vec![(0, Some(30.0)), (3600, Some(70.0))], None);
        // 70 rounds up to 100: labels 0, 50, 100.
        for label in [">0 %<", ">50 %<", ">100 %<", ">00:00<", ">00:30<", ">01:00<"] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
    }

    #[test]
    fn text_is_escaped_and_the_chart_is_labelled() {
        let svg = chart(vec![], None);
        assert!(svg.contains("<title id=\"cpu-title\">CPU &lt;load&gt; &amp; &quot;more&quot;</title>"));
        assert!(svg.contains("role=\"img\"") && svg.contains("aria-labelledby=\"cpu-title cpu-desc\""));
        assert!(svg.contains("data-points=\"0\"") && !svg.contains("<path "));
    }

    #[test]
    fn summaries_and_ceilings() {
        assert_eq!(
            summary(&[(0, Some(1.0)), (1, None), (2, Some(3.0))]),
            Some(Summary { min: 1.0, avg: 2.0, max: 3.0 })
        );
        assert_eq!(summary(&[(0, None)]), None);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(1500.0), 2000.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
    }
}
