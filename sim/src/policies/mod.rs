//! The policies the simulator compares: ours, each peer of `../shared/peers.md` with its
//! documented defaults, and the oracle (computed offline, see [`crate::oracle`]).

mod buildkite;
mod gh_runner;
mod keda;
mod renderfleet;
mod target_tracking;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use scaling_policy::PolicyConfig;
use serde::Serialize;

pub use buildkite::{Buildkite, ScaleIn};
pub use gh_runner::GhRunner;
pub use keda::Keda;
pub use renderfleet::Renderfleet;
pub use target_tracking::{TargetTracking, backlog_target};

use crate::engine::{Policy, Setup};
use crate::trace::{Job, ms};

/// A policy by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    Renderfleet,
    TargetTracking,
    Keda,
    GhRunner,
    Buildkite,
    /// Buildkite with scale-in left to the ASG (not in the default set).
    BuildkiteAsg,
    Oracle,
}

impl PolicyKind {
    /// Every policy, ours first and the oracle last.
    pub const ALL: [PolicyKind; 7] = [
        PolicyKind::Renderfleet,
        PolicyKind::TargetTracking,
        PolicyKind::Keda,
        PolicyKind::GhRunner,
        PolicyKind::Buildkite,
        PolicyKind::BuildkiteAsg,
        PolicyKind::Oracle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Renderfleet => "renderfleet",
            PolicyKind::TargetTracking => "target-tracking",
            PolicyKind::Keda => "keda",
            PolicyKind::GhRunner => "gh-runner",
            PolicyKind::Buildkite => "buildkite",
            PolicyKind::BuildkiteAsg => "buildkite-asg",
            PolicyKind::Oracle => "oracle",
        }
    }

    /// The interval `--tick` sets, and its default in seconds: our tick, target tracking's
    /// metric period, the HPA sync period, the runners' scale-down schedule, Buildkite's poll.
    pub fn default_tick_secs(self) -> Option<f64> {
        match self {
            PolicyKind::Renderfleet => Some(10.0),
            PolicyKind::TargetTracking => Some(60.0),
            PolicyKind::Keda => Some(15.0),
            PolicyKind::GhRunner => Some(300.0),
            PolicyKind::Buildkite | PolicyKind::BuildkiteAsg => Some(10.0),
            PolicyKind::Oracle => None,
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                format!("unknown policy {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// Per-policy settings beyond the shared [`Setup`].
#[derive(Clone, Debug, Serialize)]
pub struct Options {
    /// Our policy's configuration. `max_workers`, `slots_per_worker`, `target_wait_secs`,
    /// `default_boot_secs` and `min_billed_secs` follow the setup unless `renderfleet_config_fixed`.
    /// Reported as run, in [`crate::Report::renderfleet_config`].
    #[serde(skip)]
    pub renderfleet: PolicyConfig,
    /// Use `renderfleet` exactly as given (a config file was passed).
    pub renderfleet_config_fixed: bool,
    /// Tick overrides by policy, seconds.
    pub ticks: BTreeMap<PolicyKind, f64>,
    /// KEDA's `queueLength`; default: the slots per worker.
    pub keda_queue_length: Option<f64>,
    /// Seconds a Buildkite agent idles before its instance terminates itself. UNCONFIRMED: not
    /// in peers.md; the Elastic CI Stack's ScaleInIdlePeriod. Default 600.
    pub buildkite_idle_secs: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            renderfleet: PolicyConfig::default(),
            renderfleet_config_fixed: false,
            ticks: BTreeMap::new(),
            keda_queue_length: None,
            buildkite_idle_secs: 600.0,
        }
    }
}

impl Options {
    fn tick(&self, k: PolicyKind) -> f64 {
        self.ticks
            .get(&k)
            .copied()
            .or(k.default_tick_secs())
            .unwrap_or(10.0)
    }

    /// Our policy's configuration as run.
    pub fn renderfleet_config(&self, setup: &Setup) -> PolicyConfig {
        let mut cfg = self.renderfleet.clone();
        if !self.renderfleet_config_fixed {
            cfg.max_workers = setup.max_workers;
            cfg.slots_per_worker = setup.slots;
            cfg.target_wait_secs = setup.target_wait_secs;
            cfg.default_boot_secs = setup.boot.mean();
            cfg.min_billed_secs = setup.min_billed_secs;
        }
        if let Some(t) = self.ticks.get(&PolicyKind::Renderfleet) {
            cfg.tick_secs = *t;
        }
        cfg
    }
}

/// Builds the simulated policy (`None` for the oracle, which is computed, not run).
pub fn build(
    kind: PolicyKind,
    setup: &Setup,
    opts: &Options,
    jobs: &[Job],
) -> Option<Box<dyn Policy>> {
    let tick = ms(opts.tick(kind)).max(1);
    Some(match kind {
        PolicyKind::Renderfleet => Box::new(Renderfleet::new(opts.renderfleet_config(setup))),
        PolicyKind::TargetTracking => {
            let mean_render = if jobs.is_empty() {
                60.0
            } else {
                jobs.iter().map(|j| j.render as f64 / 1000.0).sum::<f64>() / jobs.len() as f64
            };
            let target = backlog_target(setup.target_wait_secs, mean_render, setup.slots);
            let mut p = TargetTracking::new(target, setup.max_workers, ms(setup.metric_lag_secs));
            p.period = tick;
            Box::new(p)
        }
        PolicyKind::Keda => {
            let q = opts.keda_queue_length.unwrap_or(setup.slots as f64);
            let mut p = Keda::new(q, setup.max_workers, ms(setup.sqs_lag_secs));
            p.sync = tick;
            Box::new(p)
        }
        PolicyKind::GhRunner => Box::new(GhRunner::new(setup.max_workers, tick)),
        PolicyKind::Buildkite | PolicyKind::BuildkiteAsg => {
            let scale_in = if kind == PolicyKind::Buildkite {
                ScaleIn::AgentIdle {
                    after: ms(opts.buildkite_idle_secs),
                }
            } else {
                ScaleIn::Asg
            };
            let mut p = Buildkite::new(setup.slots, setup.max_workers, scale_in);
            p.interval = tick;
            Box::new(p)
        }
        PolicyKind::Oracle => return None,
    })
}
