//! Table tests in the style of the peers' suites (one row per situation, the expected count and
//! reason), and properties that must hold for any input.

use proptest::prelude::*;

use super::*;

fn cfg() -> PolicyConfig {
    PolicyConfig {
        max_workers: 10,
        slots_per_worker: 1,
        target_wait_secs: 30.0,
        default_boot_secs: 30.0,
        tick_secs: 10.0,
        scale_in_window_secs: 60.0,
        idle_to_zero_secs: 60.0,
        min_billed_secs: 60.0,
        ..PolicyConfig::default()
    }
}

fn waiting(ages: &[f64], est: f64) -> Vec<Waiting> {
    ages.iter()
        .map(|a| Waiting {
            age_secs: *a,
            est_secs: est,
        })
        .collect()
}

fn running(remaining: &[f64]) -> Vec<Running> {
    remaining
        .iter()
        .map(|r| Running { remaining_secs: *r })
        .collect()
}

fn busy(id: &str) -> Worker {
    Worker {
        id: id.into(),
        jobs: 1,
        protected: true,
        idle_secs: None,
        age_secs: 600.0,
    }
}

fn idle(id: &str, idle_secs: f64) -> Worker {
    Worker {
        id: id.into(),
        jobs: 0,
        protected: false,
        idle_secs: Some(idle_secs),
        age_secs: 600.0,
    }
}

/// `i-1` to `i-n`, each idle for `idle_secs`.
fn idle_workers(n: usize, idle_secs: f64) -> Vec<Worker> {
    (1..=n)
        .map(|i| idle(&format!("i-{i}"), idle_secs))
        .collect()
}

/// Jobs waiting for an empty fleet.
fn queued(ages: &[f64], est: f64) -> Observation {
    Observation {
        waiting: waiting(ages, est),
        ..Default::default()
    }
}

/// `workers` in service (the group's desired capacity is their number) rendering jobs that end
/// in `remaining` seconds.
fn serving(workers: Vec<Worker>, remaining: &[f64]) -> Observation {
    Observation {
        current_desired: workers.len() as u32,
        workers,
        running: running(remaining),
        ..Default::default()
    }
}

struct Row {
    name: &'static str,
    obs: Observation,
    cfg: PolicyConfig,
    history: History,
    want_desired: u32,
    want_retire: usize,
    want_reason: Reason,
}

fn row(
    name: &'static str,
    obs: Observation,
    want_desired: u32,
    want_retire: usize,
    want_reason: Reason,
) -> Row {
    Row {
        name,
        obs,
        cfg: cfg(),
        history: History::default(),
        want_desired,
        want_retire,
        want_reason,
    }
}

impl Row {
    fn with_cfg(self, cfg: PolicyConfig) -> Row {
        Row { cfg, ..self }
    }

    fn after(self, history: History) -> Row {
        Row { history, ..self }
    }
}

