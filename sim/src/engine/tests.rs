use super::*;
use crate::policies::{Buildkite, GhRunner, Keda, Renderfleet, ScaleIn, TargetTracking};
use crate::trace::secs;

fn job(at: f64, render: f64) -> Job {
    Job {
        submitted: ms(at),
        render: ms(render),
        priority: 0,
    }
}

fn setup(boot: f64) -> Setup {
    Setup {
        boot: BootTime::Fixed { secs: boot },
        max_workers: 20,
        ..Setup::default()
    }
}

/// Sets the desired capacity (or terminates) at fixed times.
struct Script {
    fleet: FleetKind,
    steps: Vec<(Millis, Step)>,
}

#[derive(Clone, Copy)]
enum Step {
    Desired(u32),
    Terminate(u32),
}

impl Policy for Script {
    fn fleet(&self) -> FleetKind {
        self.fleet
    }
    fn wake(&mut self, w: &mut World) -> Option<Millis> {
        let now = w.now;
        for (_, step) in self.steps.iter().filter(|(at, _)| *at == now) {
            match *step {
                Step::Desired(n) => {
                    w.set_desired(n, Victims::AsgDefault);
                }
                Step::Terminate(id) => {
                    w.terminate(id, true);
                }
            }
        }
        self.steps.iter().map(|(at, _)| *at).find(|at| *at > now)
    }
}

fn script(protect_busy: bool, steps: &[(f64, Step)]) -> Script {
    Script {
        fleet: FleetKind {
            asg: true,
            protect_busy,
            ..FleetKind::default()
        },
        steps: steps.iter().map(|(t, s)| (ms(*t), *s)).collect(),
    }
}

#[test]
fn billing_is_per_second_with_a_sixty_second_minimum() {
    let mut s = setup(5.0);
    s.drain_secs = 0.0;
    // One instance lives 10 s, one 100 s; the run ends at 200 s.
    let mut p = script(
        false,
        &[
            (0.0, Step::Desired(2)),
            (10.0, Step::Terminate(0)),
            (100.0, Step::Terminate(1)),
        ],
    );
    let out = run(&s, &[job(200.0, 0.001)], &mut p);
    // The job at 200 s finds no worker and is never served: the run gives up.
    assert_eq!(out.unfinished, 1);
    assert_eq!(out.instance_secs, 60.0 + 100.0);
    assert_eq!(out.actions, 3);
}

#[test]
fn a_job_waits_for_the_boot_and_runs_for_its_render_time() {
    let mut p = script(true, &[(0.0, Step::Desired(1)), (200.0, Step::Desired(0))]);
    let out = run(&setup(30.0), &[job(0.0, 100.0), job(5.0, 10.0)], &mut p);
    assert_eq!(out.jobs, 2);
    // First starts at 30 (boot), second when the first ends at 130.
    assert_eq!(out.waits, vec![30.0, 125.0]);
    assert_eq!(out.render_secs, 110.0);
    assert_eq!(out.instance_secs, 200.0);
    assert_eq!(out.interrupted, 0);
}

#[test]
fn the_group_spares_protected_workers_and_interrupts_unprotected_ones() {
    let steps = [(0.0, Step::Desired(1)), (50.0, Step::Desired(0))];
    // Protected: the busy worker survives the drop to 0 and the job completes.
    let out = run(&setup(10.0), &[job(0.0, 100.0)], &mut script(true, &steps));
    assert_eq!((out.interrupted, out.jobs), (0, 1));
    // Unprotected: the group terminates it mid-job; the job is back in the queue, unserved.
    let out = run(&setup(10.0), &[job(0.0, 100.0)], &mut script(false, &steps));
    assert_eq!((out.interrupted, out.jobs, out.unfinished), (1, 0, 1));
}

#[test]
fn lagged_samples_show_the_past() {
    let mut p = script(true, &[(0.0, Step::Desired(1))]);
    let w_jobs = [job(0.0, 100.0), job(1.0, 100.0), job(2.0, 100.0)];
    let mut w = World::new(setup(10.0), &w_jobs, p.fleet());
    p.wake(&mut w);
    while let Some(Reverse(ev)) = w.events.pop() {
        if ev.at > 20_000 {
            break;
        }
        w.advance(ev.at);
        w.handle(ev.what);
        w.record();
    }
    assert_eq!(w.sample_at(-1).waiting, 0);
    assert_eq!(w.sample_at(500).waiting, 1);
    assert_eq!(w.sample_at(2_500).waiting, 3);
    assert_eq!(w.sample_at(15_000).waiting, 2);
    // One instance ready from 10 s: 5 instance-seconds by 15 s.
    assert_eq!(w.sample_at(15_000).ready_ms, 5_000.0);
}

