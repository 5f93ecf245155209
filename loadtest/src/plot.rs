//! `--plot`: a latency-by-percentile chart as a standalone SVG, written by hand (a few
//! dozen lines of markup do not justify a plotting stack). The x axis is logarithmic in
//! 1 / (1 - percentile), as HdrHistogram's plotter draws it, so the tail is readable.

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 460.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
/// Labels of the x axis decades.
const X_LABELS: [&str; 6] = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
/// Points per decade of the x axis.
const STEPS_PER_DECADE: u32 = 40;
/// The deepest percentile drawn: 99.999%.
const MAX_NINES: f64 = 5.0;

/// One line of the chart: a label and the latencies (nanoseconds) it draws.
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// Latency histogram in nanoseconds.
    pub histogram: &'a Histogram<u64>,
}

/// The SVG text for `series` under `title`.
pub fn render(title: &str, series: &[Series<'_>]) -> String {
    let nines = series
        .iter()
        .map(|s| (s.histogram.len().max(1) as f64).log10())
        .fold(1.0_f64, f64::max)
        .min(MAX_NINES);
    let max_ns = series.iter().map(|s| s.histogram.max()).max().unwrap_or(0);
    let (y_max, y_step) = nice_axis(max_ns as f64 / 1e6);
    let pw = WIDTH - LEFT - RIGHT;
    let ph = HEIGHT - TOP - BOTTOM;
    let x_of = |n: f64| LEFT + pw * n / nines;
    let y_of = |ms: f64| TOP + ph * (1.0 - ms / y_max);

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    let mut tick = 0.0;
    while tick <= y_max + y_step / 2.0 {
        let y = y_of(tick);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            trim_float(tick)
        );
        tick += y_step;
    }
    for n in 0..=(nines.floor() as u32) {
        let x = x_of(f64::from(n));
        let label = X_LABELS[n as usize];
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 18.0
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + pw / 2.0,
        HEIGHT - 10.0
    );
    let _ = writeln!(
        o,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">latency (ms)</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    let _ = writeln!(
        o,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut points = String::new();
        let steps = (nines * f64::from(STEPS_PER_DECADE)).ceil() as u32;
        for k in 0..=steps {
            let n = (f64::from(k) / f64::from(STEPS_PER_DECADE)).min(nines);
            let q = 1.0 - 10f64.powf(-n);
            let ms = s.histogram.value_at_quantile(q) as f64 / 1e6;
            let _ = write!(points, "{:.1},{:.1} ", x_of(n), y_of(ms));
        }
        let _ = writeln!(
            o,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.trim_end()
        );
        let ly = TOP + 18.0 + 18.0 * i as f64;
        let _ = writeln!(
            o,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT + 12.0,
            LEFT + 36.0,
            LEFT + 42.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// Writes the chart to `path`.
pub fn write(path: &Path, title: &str, series: &[Series<'_>]) -> std::io::Result<()> {
    std::fs::write(path, render(title, series))
}

/// An axis top at least `max` and a step giving 4 to 10 gridlines (1, 2 or 5 times 10^k).
fn nice_axis(max: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.25);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_is_nice() {
        assert_eq!(nice_axis(7.3), (8.0, 2.0));
        assert_eq!(nice_axis(0.42), (0.5, 0.1));
        assert_eq!(nice_axis(0.0), (1.0, 0.25));
    }

    #[test]
    fn renders_each_series() {
        let mut a = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        let mut b = a.clone();
        for i in 1..=10_000u64 {
            a.record(i * 1000).unwrap();
            b.record(i * 2000).unwrap();
        }
        let svg = render(
            "A <vs> B",
            &[
                Series {
                    label: "A".into(),
                    histogram: &a,
                },
                Series {
                    label: "B".into(),
                    histogram: &b,
                },
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("A &lt;vs&gt; B"));
        assert!(svg.contains("99.99%"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