#[test]
fn decisions_table() {
    let long_ago = History {
        last_busy_at: Some(0),
        ..History::default()
    };
    let rows = vec![
        row(
            "empty fleet, no work: nothing",
            Observation::default(),
            0,
            0,
            Reason::Hold,
        ),
        row(
            "scales from zero on the first job",
            queued(&[0.0], 20.0),
            1,
            0,
            Reason::ScaleOut,
        ),
        row(
            "a burst from zero gets a worker per job, capped at max",
            queued(&[0.0; 14], 60.0),
            10,
            0,
            Reason::ScaleOut,
        ),
        row(
            "short jobs queue behind one worker when that meets the target",
            queued(&[0.0, 0.0, 0.0], 5.0),
            1,
            0,
            Reason::ScaleOut,
        )
        .with_cfg(PolicyConfig {
            target_wait_secs: 60.0,
            ..cfg()
        }),
        row(
            "short jobs each get a worker when queueing behind one would miss the target",
            queued(&[0.0, 0.0, 0.0], 5.0),
            3,
            0,
            Reason::ScaleOut,
        ),
        row(
            "waits for a slot freeing sooner than a boot instead of launching",
            Observation {
                waiting: waiting(&[25.0], 30.0),
                ..serving(vec![busy("i-1")], &[3.0])
            },
            1,
            0,
            Reason::Hold,
        ),
        row(
            "launches when the earliest slot is later than a boot and the job would miss the target",
            Observation {
                waiting: waiting(&[10.0], 30.0),
                ..serving(vec![busy("i-1")], &[300.0])
            },
            2,
            0,
            Reason::ScaleOut,
        ),
        row(
            "counts booting workers before launching more",
            Observation {
                waiting: waiting(&[5.0, 5.0], 30.0),
                booting: ["i-2", "i-3"]
                    .map(|id| Booting {
                        id: id.into(),
                        age_secs: 10.0,
                    })
                    .into(),
                current_desired: 2,
                ..Default::default()
            },
            2,
            0,
            Reason::Hold,
        ),
        row(
            "capacity asked for but not yet visible counts as booting",
            Observation {
                current_desired: 1,
                ..queued(&[2.0], 30.0)
            },
            1,
            0,
            Reason::Hold,
        ),
        row(
            "retires idle workers longest idle first down to the busy ones",
            serving(
                vec![busy("i-1"), idle("i-2", 100.0), idle("i-3", 500.0)],
                &[30.0],
            ),
            1,
            2,
            Reason::ScaleIn,
        ),
        row(
            "keeps an idle worker younger than the billing minimum",
            serving(
                vec![
                    busy("i-1"),
                    Worker {
                        age_secs: 40.0,
                        ..idle("i-2", 35.0)
                    },
                ],
                &[30.0],
            ),
            2,
            0,
            Reason::Hold,
        ),
        row(
            "keeps an idle worker until it has been idle a boot time",
            serving(vec![busy("i-1"), idle("i-2", 10.0)], &[30.0]),
            2,
            0,
            Reason::Hold,
        ),
        row(
            "never retires while a job waits",
            Observation {
                waiting: waiting(&[1.0], 10.0),
                ..serving(idle_workers(2, 500.0), &[])
            },
            2,
            0,
            Reason::Hold,
        ),
        row(
            "brings a desired capacity above max back within bounds",
            Observation {
                current_desired: 14,
                ..serving(vec![busy("i-1")], &[9.0])
            },
            10,
            0,
            Reason::Bounds,
        ),
        row(
            "goes to zero once the fleet was idle for the idle window",
            serving(idle_workers(1, 120.0), &[]),
            0,
            1,
            Reason::ToZero,
        )
        .after(long_ago.clone()),
        row(
            "keeps the last worker through the idle window",
            serving(idle_workers(1, 40.0), &[]),
            1,
            0,
            Reason::Hold,
        )
        .after(History {
            last_busy_at: Some(100_000),
            ..History::default()
        }),
        row(
            "holds min_workers even when idle",
            serving(idle_workers(3, 900.0), &[]),
            2,
            1,
            Reason::ScaleIn,
        )
        .with_cfg(PolicyConfig {
            min_workers: 2,
            ..cfg()
        })
        .after(long_ago.clone()),
        row(
            "launches at most max_step_up at once",
            queued(&[0.0; 8], 60.0),
            3,
            0,
            Reason::ScaleOut,
        )
        .with_cfg(PolicyConfig {
            max_step_up: 3,
            ..cfg()
        }),
        row(
            "retires at most max_step_down at once",
            serving(idle_workers(3, 900.0), &[]),
            2,
            1,
            Reason::ScaleIn,
        )
        .with_cfg(PolicyConfig {
            max_step_down: 1,
            ..cfg()
        })
        .after(long_ago.clone()),
        row(
            "packs jobs into slots",
            queued(&[0.0; 9], 60.0),
            3,
            0,
            Reason::ScaleOut,
        )
        .with_cfg(PolicyConfig {
            slots_per_worker: 4,
            ..cfg()
        }),
        row(
            "the stabilisation window holds capacity a recent need asked for",
            serving(idle_workers(3, 900.0), &[]),
            3,
            0,
            Reason::Hold,
        )
        .after(History {
            needs: vec![(95_000, 3)],
            last_busy_at: Some(99_000),
            ..History::default()
        }),
    ];
    for r in rows {
        let d = decide(&r.obs, &r.cfg, &r.history, 100_000);
        assert_eq!(
            (d.desired, d.retire.len(), d.reason),
            (r.want_desired, r.want_retire, r.want_reason),
            "{}: {d:?}",
            r.name
        );
    }
}

