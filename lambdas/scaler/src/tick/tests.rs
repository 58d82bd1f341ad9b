//! The tick's orchestration on in-memory fakes: what it reads, what it calls, what it records.

use super::*;
use async_trait::async_trait;
use renderfleet_core::fakes::{
    FleetCall, MemoryFleet, MemoryHealth, MemoryMetrics, MemoryQueue, MemoryStatus, MemoryStore,
    MemoryTicks,
};
use renderfleet_core::ids::JobId;
use renderfleet_core::job::Job;
use renderfleet_core::ports::{AgentState, FleetInstance, HealthReporter, StatusBoard, WorkGate};
use renderfleet_core::spec::JobSpec;

struct World {
    deps: Deps,
    store: MemoryStore,
    fleet: MemoryFleet,
    health: MemoryHealth,
    metrics: MemoryMetrics,
    status: MemoryStatus,
    ticks: MemoryTicks,
}

fn world_with(fleet_port: Option<Arc<dyn Fleet>>) -> World {
    let store = MemoryStore::new();
    let fleet = MemoryFleet::new(0, 4);
    let health = MemoryHealth::new();
    let metrics = MemoryMetrics::new();
    let status = MemoryStatus::new();
    let ticks = MemoryTicks::new();
    let deps = Deps {
        work: Arc::new(store.clone()),
        ledger: Arc::new(store.clone()),
        queue: Arc::new(MemoryQueue::new()),
        fleet: fleet_port.unwrap_or_else(|| Arc::new(fleet.clone())),
        agents: Arc::new(health.clone()),
        retirement: Arc::new(health.clone()),
        status: Arc::new(status.clone()),
        memory: Arc::new(store.clone()),
        metrics: Arc::new(metrics.clone()),
        launcher: Arc::new(fleet.clone()),
        lease: Arc::new(store.clone()),
        next: Some(Arc::new(ticks.clone())),
        last_health: Default::default(),
    };
    World {
        deps,
        store,
        fleet,
        health,
        metrics,
        status,
        ticks,
    }
}

fn world() -> World {
    world_with(None)
}

fn cfg() -> Config {
    let mut c = Config::from_lookup(|k| (k == "RENDERFLEET_ENV").then(|| "test".into())).unwrap();
    c.policy.max_workers = 4;
    c.policy.default_boot_secs = 5.0;
    c.policy.target_wait_secs = 5.0;
    c.policy.scale_in_window_secs = 10.0;
    c.policy.idle_to_zero_secs = 10.0;
    c.policy.worker_idle_secs = Some(5.0);
    c.policy.min_billed_secs = 0.0;
    c
}

fn job(created: EpochMillis) -> Job {
    let spec = JobSpec::from_json(
        br##"{"output":{"width":1280,"height":720,"fps":30},"scenes":[{"duration":20,"background":{"color":"#000000"}}]}"##,
    )
    .unwrap();
    Job::new(JobId::generate(), "t", spec, created)
}

/// A job created at 0, running since 1 s on `instance` (its first attempt).
fn running_on(instance: &str) -> Job {
    let mut j = job(0);
    j.state = JobState::Running;
    j.started_at = Some(1_000);
    j.attempts = 1;
    j.instance_id = Some(instance.into());
    j
}

/// Puts the group at `desired` (bounds 0..=`max`) with `instances`.
fn set_fleet(w: &World, desired: u32, max: u32, instances: Vec<FleetInstance>) {
    w.fleet.set_state(FleetState {
        desired,
        max,
        instances,
        ..FleetState::default()
    });
}

fn instance(id: &str, protected: bool) -> FleetInstance {
    FleetInstance {
        id: id.into(),
        lifecycle: Lifecycle::InService,
        healthy: true,
        protected,
    }
}

async fn beat(w: &World, id: &str, started_at: EpochMillis, ts: EpochMillis, jobs: usize) {
    let hb = Heartbeat {
        state: if jobs > 0 {
            AgentState::Busy
        } else {
            AgentState::Idle
        },
        jobs: (0..jobs).map(|_| JobId::generate()).collect(),
        slots: 1,
        engine_ok: true,
        disk_free_bytes: 1 << 30,
        version: "test".into(),
        ts,
        started_at,
        idle_since: (jobs == 0).then_some(started_at),
        seconds_per_unit: None,
        reason: None,
        retiring: None,
        engaged: false,
    };
    w.health.report(id, &hb).await.unwrap();
}

