//! renderfleet-sim: replays a job trace, or a named scenario, through our scaling policy and
//! through each peer's, and sets them against an oracle bound.
//!
//! Layout: [`trace`] reads trace CSVs; [`scenario`] generates the named scenarios and boot times
//! from a seed; [`engine`] is the discrete-event world (queue, instances, slots, billing, the
//! history lagged metrics read) and the [`engine::Policy`] seam; [`policies`] holds ours (which
//! calls `scaling_policy::decide`, the very function the Lambda calls) and the peers of
//! `../shared/peers.md`; [`oracle`] computes the bound offline; [`report`] turns runs into the
//! table, the JSON and the bar; [`plot`] draws the SVG. Everything is deterministic for
//! a seed. `docs/SIMULATOR.md` documents the model.

pub mod engine;
pub mod oracle;
pub mod plot;
pub mod policies;
pub mod report;
pub mod scenario;
pub mod trace;

pub use engine::{Outcome, Setup};
pub use policies::{Options, PolicyKind};
pub use report::{Input, PolicyResult, Report, check_bar};

use trace::Job;

/// Runs every policy of `kinds` over `jobs`, one after the other, in that order. The oracle is
/// always computed (it is every ratio's base) and gets a row only when `kinds` names it.
pub fn simulate(
    mut input: Input,
    jobs: &[Job],
    setup: &Setup,
    opts: &Options,
    kinds: &[PolicyKind],
) -> Report {
    input.jobs = jobs.len();
    input.render_secs = jobs.iter().map(|j| j.render as f64 / 1000.0).sum();
    let oracle = oracle::oracle(jobs, setup.slots, setup.boot.min());
    let mut results = Vec::new();
    let mut series = Vec::new();
    let mut end_secs: f64 = 0.0;
    for &kind in kinds {
        match policies::build(kind, setup, opts, jobs) {
            Some(mut policy) => {
                let out = engine::run(setup, jobs, policy.as_mut());
                end_secs = end_secs.max(out.end_secs);
                results.push(PolicyResult::from_outcome(
                    kind.name(),
                    &out,
                    &oracle,
                    setup.slots,
                ));
                series.push((kind.name().to_string(), out.history));
            }
            None => {
                results.push(PolicyResult::from_oracle(&oracle, setup.slots));
                series.push(("oracle".to_string(), oracle.history.clone()));
            }
        }
    }
    Report {
        input,
        setup: setup.clone(),
        options: opts.clone(),
        renderfleet_config: opts.renderfleet_config(setup),
        results,
        end_secs,
        bar: None,
        series,
    }
}