#[test]
fn victims_are_the_longest_idle() {
    let obs = serving(
        vec![
            idle("i-a", 100.0),
            idle("i-b", 900.0),
            idle("i-c", 400.0),
            busy("i-d"),
        ],
        &[10.0],
    );
    let d = decide(
        &obs,
        &PolicyConfig {
            max_step_down: 2,
            ..cfg()
        },
        &History::default(),
        1_000_000,
    );
    assert_eq!(d.retire, vec!["i-b".to_owned(), "i-c".to_owned()]);
    assert_eq!(d.desired, 2);
}

#[test]
fn the_measured_boot_time_is_used() {
    // With a 5 s boot, waiting 20 s for a slot misses the 10 s target and a launch is faster.
    let obs = Observation {
        waiting: waiting(&[0.0], 10.0),
        boot_secs: Some(5.0),
        ..serving(vec![busy("i-1")], &[20.0])
    };
    let c = PolicyConfig {
        target_wait_secs: 10.0,
        ..cfg()
    };
    assert_eq!(decide(&obs, &c, &History::default(), 0).desired, 2);
    // With a 60 s boot, waiting 20 s for the slot is better.
    let slow = Observation {
        boot_secs: Some(60.0),
        ..obs
    };
    assert_eq!(decide(&slow, &c, &History::default(), 0).desired, 1);
}

#[test]
fn a_job_waiting_longer_than_a_launch_takes_gets_a_worker() {
    // Estimates said a slot frees now, but the job has waited past target + boot: launch.
    let obs = Observation {
        waiting: waiting(&[90.0], 10.0),
        ..serving(vec![busy("i-1")], &[0.0])
    };
    assert_eq!(decide(&obs, &cfg(), &History::default(), 0).desired, 2);
}

#[test]
fn dry_run_still_decides() {
    let d = decide(
        &queued(&[0.0], 20.0),
        &PolicyConfig {
            dry_run: true,
            ..cfg()
        },
        &History::default(),
        0,
    );
    assert!(d.dry_run);
    assert_eq!(d.desired, 1);
}

#[test]
fn config_errors_name_the_setting() {
    let e = PolicyConfig {
        min_workers: 3,
        max_workers: 2,
        ..cfg()
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("max_workers"), "{e}");
    let e = PolicyConfig {
        target_wait_secs: -1.0,
        ..cfg()
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("target_wait_secs"), "{e}");
    assert!(serde_json::from_str::<PolicyConfig>(r#"{"max_workerz": 3}"#).is_err());
    let parsed: PolicyConfig = serde_json::from_str(r#"{"max_workers": 3}"#).unwrap();
    assert_eq!((parsed.max_workers, parsed.slots_per_worker), (3, 1));
}

fn arb_obs() -> impl Strategy<Value = Observation> {
    let waiting = prop::collection::vec((0.0..600.0f64, 0.0..900.0f64), 0..40).prop_map(|v| {
        v.into_iter()
            .map(|(a, e)| Waiting {
                age_secs: a,
                est_secs: e,
            })
            .collect()
    });
    let running = prop::collection::vec(0.0..900.0f64, 0..20).prop_map(|v| {
        v.into_iter()
            .map(|r| Running { remaining_secs: r })
            .collect()
    });
    let workers = prop::collection::vec(
        (
            0u32..3,
            any::<bool>(),
            prop::option::of(0.0..2000.0f64),
            0.0..3000.0f64,
        ),
        0..25,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (jobs, protected, idle, age))| Worker {
                id: format!("i-{i:03}"),
                jobs,
                protected,
                idle_secs: if jobs == 0 { idle } else { None },
                age_secs: age,
            })
            .collect()
    });
    let booting = prop::collection::vec(0.0..200.0f64, 0..5).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, a)| Booting {
                id: format!("b-{i}"),
                age_secs: a,
            })
            .collect()
    });
    (
        waiting,
        running,
        workers,
        booting,
        0u32..40,
        prop::option::of(0.0..300.0f64),
    )
        .prop_map(
            |(waiting, running, workers, booting, current_desired, boot_secs)| Observation {
                waiting,
                running,
                workers,
                booting,
                current_desired,
                boot_secs,
            },
        )
}