#[tokio::test]
async fn scales_from_zero_on_the_first_tick_with_the_work_it_sees() {
    let w = world();
    for _ in 0..3 {
        w.store.put_job(job(1_000));
    }
    let r = tick(&w.deps, &cfg(), 2_000).await.unwrap();
    assert_eq!(r.decision.desired, 3, "{r:?}");
    assert_eq!(r.decision.oldest_wait_secs, 1.0);
    assert!(r.acted);
    assert_eq!(w.fleet.calls(), vec![FleetCall::SetDesired(3)]);
    // 20 s of 720p30 at the default 1 s per unit, plus the fixed half unit, per job.
    assert!((r.decision.backlog_secs - 3.0 * 20.5).abs() < 1e-6, "{r:?}");
    let names: Vec<String> = w.metrics.published().into_iter().map(|m| m.name).collect();
    for want in [
        "QueueVisible",
        "InFlight",
        "OldestWaitSeconds",
        "BacklogSeconds",
        "DesiredCapacity",
        "InServiceWorkers",
        "BootingWorkers",
        "BusyWorkers",
        "ScalingDecision",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    assert_eq!(w.store.decisions(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_doubled_tick_changes_nothing() {
    let w = world();
    w.store.put_job(job(1_000));
    tick(&w.deps, &cfg(), 2_000).await.unwrap();
    let r = tick(&w.deps, &cfg(), 2_000).await.unwrap();
    assert_eq!(r.decision.desired, 1);
    assert_eq!(w.fleet.calls(), vec![FleetCall::SetDesired(1)]);
}

#[tokio::test]
async fn measures_boot_time_from_first_sighting_to_agent_start() {
    let w = world();
    w.fleet.set_state(FleetState {
        desired: 1,
        max: 4,
        instances: vec![FleetInstance {
            lifecycle: Lifecycle::Pending,
            ..instance("i-1", false)
        }],
        ..FleetState::default()
    });
    let r = tick(&w.deps, &cfg(), 10_000).await.unwrap();
    assert_eq!(r.counts.booting, 1);
    set_fleet(&w, 1, 4, vec![instance("i-1", false)]);
    beat(&w, "i-1", 32_000, 33_000, 0).await;
    tick(&w.deps, &cfg(), 34_000).await.unwrap();
    let state: ScalerState =
        serde_json::from_str(&w.store.load_state().await.unwrap().unwrap()).unwrap();
    assert_eq!(state.boot_secs, Some(22.0));
    let r = tick(&w.deps, &cfg(), 35_000).await.unwrap();
    assert_eq!(r.decision.boot_secs, 22.0);
}

#[tokio::test]
async fn retires_idle_workers_and_never_a_busy_one() {
    let w = world();
    set_fleet(
        &w,
        2,
        4,
        vec![instance("i-busy", true), instance("i-idle", false)],
    );
    let running = {
        let mut j = job(0);
        j.state = JobState::Running;
        j.started_at = Some(1_000);
        j
    };
    w.store.put_job(running);
    beat(&w, "i-busy", 0, 59_000, 1).await;
    beat(&w, "i-idle", 0, 59_000, 0).await;
    let r = tick(&w.deps, &cfg(), 60_000).await.unwrap();
    assert_eq!(r.retired, vec!["i-idle".to_string()], "{r:?}");
    assert_eq!(
        w.fleet.calls(),
        vec![FleetCall::Terminate {
            instance: "i-idle".into(),
            decrement: true
        }]
    );
    assert_eq!(w.fleet.state().desired, 1);
}

/// A fleet whose chosen victim engages its work gate (it is about to claim a job) between the
/// tick's observation and its fresh look before retiring.
struct RacingFleet {
    inner: MemoryFleet,
    health: MemoryHealth,
    describes: std::sync::Mutex<u32>,
}

#[async_trait]
impl Fleet for RacingFleet {
    async fn describe(&self) -> renderfleet_core::Result<FleetState> {
        let n = {
            let mut n = self.describes.lock().unwrap();
            *n += 1;
            *n
        };
        if n > 1 {
            self.health.engage("i-1").await?;
        }
        self.inner.describe().await
    }
    async fn set_desired(&self, desired: u32) -> renderfleet_core::Result<()> {
        self.inner.set_desired(desired).await
    }
    async fn terminate(&self, id: &str, decrement: bool) -> renderfleet_core::Result<()> {
        self.inner.terminate(id, decrement).await
    }
}

#[tokio::test]
async fn a_worker_that_became_busy_since_the_observation_is_spared() {
    let inner = MemoryFleet::new(0, 4);
    inner.set_state(FleetState {
        desired: 1,
        max: 4,
        // Launched protected, as every worker is: protection decides nothing.
        instances: vec![instance("i-1", true)],
        ..FleetState::default()
    });
    let mut w = world();
    let racing = Arc::new(RacingFleet {
        inner: inner.clone(),
        health: w.health.clone(),
        describes: std::sync::Mutex::new(0),
    });
    w.deps.fleet = racing;
    beat(&w, "i-1", 0, 59_000, 0).await;
    let r = tick(&w.deps, &cfg(), 60_000).await.unwrap();
    assert_eq!(r.decision.retire, vec!["i-1".to_string()]);
    assert!(r.retired.is_empty(), "{r:?}");
    assert!(inner.calls().is_empty(), "{:?}", inner.calls());
    assert!(w.health.get("i-1").unwrap().retiring.is_none());
}

#[tokio::test]
async fn an_instance_whose_agent_never_reports_is_replaced() {
    let w = world();
    let mut c = cfg();
    c.boot_timeout = std::time::Duration::from_secs(30);
    set_fleet(&w, 1, 4, vec![instance("i-dead", false)]);
    let r = tick(&w.deps, &c, 1_000).await.unwrap();
    assert!(r.replaced.is_empty());
    let r = tick(&w.deps, &c, 40_000).await.unwrap();
    assert_eq!(r.replaced, vec!["i-dead".to_string()]);
    assert!(w.fleet.calls().contains(&FleetCall::Terminate {
        instance: "i-dead".into(),
        decrement: false
    }));
}

#[tokio::test]
async fn dry_run_decides_without_acting() {
    let w = world();
    w.store.put_job(job(0));
    let mut c = cfg();
    c.policy.dry_run = true;
    let r = tick(&w.deps, &c, 1_000).await.unwrap();
    assert_eq!((r.decision.desired, r.acted), (1, false));
    assert!(w.fleet.calls().is_empty());
}

#[tokio::test]
async fn a_launching_instance_gets_its_agent_started_and_the_fleet_re_plans() {
    let w = world();
    w.store.put_job(job(1_000));
    let ev = crate::event::LifecycleEvent {
        transition: "autoscaling:EC2_INSTANCE_LAUNCHING".into(),
        instance: "i-new".into(),
        hook: Some("rf-launch".into()),
        destination: Some("AutoScalingGroup".into()),
    };
    on_lifecycle(&w.deps, &cfg(), &ev).await;
    let r = tick(&w.deps, &cfg(), 2_000).await.unwrap();
    assert_eq!(r.decision.desired, 1);
    assert_eq!(
        w.fleet.calls(),
        vec![
            FleetCall::StartAgent {
                instance: "i-new".into()
            },
            FleetCall::SetDesired(1)
        ]
    );
    let term = crate::event::LifecycleEvent {
        transition: "autoscaling:EC2_INSTANCE_TERMINATING".into(),
        ..ev
    };
    on_lifecycle(&w.deps, &cfg(), &term).await;
    tick(&w.deps, &cfg(), 3_000).await.unwrap();
    assert!(
        !w.fleet
            .calls()
            .iter()
            .any(|c| matches!(c, FleetCall::CompleteLifecycle { .. })),
        "the draining agent completes the termination, not the scaler"
    );
}

/// A launcher that cannot reach the instance.
struct Unreachable;

#[async_trait]
impl AgentLauncher for Unreachable {
    async fn start_agent(&self, _: &str) -> renderfleet_core::Result<String> {
        Err(renderfleet_core::Error::Config(
            "no SSM agent on the instance".into(),
        ))
    }
}

#[tokio::test]
async fn a_launch_whose_agent_start_cannot_be_sent_is_left_to_the_agent_and_the_hook_timeout() {
    let mut w = world();
    w.deps.launcher = Arc::new(Unreachable);
    w.store.put_job(job(1_000));
    let ev = crate::event::LifecycleEvent {
        transition: "autoscaling:EC2_INSTANCE_LAUNCHING".into(),
        instance: "i-new".into(),
        hook: Some("rf-launch".into()),
        destination: None,
    };
    on_lifecycle(&w.deps, &cfg(), &ev).await;
    let r = tick(&w.deps, &cfg(), 2_000).await.unwrap();
    assert_eq!(r.decision.desired, 1, "the tick still runs");
    assert_eq!(
        w.fleet.calls(),
        vec![FleetCall::SetDesired(1)],
        "nothing abandoned"
    );
}

#[tokio::test]
async fn a_worker_gone_silent_is_replaced_and_its_job_requeued() {
    let w = world();
    set_fleet(&w, 1, 4, vec![instance("i-hung", true)]);
    let j = running_on("i-hung");
    let id = j.id.clone();
    w.store.put_job(j);
    beat(&w, "i-hung", 0, 2_000, 1).await;
    let r = tick(&w.deps, &cfg(), 10_000).await.unwrap();
    assert!(r.replaced.is_empty(), "a fresh heartbeat: {r:?}");
    // 45 s without a heartbeat (the default threshold) and it is replaced, busy or not.
    let r = tick(&w.deps, &cfg(), 48_000).await.unwrap();
    assert_eq!(r.replaced, vec!["i-hung".to_string()]);
    assert!(w.fleet.calls().contains(&FleetCall::Terminate {
        instance: "i-hung".into(),
        decrement: false
    }));
    let job = w.store.jobs().into_iter().find(|j| j.id == id).unwrap();
    assert_eq!(job.state, JobState::Queued, "{job:?}");
}

async fn unhealthy_beat(w: &World, id: &str, ts: EpochMillis) {
    beat(w, id, 0, ts, 0).await;
    let mut hb = w.health.get(id).unwrap();
    hb.state = AgentState::Unhealthy;
    w.health.report(id, &hb).await.unwrap();
}

#[tokio::test]
async fn an_agent_unhealthy_past_its_grace_is_replaced() {
    let w = world();
    set_fleet(&w, 1, 4, vec![instance("i-sick", false)]);
    unhealthy_beat(&w, "i-sick", 1_000).await;
    let r = tick(&w.deps, &cfg(), 1_000).await.unwrap();
    assert!(r.replaced.is_empty(), "within the grace: {r:?}");
    unhealthy_beat(&w, "i-sick", 130_000).await;
    let r = tick(&w.deps, &cfg(), 130_000).await.unwrap();
    assert_eq!(r.replaced, vec!["i-sick".to_string()]);
}

#[tokio::test]
async fn a_failed_health_read_terminates_nobody_and_says_so() {
    let w = world();
    let mut c = cfg();
    c.boot_timeout = std::time::Duration::from_secs(30);
    set_fleet(
        &w,
        2,
        4,
        vec![instance("i-quiet", false), instance("i-idle", false)],
    );
    beat(&w, "i-quiet", 0, 1_000, 0).await;
    beat(&w, "i-idle", 0, 1_000, 0).await;
    let r = tick(&w.deps, &c, 2_000).await.unwrap();
    assert_eq!(r.health.source, HealthSource::Fresh);
    w.fleet.clear_calls();
    // The store throttles from now on; by the clock both heartbeats are long stale and both
    // workers long idle, yet nothing may be replaced or retired on a view this old.
    w.health.set_failing(true);
    let r = tick(&w.deps, &c, 120_000).await.unwrap();
    assert_eq!(r.health.source, HealthSource::LastGood, "{:?}", r.health);
    assert!((r.health.age_secs - 118.0).abs() < 1e-9);
    assert!(r.health.error.as_deref().unwrap().contains("Throttling"));
    assert!(r.replaced.is_empty() && r.retired.is_empty(), "{r:?}");
    assert!(
        !w.fleet
            .calls()
            .iter()
            .any(|c| matches!(c, FleetCall::Terminate { .. })),
        "{:?}",
        w.fleet.calls()
    );
    // A process that never read the store (a cold Lambda) has no view at all: still nobody.
    let cold = world();
    cold.fleet.set_state(w.fleet.state());
    cold.health.set_failing(true);
    let r = tick(&cold.deps, &c, 120_000).await.unwrap();
    assert_eq!(r.health.source, HealthSource::None);
    assert!(r.replaced.is_empty() && r.retired.is_empty(), "{r:?}");
    assert_eq!(r.observation.workers, 2, "the instances still count: {r:?}");
}

#[tokio::test]
async fn a_silent_worker_whose_job_lease_is_alive_is_not_replaced() {
    let w = world();
    set_fleet(&w, 1, 4, vec![instance("i-slow", true)]);
    let mut j = running_on("i-slow");
    j.lease_until = Some(100_000);
    w.store.put_job(j);
    beat(&w, "i-slow", 0, 2_000, 1).await;
    let r = tick(&w.deps, &cfg(), 60_000).await.unwrap();
    assert!(r.replaced.is_empty(), "{r:?}");
    assert_eq!((r.health.stale, r.health.leased), (0, 1));
    // Once the lease lapses too, it is.
    let r = tick(&w.deps, &cfg(), 101_000).await.unwrap();
    assert_eq!(r.replaced, vec!["i-slow".to_string()]);
}

#[tokio::test]
async fn when_most_of_the_fleet_looks_dead_at_once_nobody_is_replaced() {
    let w = world();
    let ids = ["i-1", "i-2", "i-3", "i-4"];
    set_fleet(&w, 4, 4, ids.iter().map(|i| instance(i, true)).collect());
    for id in ids {
        beat(&w, id, 0, 1_000, 1).await;
    }
    let r = tick(&w.deps, &cfg(), 60_000).await.unwrap();
    assert!(r.health.breaker, "{:?}", r.health);
    assert_eq!(r.health.stale, 4);
    assert!(r.replaced.is_empty());
    // One dead worker in four is believed.
    for id in &ids[1..] {
        beat(&w, id, 0, 59_000, 1).await;
    }
    let r = tick(&w.deps, &cfg(), 60_000).await.unwrap();
    assert!(!r.health.breaker);
    assert_eq!(r.replaced, vec!["i-1".to_string()]);
}

#[tokio::test]
async fn an_engaged_worker_is_busy_and_a_marked_one_takes_no_work() {
    let w = world();
    set_fleet(&w, 1, 4, vec![instance("i-1", true)]);
    beat(&w, "i-1", 0, 59_000, 0).await;
    // Its gate is engaged (between two jobs of a backlog, or about to claim): busy, whatever
    // its heartbeat's job list says.
    assert!(w.health.engage("i-1").await.unwrap());
    let r = tick(&w.deps, &cfg(), 60_000).await.unwrap();
    assert!(r.decision.retire.is_empty(), "{r:?}");
    assert_eq!(r.counts.busy, 1);
    assert!(
        w.fleet
            .calls()
            .iter()
            .all(|c| !matches!(c, FleetCall::Terminate { .. }))
    );
    // Disengaged, once the fleet has been idle its window, it is marked and retired, and its own
    // gate then refuses work.
    w.health.disengage("i-1").await.unwrap();
    beat(&w, "i-1", 0, 79_000, 0).await;
    let r = tick(&w.deps, &cfg(), 80_000).await.unwrap();
    assert_eq!(r.retired, vec!["i-1".to_string()]);
    assert!(!w.health.engage("i-1").await.unwrap());
}

#[tokio::test]
async fn a_retiring_worker_is_not_capacity_and_its_termination_is_retried() {
    let w = world();
    set_fleet(&w, 1, 4, vec![instance("i-1", false)]);
    beat(&w, "i-1", 0, 9_000, 0).await;
    assert!(
        w.deps
            .retirement
            .mark_retiring("i-1", 10_000)
            .await
            .unwrap()
    );
    let r = tick(&w.deps, &cfg(), 20_000).await.unwrap();
    assert_eq!((r.observation.workers, r.counts.retiring), (0, 0));
    assert!(
        w.fleet
            .calls()
            .iter()
            .all(|c| !matches!(c, FleetCall::Terminate { .. }))
    );
    // Still in service a minute after the mark: the termination failed; it is sent again.
    beat(&w, "i-1", 0, 79_000, 0).await;
    let r = tick(&w.deps, &cfg(), 80_000).await.unwrap();
    assert_eq!(r.counts.retiring, 1);
    assert!(w.fleet.calls().contains(&FleetCall::Terminate {
        instance: "i-1".into(),
        decrement: true
    }));
}

#[tokio::test]
async fn desired_capacity_stays_within_the_groups_own_bounds() {
    let w = world();
    // The policy allows 4; an operator lowered the group's maximum to 2.
    w.fleet.set_state(FleetState {
        desired: 0,
        max: 2,
        ..FleetState::default()
    });
    for _ in 0..4 {
        w.store.put_job(job(1_000));
    }
    let r = tick(&w.deps, &cfg(), 2_000).await.unwrap();
    assert_eq!(r.decision.desired, 2);
    assert_eq!(w.fleet.calls(), vec![FleetCall::SetDesired(2)]);
}

fn status(since: EpochMillis) -> renderfleet_core::ports::AgentStatus {
    renderfleet_core::ports::AgentStatus {
        state: renderfleet_core::ports::StatusState::Ready,
        reason: None,
        since,
        version: "test".into(),
    }
}

#[tokio::test]
async fn departed_and_orphaned_status_parameters_are_deleted() {
    let w = world();
    set_fleet(&w, 1, 4, vec![instance("i-gone", false)]);
    w.status.publish("i-gone", &status(0)).await.unwrap();
    w.status.publish("i-orphan", &status(0)).await.unwrap();
    w.status.publish("i-live", &status(0)).await.unwrap();
    tick(&w.deps, &cfg(), 1_000).await.unwrap();
    assert_eq!(w.status.instances().len(), 3, "no sweep before the hour");
    set_fleet(&w, 1, 4, vec![instance("i-live", false)]);
    tick(&w.deps, &cfg(), 2_000).await.unwrap();
    assert_eq!(w.status.instances(), vec!["i-live", "i-orphan"]);
    // The hourly sweep finds the parameter of an instance the scaler never saw leave.
    beat(&w, "i-live", 0, 3_699_000, 1).await;
    tick(&w.deps, &cfg(), 3_700_000).await.unwrap();
    beat(&w, "i-live", 0, 3_709_000, 1).await;
    tick(&w.deps, &cfg(), 3_710_000).await.unwrap();
    assert_eq!(w.status.instances(), vec!["i-live"]);
}

#[tokio::test]
async fn a_decision_record_stays_small_with_a_huge_backlog() {
    let w = world();
    for _ in 0..20_000 {
        w.store.put_job(job(1_000));
    }
    tick(&w.deps, &cfg(), 2_000).await.unwrap();
    let (_, record) = w.store.decisions(1).await.unwrap().remove(0);
    assert!(record.len() < 8_000, "{} bytes", record.len());
    let v: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(v["observation"]["waiting"], 20_000);
}

#[tokio::test]
async fn scheduled_slots_tick_once_and_chain_the_next() {
    let w = world();
    let c = cfg();
    let clock = || 50_100;
    let r = crate::run_slot(&w.deps, &c, Some(5), "a", &clock)
        .await
        .unwrap();
    assert!(matches!(r, crate::Ran::Ticked(_)), "{r:?}");
    assert_eq!(
        w.ticks.scheduled(),
        vec![(Some(6), std::time::Duration::from_millis(9_900))]
    );
    // The minute schedule's (or a redelivered) copy of the same slot is dropped, and so is a
    // slot already past (it counts as the current one).
    let r = crate::run_slot(&w.deps, &c, Some(5), "b", &clock)
        .await
        .unwrap();
    assert!(matches!(r, crate::Ran::Duplicate), "{r:?}");
    let r = crate::run_slot(&w.deps, &c, Some(2), "b", &clock)
        .await
        .unwrap();
    assert!(matches!(r, crate::Ran::Duplicate), "{r:?}");
    assert_eq!(w.ticks.scheduled().len(), 1);
    // While another tick holds the lease, a slot waits for it; an extra tick just yields.
    let held = w
        .deps
        .lease
        .acquire("other", None, 61_000, 63_000)
        .await
        .unwrap();
    assert_eq!(held, renderfleet_core::ports::LeaseOutcome::Acquired);
    let later = || 61_000;
    let r = crate::run_slot(&w.deps, &c, Some(6), "b", &later)
        .await
        .unwrap();
    assert!(matches!(r, crate::Ran::Busy), "{r:?}");
    assert_eq!(
        w.ticks.scheduled()[1],
        (Some(6), std::time::Duration::from_millis(2_000))
    );
    let r = crate::run_slot(&w.deps, &c, None, "b", &later)
        .await
        .unwrap();
    assert!(matches!(r, crate::Ran::Busy));
    assert_eq!(w.ticks.scheduled().len(), 2);
    assert_eq!(
        w.store.decisions(10).await.unwrap().len(),
        1,
        "one tick ran in all"
    );
}