/// 10 long jobs at 0 on one warm instance: the backlog per instance is 9 from the first period.
/// Three datapoints over the target fire the alarm, each published `lag` after its period.
#[test]
fn target_tracking_scales_out_three_periods_plus_the_metric_lag_late() {
    let jobs: Vec<Job> = (0..10).map(|_| job(0.0, 1000.0)).collect();
    for lag in [0.0, 60.0, 300.0] {
        let mut s = setup(30.0);
        s.metric_lag_secs = lag;
        let target = crate::policies::backlog_target(30.0, 1000.0, 1);
        let mut p = TargetTracking::new(target, 20, ms(lag));
        let out = run(&s, &jobs, &mut p);
        let first = out
            .history
            .iter()
            .find(|x| x.desired > 1)
            .map(|x| secs(x.at));
        assert_eq!(first, Some(180.0 + lag), "lag {lag}");
    }
}

// Hand-computed tiny traces: one job of 100 s at time 0, boot 30 s, the run billed to 1800 s.

fn tiny() -> (Setup, Vec<Job>) {
    (setup(30.0), vec![job(0.0, 100.0)])
}

/// Runs `policy` on the tiny trace and checks the job's wait, the instance-seconds billed and
/// the `(actions, interrupted)` counts.
fn assert_tiny_run(
    policy: &mut dyn Policy,
    wait: f64,
    instance_secs: f64,
    actions_interrupted: (u64, u64),
) {
    let (s, jobs) = tiny();
    let out = run(&s, &jobs, policy);
    assert_eq!(out.waits, vec![wait]);
    assert_eq!(out.instance_secs, instance_secs);
    assert_eq!((out.actions, out.interrupted), actions_interrupted);
}

#[test]
fn renderfleet_on_a_tiny_trace() {
    let cfg = crate::policies::Options::default().renderfleet_config(&tiny().0);
    // Launches at the first tick, the job starts at 30 s and ends at 130 s; the worker is retired
    // at 180 s: idle a boot time (160 s), the 60 s window without need and the fleet idle 60 s
    // since the last busy tick (120 s).
    assert_tiny_run(&mut Renderfleet::new(cfg), 30.0, 180.0, (2, 0));
}

#[test]
fn gh_runner_on_a_tiny_trace() {
    // The scale-up message is visible at 30 s: launch, ready at 60 s. The scale-down at 300 s
    // finds it younger than the 300 s minimum (launched at 30 s); the one at 600 s removes it.
    assert_tiny_run(&mut GhRunner::new(20, 300_000), 60.0, 570.0, (2, 0));
}

#[test]
fn buildkite_on_a_tiny_trace() {
    let mut p = Buildkite::new(1, 20, ScaleIn::AgentIdle { after: 600_000 });
    // 0 s: desired 1. 10 s and 20 s: all booting, under half the agents online, one more each.
    // 30 s: the first is ready and busy, 1 of 3 online, one more. 40 s: 2 of 4, enough.
    // Each exits 600 s after it last worked: the first at 730 s, the others 600 s after ready.
    assert_tiny_run(&mut p, 30.0, 730.0 + 3.0 * 630.0, (8, 0));
}

#[test]
fn keda_on_a_tiny_trace() {
    // Activated at 0 s with one replica; the last poll seeing the job in flight is at 120 s, so
    // the cooldown ends after 420 s: the replica goes at the 450 s poll.
    assert_tiny_run(&mut Keda::new(1.0, 20, 0), 30.0, 450.0, (2, 0));
}

#[test]
fn target_tracking_on_a_tiny_trace() {
    let target = crate::policies::backlog_target(30.0, 100.0, 1);
    // The minimum of one warm instance takes the job at once and stays for the whole run.
    assert_tiny_run(
        &mut TargetTracking::new(target, 20, 60_000),
        0.0,
        1800.0,
        (0, 0),
    );
}

#[test]
fn oracle_on_a_tiny_trace() {
    let (s, jobs) = tiny();
    let o = crate::oracle::oracle(&jobs, s.slots, s.boot.min());
    assert_eq!(o.instance_secs, 130.0);
}

#[test]
fn slots_share_an_instance() {
    let mut s = setup(10.0);
    s.slots = 2;
    let mut p = script(true, &[(0.0, Step::Desired(1)), (100.0, Step::Desired(0))]);
    let out = run(
        &s,
        &[job(0.0, 50.0), job(0.0, 50.0), job(0.0, 50.0)],
        &mut p,
    );
    assert_eq!(out.waits, vec![10.0, 10.0, 60.0]);
}