fn arb_cfg() -> impl Strategy<Value = PolicyConfig> {
    (
        0u32..4,
        0u32..30,
        1u32..5,
        0.0..120.0f64,
        1u32..60,
        1u32..20,
        0.0..300.0f64,
    )
        .prop_map(
            |(min, extra, slots, target, up, down, window)| PolicyConfig {
                min_workers: min,
                max_workers: min + extra,
                slots_per_worker: slots,
                target_wait_secs: target,
                max_step_up: up,
                max_step_down: down,
                scale_in_window_secs: window,
                ..PolicyConfig::default()
            },
        )
}

fn arb_history() -> impl Strategy<Value = History> {
    (
        prop::collection::vec((0i64..1_000_000, 0u32..40), 0..10),
        prop::option::of(0i64..1_000_000),
    )
        .prop_map(|(needs, last_busy_at)| History {
            needs,
            last_busy_at,
            ..History::default()
        })
}

proptest! {
    #[test]
    fn never_outside_min_and_max(obs in arb_obs(), cfg in arb_cfg(), h in arb_history(), now in 0i64..2_000_000) {
        let d = decide(&obs, &cfg, &h, now);
        prop_assert!(d.desired >= cfg.min_workers.min(cfg.max_workers.max(obs.busy_workers())));
        prop_assert!(d.desired <= cfg.max_workers.max(obs.busy_workers()), "{d:?}");
        if obs.busy_workers() <= cfg.max_workers {
            prop_assert!(d.desired <= cfg.max_workers);
            prop_assert!(d.desired >= cfg.min_workers);
        }
    }

    #[test]
    fn never_below_busy_workers_and_never_retires_a_busy_one(obs in arb_obs(), cfg in arb_cfg(), h in arb_history(), now in 0i64..2_000_000) {
        let d = decide(&obs, &cfg, &h, now);
        prop_assert!(d.desired >= obs.busy_workers());
        for id in &d.retire {
            let w = obs.workers.iter().find(|w| &w.id == id).expect("victims are workers");
            prop_assert!(w.jobs == 0 && !w.protected, "retired a busy worker: {w:?}");
        }
    }

    #[test]
    fn never_scales_in_while_the_slo_is_missed(obs in arb_obs(), cfg in arb_cfg(), h in arb_history(), now in 0i64..2_000_000) {
        let d = decide(&obs, &cfg, &h, now);
        let missed = obs.waiting.iter().any(|w| w.age_secs > cfg.target_wait_secs);
        if missed || !obs.waiting.is_empty() {
            prop_assert!(d.retire.is_empty(), "{d:?}");
            let capacity = obs.instances() + obs.current_desired.saturating_sub(obs.instances());
            prop_assert!(d.desired >= capacity.min(cfg.max_workers.max(obs.busy_workers())), "{d:?}");
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_decision(obs in arb_obs(), cfg in arb_cfg(), h in arb_history(), now in 0i64..2_000_000) {
        let a = decide(&obs, &cfg, &h, now);
        let mut shuffled = obs.clone();
        shuffled.waiting.reverse();
        shuffled.running.reverse();
        let b = decide(&obs, &cfg, &h, now);
        let c = decide(&shuffled, &cfg, &h, now);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!((a.desired, a.launched), (c.desired, c.launched), "input order does not matter");
    }
}

#[test]
fn the_boot_estimate_starts_at_the_first_measurement_and_then_moves_by_a_weighted_step() {
    assert_eq!(smoothed_boot_secs(None, 40.0), 40.0);
    // 30 + 0.3 * (50 - 30)
    assert!((smoothed_boot_secs(Some(30.0), 50.0) - 36.0).abs() < 1e-9);
    // One outlier moves it less than a third of the way; repeated samples converge on them.
    let mut b = smoothed_boot_secs(Some(30.0), 300.0);
    assert!(b < 30.0 + (300.0 - 30.0) / 3.0);
    for _ in 0..40 {
        b = smoothed_boot_secs(Some(b), 45.0);
    }
    assert!((b - 45.0).abs() < 0.01);
}
