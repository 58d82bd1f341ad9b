//! The plot: one panel per policy with the queue depth (right axis), the desired capacity and the
//! workers in service (left axis) over time. Hand-written SVG: three polylines a panel need no
//! plotting library.

use std::fmt::Write as _;

use crate::engine::Sample;

const WIDTH: f64 = 960.0;
const PANEL: f64 = 190.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 64.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 34.0;
/// Points per line; each holds the largest value within its stretch of time, so short peaks
/// stay visible.
const BUCKETS: usize = 720;

const QUEUE: &str = "#d62728";
const DESIRED: &str = "#1f77b4";
const IN_SERVICE: &str = "#2ca02c";

/// Per bucket: (queue, desired, in service), each the maximum within the bucket.
fn buckets(series: &[Sample], end: i64) -> Vec<(u32, u32, u32)> {
    let end = end.max(1);
    let mut out = vec![(0, 0, 0); BUCKETS];
    let mut cur = Sample::default();
    let mut i = 0;
    for (b, slot) in out.iter_mut().enumerate() {
        let lo = end * b as i64 / BUCKETS as i64;
        let hi = end * (b as i64 + 1) / BUCKETS as i64;
        while i < series.len() && series[i].at <= lo {
            cur = series[i];
            i += 1;
        }
        let mut m = (cur.waiting, cur.desired, cur.ready);
        while i < series.len() && series[i].at < hi {
            cur = series[i];
            m = (
                m.0.max(cur.waiting),
                m.1.max(cur.desired),
                m.2.max(cur.ready),
            );
            i += 1;
        }
        *slot = m;
    }
    out
}

/// The smallest 1, 2 or 5 × 10ⁿ at least `v` (at least 1).
fn nice(v: u32) -> u32 {
    let mut p = 1u32;
    loop {
        for m in [1, 2, 5] {
            if m * p >= v.max(1) {
                return m * p;
            }
        }
        p = p.saturating_mul(10);
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the panels; `end_ms` is the time axis' end, `title` heads the figure.
pub fn svg(title: &str, panels: &[(String, Vec<Sample>)], end_ms: i64) -> String {
    let height = 40.0 + PANEL * panels.len() as f64;
    let mut s = String::new();
    write_heading(&mut s, title, height);
    let time = TimeAxis::until(end_ms);
    for (n, (name, series)) in panels.iter().enumerate() {
        let y0 = 30.0 + PANEL * n as f64 + TOP;
        write_panel(&mut s, name, &buckets(series, end_ms), y0, &time);
    }
    s.push_str("</svg>\n");
    s
}

const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = PANEL - TOP - BOTTOM;

/// The figure's opening: the root element, the white ground, the title and the legend.
fn write_heading(s: &mut String, title: &str, height: f64) {
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let legend = [
        (QUEUE, "queue depth (right axis)", ""),
        (DESIRED, "desired", r#" stroke-dasharray="5,3""#),
        (IN_SERVICE, "in service", ""),
    ];
    let mut lx = WIDTH - RIGHT - 430.0;
    for (colour, label, dash) in legend {
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="14" x2="{}" y2="14" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="18">{label}</text>"#,
            lx + 18.0,
            lx + 22.0
        );
        lx += 150.0;
    }
}

/// The time axis every panel shares: minutes, or hours past three hours, ticked every `step`.
struct TimeAxis {
    unit: &'static str,
    /// The axis' length in `unit`s.
    span: f64,
    step: f64,
}

impl TimeAxis {
    fn until(end_ms: i64) -> Self {
        let hours = end_ms as f64 / 3_600_000.0;
        let (unit, per) = if hours > 3.0 {
            ("h", 3_600_000.0)
        } else {
            ("min", 60_000.0)
        };
        let span = end_ms as f64 / per;
        let step = [1.0, 2.0, 3.0, 6.0, 10.0, 15.0, 30.0, 60.0]
            .into_iter()
            .find(|st| span / st <= 12.0)
            .unwrap_or(120.0);
        Self { unit, span, step }
    }
}

/// One policy's panel, its plot's top at `y0`: frame, axes and the three lines.
fn write_panel(s: &mut String, name: &str, b: &[(u32, u32, u32)], y0: f64, time: &TimeAxis) {
    let wmax = nice(b.iter().map(|x| x.1.max(x.2)).max().unwrap_or(0));
    let qmax = nice(b.iter().map(|x| x.0).max().unwrap_or(0));
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="{}" font-size="12" font-weight="bold">{}</text>"#,
        y0 - 6.0,
        escape(name)
    );
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{y0}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="#999"/>"##
    );
    write_value_axes(s, y0, wmax, qmax);
    write_time_axis(s, y0, time);
    let _ = writeln!(
        s,
        r#"<polyline fill="none" stroke="{QUEUE}" stroke-width="1.2" opacity="0.8" points="{}"/>"#,
        points(b, |v| v.0, qmax, y0)
    );
    let _ = writeln!(
        s,
        r#"<polyline fill="none" stroke="{IN_SERVICE}" stroke-width="1.6" points="{}"/>"#,
        points(b, |v| v.2, wmax, y0)
    );
    let _ = writeln!(
        s,
        r#"<polyline fill="none" stroke="{DESIRED}" stroke-width="1.4" stroke-dasharray="5,3" points="{}"/>"#,
        points(b, |v| v.1, wmax, y0)
    );
}

