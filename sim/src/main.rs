//! renderfleet-sim: the command line over the simulator library. See docs/SIMULATOR.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use renderfleet_sim::scenario::{BootTime, Scenario};
use renderfleet_sim::{Input, Options, PolicyKind, Setup, check_bar, plot, simulate, trace};
use scaling_policy::PolicyConfig;

/// Replays a job trace or a named scenario through renderfleet's scaling policy and its peers',
/// against an oracle bound, and prints their waits and costs.
#[derive(Debug, Parser)]
#[command(name = "renderfleet-sim", version)]
struct Args {
    /// A built-in scenario: steady, diurnal, spike, onoff or longtail.
    #[arg(long, default_value = "spike", conflicts_with = "trace")]
    scenario: Scenario,
    /// A trace CSV instead: `submitted_at,render_seconds[,priority]` (docs/SIMULATOR.md).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Seeds the scenario, the boot times and the group's random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Multiplies the scenario's arrival rate.
    #[arg(long, default_value_t = 1.0)]
    rate_scale: f64,
    /// Jobs one worker renders at once.
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// Boot time, seconds: SECS, uniform:MIN:MAX, normal:MEAN:SD or lognormal:MEDIAN:SIGMA.
    #[arg(long, default_value = "30")]
    boot: BootTime,
    /// The fleet's bound, for every policy.
    #[arg(long, default_value_t = 1000)]
    max_workers: u32,
    /// Policies to compare, comma-separated (also: buildkite-asg).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "renderfleet,target-tracking,keda,gh-runner,buildkite,oracle"
    )]
    policies: Vec<PolicyKind>,
    /// A policy's interval, POLICY=SECS (repeatable): our tick, target tracking's period, the
    /// HPA sync, the runners' scale-down schedule, Buildkite's poll.
    #[arg(long = "tick", value_parser = parse_tick)]
    ticks: Vec<(PolicyKind, f64)>,
    /// CloudWatch publication lag for target tracking's datapoints, seconds (UNCONFIRMED).
    #[arg(long, default_value_t = 60.0)]
    metric_lag_secs: f64,
    /// Staleness of SQS's approximate counts read directly (KEDA), seconds.
    #[arg(long, default_value_t = 0.0)]
    sqs_lag_secs: f64,
    /// Per-second billing's minimum per instance, seconds.
    #[arg(long, default_value_t = 60.0)]
    min_billed_secs: f64,
    /// The wait users accept, seconds: our target and target tracking's acceptable latency.
    #[arg(long, default_value_t = 30.0)]
    target_wait_secs: f64,
    /// Seconds simulated (and billed) after the last submission.
    #[arg(long, default_value_t = 1800.0)]
    drain_secs: f64,
    /// Our policy's configuration, JSON (scaling_policy::PolicyConfig), used as given.
    #[arg(long)]
    renderfleet_config: Option<PathBuf>,
    /// KEDA's queueLength; default: the slots per worker.
    #[arg(long)]
    keda_queue_length: Option<f64>,
    /// Seconds a Buildkite agent idles before its instance terminates itself (UNCONFIRMED).
    #[arg(long, default_value_t = 600.0)]
    buildkite_idle_secs: f64,
    /// Check the bar for our policy with this instance-seconds limit (× oracle).
    #[arg(long)]
    bar_ratio: Option<f64>,
    /// Print JSON instead of the table.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print a Markdown table instead of the terminal one.
    #[arg(long)]
    markdown: bool,
    /// Write the plot here (SVG): one panel per policy.
    #[arg(long)]
    plot: Option<PathBuf>,
}

fn parse_tick(s: &str) -> Result<(PolicyKind, f64), String> {
    let (name, secs) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected POLICY=SECS"))?;
    let kind: PolicyKind = name.parse()?;
    let secs: f64 = secs
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite() && *x > 0.0)
        .ok_or_else(|| format!("{s:?}: the interval must be a number of seconds above 0"))?;
    if kind == PolicyKind::Oracle {
        return Err("the oracle has no tick".into());
    }
    Ok((kind, secs))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.check()?;
    let (source, jobs) = args.jobs()?;
    let setup = args.setup();
    let opts = args.options()?;
    let input = Input {
        source,
        seed: args.seed,
        rate_scale: args.rate_scale,
        jobs: 0,
        render_secs: 0.0,
    };
    let mut report = simulate(input, &jobs, &setup, &opts, &args.policies);
    if let Some(ratio) = args.bar_ratio {
        let tick = report.renderfleet_config.tick_secs;
        let limit = setup.boot.mean() + 2.0 * tick;
        report.bar = check_bar(&report.results, limit, ratio);
    }
    if let Some(path) = &args.plot {
        let end = (report.end_secs * 1000.0) as i64;
        let svg = plot::svg(&report.headline(), &report.series, end);
        std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.markdown {
        print!("{}", report.markdown());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

impl Args {
    /// The checks clap cannot make.
    fn check(&self) -> anyhow::Result<()> {
        if self.slots == 0 {
            bail!("--slots must be at least 1");
        }
        if !(self.rate_scale.is_finite() && self.rate_scale > 0.0) {
            bail!("--rate-scale must be above 0");
        }
        for (name, v) in [
            ("--metric-lag-secs", self.metric_lag_secs),
            ("--sqs-lag-secs", self.sqs_lag_secs),
            ("--min-billed-secs", self.min_billed_secs),
            ("--target-wait-secs", self.target_wait_secs),
            ("--drain-secs", self.drain_secs),
            ("--buildkite-idle-secs", self.buildkite_idle_secs),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{name} must be a number of seconds, at least 0");
            }
        }
        Ok(())
    }

    /// The jobs to replay, from the trace or the scenario, and what they are called.
    fn jobs(&self) -> anyhow::Result<(String, Vec<trace::Job>)> {
        let Some(path) = &self.trace else {
            return Ok((
                self.scenario.to_string(),
                self.scenario.jobs(self.seed, self.rate_scale),
            ));
        };
        let text = read(path)?;
        let jobs = trace::parse_csv(&text).with_context(|| format!("{}", path.display()))?;
        Ok((format!("trace {}", path.display()), jobs))
    }

    fn setup(&self) -> Setup {
        Setup {
            slots: self.slots,
            boot: self.boot,
            max_workers: self.max_workers,
            seed: self.seed,
            metric_lag_secs: self.metric_lag_secs,
            sqs_lag_secs: self.sqs_lag_secs,
            min_billed_secs: self.min_billed_secs,
            target_wait_secs: self.target_wait_secs,
            drain_secs: self.drain_secs,
        }
    }

    /// The policies' options, with our policy's configuration read and checked when given.
    fn options(&self) -> anyhow::Result<Options> {
        let mut opts = Options {
            ticks: self.ticks.iter().copied().collect::<BTreeMap<_, _>>(),
            keda_queue_length: self.keda_queue_length,
            buildkite_idle_secs: self.buildkite_idle_secs,
            ..Options::default()
        };
        if let Some(path) = &self.renderfleet_config {
            let text = read(path)?;
            let cfg: PolicyConfig = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a renderfleet policy config", path.display()))?;
            cfg.validate()
                .with_context(|| format!("{}", path.display()))?;
            opts.renderfleet = cfg;
            opts.renderfleet_config_fixed = true;
        }
        Ok(opts)
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
