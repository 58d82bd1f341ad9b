//! What a comparison reports: per-policy figures, the bar for our policy, and the
//! terminal and Markdown tables.

use std::fmt::Write as _;

use scaling_policy::PolicyConfig;
use serde::Serialize;

use crate::engine::{Outcome, Sample, Setup};
use crate::oracle::Oracle;
use crate::policies::Options;

/// Where the jobs came from.
#[derive(Clone, Debug, Serialize)]
pub struct Input {
    /// The scenario's name, or `trace` for a CSV.
    pub source: String,
    pub seed: u64,
    pub rate_scale: f64,
    pub jobs: usize,
    pub render_secs: f64,
}

/// One policy's figures.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyResult {
    pub policy: String,
    /// Jobs finished (every job, unless `unfinished` says otherwise).
    pub jobs: usize,
    pub unfinished: usize,
    pub wait_p50_secs: f64,
    pub wait_p95_secs: f64,
    pub wait_p99_secs: f64,
    pub wait_max_secs: f64,
    pub wait_mean_secs: f64,
    /// Billed instance-seconds (per second, at least the minimum per instance).
    pub instance_secs: f64,
    pub ratio_to_oracle: f64,
    /// Render seconds over billed instance-seconds times slots.
    pub utilisation: f64,
    /// Jobs stopped mid-render because their instance was terminated by a scale-in.
    pub interrupted: u64,
    /// Calls that changed the fleet: desired capacity set to a new value or forcing removals,
    /// instances launched by a fleet request, instances terminated one by one.
    pub scaling_actions: u64,
    pub instances_launched: u64,
    pub peak_instances: u32,
}

/// One bar of the issue and whether our policy clears it.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub bar: String,
    pub passed: bool,
    pub detail: String,
}

/// The bar for our policy on this run.
#[derive(Clone, Debug, Serialize)]
pub struct Bar {
    pub wait_limit_secs: f64,
    pub ratio_limit: f64,
    pub passed: bool,
    pub checks: Vec<Check>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub input: Input,
    pub setup: Setup,
    pub options: Options,
    /// Our policy's configuration as run.
    pub renderfleet_config: PolicyConfig,
    pub results: Vec<PolicyResult>,
    /// When the longest run ended, seconds.
    pub end_secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bar: Option<Bar>,
    /// Each policy's fleet over time, for the plot.
    #[serde(skip)]
    pub series: Vec<(String, Vec<Sample>)>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

impl PolicyResult {
    pub fn from_outcome(name: &str, o: &Outcome, oracle: &Oracle, slots: u32) -> Self {
        let mut waits = o.waits.clone();
        waits.sort_by(f64::total_cmp);
        let mean = if waits.is_empty() {
            0.0
        } else {
            waits.iter().sum::<f64>() / waits.len() as f64
        };
        let peak = o
            .history
            .iter()
            .map(|s| s.ready + s.booting)
            .max()
            .unwrap_or(0);
        Self {
            policy: name.into(),
            jobs: o.jobs,
            unfinished: o.unfinished,
            wait_p50_secs: round(percentile(&waits, 0.50), 3),
            wait_p95_secs: round(percentile(&waits, 0.95), 3),
            wait_p99_secs: round(percentile(&waits, 0.99), 3),
            wait_max_secs: round(waits.last().copied().unwrap_or(0.0), 3),
            wait_mean_secs: round(mean, 3),
            instance_secs: round(o.instance_secs, 3),
            ratio_to_oracle: round(ratio(o.instance_secs, oracle.instance_secs), 4),
            utilisation: round(ratio(o.render_secs, o.instance_secs * slots as f64), 4),
            interrupted: o.interrupted,
            scaling_actions: o.actions,
            instances_launched: o.launched as u64,
            peak_instances: peak,
        }
    }