/// Gridlines with the workers' labels on the left and the queue's on the right.
fn write_value_axes(s: &mut String, y0: f64, wmax: u32, qmax: u32) {
    for f in [0.0, 0.5, 1.0] {
        let y = y0 + PLOT_H * (1.0 - f);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" fill="{QUEUE}">{}</text>"##,
            LEFT + PLOT_W,
            LEFT - 6.0,
            y + 4.0,
            (wmax as f64 * f).round(),
            LEFT + PLOT_W + 6.0,
            y + 4.0,
            (qmax as f64 * f).round()
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">workers</text>"#,
        y0 + PLOT_H / 2.0,
        y0 + PLOT_H / 2.0
    );
}

/// The time ticks and their labels under a panel.
fn write_time_axis(s: &mut String, y0: f64, time: &TimeAxis) {
    let TimeAxis { unit, span, step } = *time;
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let x = LEFT + PLOT_W * t / span.max(1e-9);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#999"/><text x="{x:.1}" y="{}" text-anchor="middle">{t}{unit}</text>"##,
            y0 + PLOT_H,
            y0 + PLOT_H + 4.0,
            y0 + PLOT_H + 16.0
        );
        t += step;
    }
}

/// A polyline's points: the value `pick` takes from each bucket, scaled so `max` is the top.
fn points(
    b: &[(u32, u32, u32)],
    pick: impl Fn(&(u32, u32, u32)) -> u32,
    max: u32,
    y0: f64,
) -> String {
    let mut pts = String::new();
    for (i, v) in b.iter().enumerate() {
        let x = LEFT + PLOT_W * (i as f64 + 0.5) / BUCKETS as f64;
        let y = y0 + PLOT_H * (1.0 - pick(v) as f64 / max as f64);
        let _ = write!(pts, "{x:.1},{y:.1} ");
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_rounds_up_to_one_two_five() {
        assert_eq!(
            [0, 1, 3, 7, 12, 120, 501].map(nice),
            [1, 1, 5, 10, 20, 200, 1000]
        );
    }

    #[test]
    fn buckets_keep_short_peaks() {
        let s = |at, waiting| Sample {
            at,
            waiting,
            ..Sample::default()
        };
        let series = vec![s(0, 0), s(1000, 50), s(1001, 0)];
        let b = buckets(&series, 720_000);
        assert_eq!(b[1].0, 50);
        assert_eq!(b[2].0, 0);
        let svg = svg("t", &[("p".into(), series)], 720_000);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