    pub fn from_oracle(o: &Oracle, slots: u32) -> Self {
        let peak = o.history.iter().map(|s| s.desired).max().unwrap_or(0);
        Self {
            policy: "oracle".into(),
            jobs: o.jobs,
            unfinished: 0,
            wait_p50_secs: 0.0,
            wait_p95_secs: 0.0,
            wait_p99_secs: 0.0,
            wait_max_secs: 0.0,
            wait_mean_secs: 0.0,
            instance_secs: round(o.instance_secs, 3),
            ratio_to_oracle: 1.0,
            utilisation: round(ratio(o.render_secs, o.instance_secs * slots as f64), 4),
            interrupted: 0,
            // A launch and a termination per instance.
            scaling_actions: 2 * o.launches,
            instances_launched: o.launches,
            peak_instances: peak,
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Checks the bar: our p95 wait at most `wait_limit_secs` (boot plus two ticks), our
/// instance-seconds at most `ratio_limit` × the oracle's, no interrupted job, and against every
/// peer a p95 wait no longer and instance-seconds no higher, one of them strictly.
pub fn check_bar(results: &[PolicyResult], wait_limit_secs: f64, ratio_limit: f64) -> Option<Bar> {
    let ours = results.iter().find(|r| r.policy == "renderfleet")?;
    let mut checks = vec![
        Check {
            bar: format!("p95 wait ≤ {wait_limit_secs} s (boot + 2 ticks)"),
            passed: ours.wait_p95_secs <= wait_limit_secs,
            detail: format!(
                "p95 {:.1} s ({:+.1} s)",
                ours.wait_p95_secs,
                ours.wait_p95_secs - wait_limit_secs
            ),
        },
        Check {
            bar: format!("instance-seconds ≤ {ratio_limit}× oracle"),
            passed: ours.ratio_to_oracle <= ratio_limit,
            detail: format!(
                "{:.3}× ({:.0} vs {:.0} allowed, {:+.1}%)",
                ours.ratio_to_oracle,
                ours.instance_secs,
                ours.instance_secs / ours.ratio_to_oracle.max(1e-12) * ratio_limit,
                (ours.ratio_to_oracle / ratio_limit - 1.0) * 100.0
            ),
        },
        Check {
            bar: "zero interrupted jobs".into(),
            passed: ours.interrupted == 0 && ours.unfinished == 0,
            detail: format!(
                "{} interrupted, {} unfinished",
                ours.interrupted, ours.unfinished
            ),
        },
    ];
    for peer in results
        .iter()
        .filter(|r| r.policy != "renderfleet" && r.policy != "oracle")
    {
        let p95_ok = ours.wait_p95_secs <= peer.wait_p95_secs;
        let cost_ok = ours.instance_secs <= peer.instance_secs;
        let strict =
            ours.wait_p95_secs < peer.wait_p95_secs || ours.instance_secs < peer.instance_secs;
        checks.push(Check {
            bar: format!("better than {} (p95, instance-seconds)", peer.policy),
            passed: p95_ok && cost_ok && strict,
            detail: format!(
                "p95 {:.1} vs {:.1} s, instance-s {:.0} vs {:.0} ({:+.1}%)",
                ours.wait_p95_secs,
                peer.wait_p95_secs,
                ours.instance_secs,
                peer.instance_secs,
                (ours.instance_secs / peer.instance_secs.max(1e-12) - 1.0) * 100.0
            ),
        });
    }
    Some(Bar {
        wait_limit_secs,
        ratio_limit,
        passed: checks.iter().all(|c| c.passed),
        checks,
    })
}

const HEADER: [&str; 11] = [
    "policy",
    "jobs",
    "p50 wait s",
    "p95 wait s",
    "p99 wait s",
    "max wait s",
    "instance-s",
    "× oracle",
    "util",
    "interrupted",
    "actions",
];

fn cells(r: &PolicyResult) -> [String; 11] {
    let jobs = if r.unfinished > 0 {
        format!("{} (+{} unfinished)", r.jobs, r.unfinished)
    } else {
        r.jobs.to_string()
    };
    [
        r.policy.clone(),
        jobs,
        format!("{:.1}", r.wait_p50_secs),
        format!("{:.1}", r.wait_p95_secs),
        format!("{:.1}", r.wait_p99_secs),
        format!("{:.1}", r.wait_max_secs),
        format!("{:.0}", r.instance_secs),
        format!("{:.3}", r.ratio_to_oracle),
        format!("{:.1}%", r.utilisation * 100.0),
        r.interrupted.to_string(),
        r.scaling_actions.to_string(),
    ]
}

impl Report {
    pub fn headline(&self) -> String {
        let s = &self.setup;
        format!(
            "{}: {} jobs ({:.0} render-s), seed {}, rate ×{}, {} slot(s)/worker, boot {} s, max {} workers, CloudWatch lag {} s, SQS lag {} s, wait target {} s",
            self.input.source,
            self.input.jobs,
            self.input.render_secs,
            self.input.seed,
            self.input.rate_scale,
            s.slots,
            s.boot,
            s.max_workers,
            s.metric_lag_secs,
            s.sqs_lag_secs,
            s.target_wait_secs
        )
    }

    /// An aligned table for the terminal, with the bar's verdict when checked.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 11]> = self.results.iter().map(cells).collect();
        let mut width = HEADER.map(|h| h.chars().count());
        for row in &rows {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = format!("{}\n\n", self.headline());
        let line = |cells: &[String]| {
            let mut l = String::new();
            for (i, (c, w)) in cells.iter().zip(width).enumerate() {
                let pad = w - c.chars().count();
                if i == 0 {
                    let _ = write!(l, "{c}{}", " ".repeat(pad));
                } else {
                    let _ = write!(l, "  {}{c}", " ".repeat(pad));
                }
            }
            l.trim_end().to_string() + "\n"
        };
        out += &line(&HEADER.map(String::from));
        for row in &rows {
            out += &line(row);
        }
        if let Some(bar) = &self.bar {
            out += "\nthe bar for renderfleet:\n";
            for c in &bar.checks {
                let mark = if c.passed { "pass" } else { "MISS" };
                let _ = writeln!(out, "  {mark}  {}: {}", c.bar, c.detail);
            }
        }
        out
    }

    /// A Markdown table with the bar's verdict, for docs/SCALING.md.
    pub fn markdown(&self) -> String {
        let mut out = format!("{}.\n\n", self.headline());
        out += &format!("| {} |\n", HEADER.join(" | "));
        out += &format!("|{}\n", "---|".repeat(HEADER.len()));
        for r in &self.results {
            out += &format!("| {} |\n", cells(r).join(" | "));
        }
        if let Some(bar) = &self.bar {
            out += "\n| bar for renderfleet | verdict | measured |\n|---|---|---|\n";
            for c in &bar.checks {
                let mark = if c.passed { "pass" } else { "**miss**" };
                out += &format!("| {} | {mark} | {} |\n", c.bar, c.detail);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
        assert_eq!(percentile(&[], 0.95), 0.0);
    }
}
