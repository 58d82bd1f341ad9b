//! One tick: observe, decide, act, record.
//!
//! Observe: active jobs from the jobs table (their expected work and ages: SQS has neither), the
//! queue's counters, the group's instances and protection, and the agents' liveness items (one
//! query). Decide: [`scaling_policy::decide`]. Act: replace workers whose agent went silent,
//! retire the idle workers the policy chose (each one marked in its liveness item first, so an
//! agent about to claim a job and the scaler cannot both win), or set the absolute desired
//! capacity. Record: one structured log event, the decision history (aggregates only, so a record
//! stays far below DynamoDB's 400 KB item limit at any backlog), the metrics.
//!
//! A failed read of the liveness items never terminates anything: the tick falls back to the last
//! view it read (or to none), replaces nobody, retires nobody, and says so in its report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use renderfleet_core::clock::EpochMillis;
use renderfleet_core::events;
use renderfleet_core::job::{ActiveJob, JobState};
use renderfleet_core::ports::{
    ActiveWork, AgentDirectory, AgentLauncher, AgentState, Fleet, FleetState, Heartbeat, JobLedger,
    Lifecycle, MetricDatum, MetricUnit, MetricsSink, QueueCounters, QueueDepth, Retirement,
    ScalerMemory, StatusCleanup, TickLease, TickQueue,
};
use scaling_policy::{
    Action, Booting, Decision, History, Observation, Running, Waiting, Worker, actions, decide,
    smoothed_boot_secs,
};
use serde::{Deserialize, Serialize};

use crate::Config;
use crate::error::{Error, Result};

/// The last liveness view read successfully, kept between ticks of one process (a warm Lambda
/// or the local loop), with when it was read.
pub type LastHealth = Arc<Mutex<Option<(EpochMillis, BTreeMap<String, Heartbeat>)>>>;

/// What a tick talks to.
#[derive(Clone)]
pub struct Deps {
    pub work: Arc<dyn ActiveWork>,
    /// To hand the jobs of a replaced worker back to the queue.
    pub ledger: Arc<dyn JobLedger>,
    pub queue: Arc<dyn QueueDepth>,
    pub fleet: Arc<dyn Fleet>,
    pub agents: Arc<dyn AgentDirectory>,
    /// The scaler's side of the work gate: a worker is retired only once marked.
    pub retirement: Arc<dyn Retirement>,
    /// The agents' status board, cleaned of instances that left.
    pub status: Arc<dyn StatusCleanup>,
    pub memory: Arc<dyn ScalerMemory>,
    pub metrics: Arc<dyn MetricsSink>,
    pub launcher: Arc<dyn AgentLauncher>,
    /// One tick at a time, each scheduled slot once.
    pub lease: Arc<dyn TickLease>,
    /// Where the next scheduled tick is asked for (the tick queue on AWS); `None` when something
    /// else keeps the schedule (the local loop).
    pub next: Option<Arc<dyn TickQueue>>,
    pub last_health: LastHealth,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deps")
    }
}

/// What the scaler remembers between ticks, stored as JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScalerState {
    /// The policy's own history.
    pub history: History,
    /// Instances the scaler has seen, by id.
    pub instances: BTreeMap<String, Seen>,
    /// Measured seconds from an instance's first sighting to its agent's start, smoothed.
    pub boot_secs: Option<f64>,
    /// Instances that left the group whose status parameter is still to be deleted.
    pub status_cleanup: Vec<String>,
    /// The sweep of the status board for parameters of instances the scaler never saw leave.
    pub sweep: Sweep,
}

/// Progress of the hourly sweep of the status board, one page a tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sweep {
    /// When the current (or last) sweep started.
    pub started_at: EpochMillis,
    /// The next page, while a sweep is in progress.
    pub cursor: Option<String>,
    pub in_progress: bool,
}

/// How often the status board is swept for orphans.
const SWEEP_EVERY_MS: EpochMillis = 3_600_000;
/// Status parameters deleted per tick at most (five DeleteParameters calls).
const CLEANUP_PER_TICK: usize = 50;

/// One instance as the scaler knows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// When the scaler first saw it in the group.
    pub first_seen: EpochMillis,
    /// Whether its boot time has been measured.
    pub measured: bool,
}

/// What a tick saw beyond the policy's observation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub queue: QueueCounters,
    pub in_service: u32,
    pub booting: u32,
    pub busy: u32,
    /// Workers being retired (marked, termination under way).
    pub retiring: u32,
    /// Render seconds per work unit used for the estimates.
    pub seconds_per_unit: f64,
}

/// Where the tick's view of the agents' liveness came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthSource {
    /// Read this tick.
    #[default]
    Fresh,
    /// The read failed; the last good view was used (nobody replaced or retired).
    LastGood,
    /// The read failed and there was no earlier view (nobody replaced or retired).
    None,
}

/// How the tick judged the agents' health.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HealthReport {
    pub source: HealthSource,
    /// Age of the view used, seconds.
    pub age_secs: f64,
    /// Why the read failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Workers found silent or unhealthy this tick.
    pub stale: u32,
    /// Silent workers spared because they still renew a job's lease.
    pub leased: u32,
    /// Whether replacement was held back because too many workers looked dead at once (a
    /// failure of the health path itself is more likely than of half the fleet).
    pub breaker: bool,
}

/// The observation as aggregates: what the decision history keeps.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ObservationSummary {
    pub waiting: u32,
    pub waiting_est_secs: f64,
    pub running: u32,
    pub running_remaining_secs: f64,
    pub workers: u32,
    pub idle_workers: u32,
    pub booting: u32,
    pub current_desired: u32,
    pub boot_secs: Option<f64>,
}

impl From<&Observation> for ObservationSummary {
    fn from(o: &Observation) -> Self {
        Self {
            waiting: o.waiting.len() as u32,
            waiting_est_secs: o.waiting.iter().map(|w| w.est_secs).sum(),
            running: o.running.len() as u32,
            running_remaining_secs: o.running.iter().map(|r| r.remaining_secs).sum(),
            workers: o.workers.len() as u32,
            idle_workers: o
                .workers
                .iter()
                .filter(|w| w.jobs == 0 && !w.protected)
                .count() as u32,
            booting: o.booting.len() as u32,
            current_desired: o.current_desired,
            boot_secs: o.boot_secs,
        }
    }
}

/// Everything a tick saw and did: logged as one event and kept in the decision history.
#[derive(Clone, Debug, Serialize)]
pub struct TickReport {
    pub at: EpochMillis,
    pub observation: ObservationSummary,
    pub counts: Counts,
    pub health: HealthReport,
    pub decision: Decision,
    /// Whether the group was changed (desired capacity set, or workers retired).
    pub acted: bool,
    /// Workers actually retired (a chosen one that became busy meanwhile is spared).
    pub retired: Vec<String>,
    /// Instances replaced because their agent never reported or stopped reporting.
    pub replaced: Vec<String>,
    pub dry_run: bool,
    /// Milliseconds from the tick's first read to its last action (recording excluded).
    pub took_ms: u64,
}

/// The agents' liveness as this tick sees it.
struct HealthView {
    beats: BTreeMap<String, Heartbeat>,
    report: HealthReport,
}

impl HealthView {
    /// Whether the view was read this tick: only then may it condemn a worker.
    fn trusted(&self) -> bool {
        self.report.source == HealthSource::Fresh
    }
}

async fn observe_health(deps: &Deps, now: EpochMillis) -> HealthView {
    match deps.agents.heartbeats().await {
        Ok(beats) => {
            let beats: BTreeMap<String, Heartbeat> = beats.into_iter().collect();
            *deps.last_health.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((now, beats.clone()));
            HealthView {
                beats,
                report: HealthReport::default(),
            }
        }
        Err(e) => {
            let last = deps
                .last_health
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            tracing::warn!(
                error = %e,
                fallback = if last.is_some() { "last good view" } else { "none" },
                "cannot read the agents' liveness; replacing and retiring nobody this tick"
            );
            let (source, at, beats) = match last {
                Some((at, beats)) => (HealthSource::LastGood, at, beats),
                None => (HealthSource::None, now, BTreeMap::new()),
            };
            HealthView {
                beats,
                report: HealthReport {
                    source,
                    age_secs: secs_between(at, now),
                    error: Some(e.to_string()),
                    ..HealthReport::default()
                },
            }
        }
    }
}

/// What a tick observed: the inputs of the decision and of the actions that follow it.
struct Observed {
    active: Vec<ActiveJob>,
    fleet: FleetState,
    state: ScalerState,
    seen: Seeing,
    obs: Observation,
    counts: Counts,
    health: HealthReport,
}

/// What acting on a decision did.
#[derive(Default)]
struct Acted {
    acted: bool,
    retired: Vec<String>,
    replaced: Vec<String>,
}

/// Runs one observe-decide-act step at `now`. Idempotent: it sets an absolute capacity and
/// retires only instances still idle, so a retried or doubled tick does no harm.
pub async fn tick(deps: &Deps, cfg: &Config, now: EpochMillis) -> Result<TickReport> {
    let started = std::time::Instant::now();
    let mut seen = observe(deps, cfg, now).await?;
    let decision = decide_within_bounds(&seen, cfg, now);
    let acted = act(deps, cfg, &mut seen, &decision, now).await?;
    seen.state.history = decision.history.clone();
    let report = TickReport {
        at: now,
        observation: ObservationSummary::from(&seen.obs),
        counts: seen.counts,
        health: seen.health,
        decision,
        acted: acted.acted,
        retired: acted.retired,
        replaced: acted.replaced,
        dry_run: cfg.policy.dry_run,
        took_ms: started.elapsed().as_millis() as u64,
    };
    record(deps, cfg, &report, &seen.state, now).await?;
    Ok(report)
}

/// Reads the jobs, the group, the scaler's memory, the agents' liveness and the queue, and
/// turns them into the policy's observation.
async fn observe(deps: &Deps, cfg: &Config, now: EpochMillis) -> Result<Observed> {
    let (active, fleet, stored) = tokio::try_join!(
        deps.work.active_jobs(),
        deps.fleet.describe(),
        deps.memory.load_state(),
    )?;
    let health = observe_health(deps, now).await;
    // Queue counters are reported, not decided on: a failure here must not stop scaling.
    let queue = deps.queue.counters().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the queue's counters");
        QueueCounters::default()
    });
    let mut state: ScalerState = match stored.as_deref().map(serde_json::from_str) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "stored scaler state unreadable; starting afresh");
            ScalerState::default()
        }
        None => ScalerState::default(),
    };
    let spu = seconds_per_unit(&health.beats, cfg.seconds_per_unit);
    let mut seen = Seeing::new(&mut state, &fleet, &health, &active, cfg, now);
    let mut report = health.report;
    report.stale = seen.stale.len() as u32;
    report.leased = seen.leased;
    report.breaker = seen.hold_replacements(fleet.in_service().count());
    let mut obs = Observation {
        current_desired: fleet.desired,
        boot_secs: state.boot_secs,
        ..Observation::default()
    };
    add_jobs(&mut obs, &active, spu, now);
    obs.workers = std::mem::take(&mut seen.workers);
    obs.booting = std::mem::take(&mut seen.booting);
    let counts = Counts {
        queue,
        in_service: fleet.in_service().count() as u32,
        booting: obs.booting.len() as u32,
        busy: obs.busy_workers(),
        retiring: seen.retiring.len() as u32,
        seconds_per_unit: spu,
    };
    Ok(Observed {
        active,
        fleet,
        state,
        seen,
        obs,
        counts,
        health: report,
    })
}

/// The waiting and running jobs as the policy sees them, with render times estimated at `spu`
/// seconds per work unit.
fn add_jobs(obs: &mut Observation, active: &[ActiveJob], spu: f64, now: EpochMillis) {
    for j in active {
        let est = (j.est_work * spu).max(0.0);
        match j.state {
            JobState::Queued => obs.waiting.push(Waiting {
                age_secs: secs_between(j.created_at, now),
                est_secs: est,
            }),
            JobState::Running => obs.running.push(Running {
                remaining_secs: (est - j.started_at.map_or(0.0, |s| secs_between(s, now))).max(0.0),
            }),
            _ => {}
        }
    }
}

/// The policy's decision, with the desired capacity held within the group's own bounds: the
/// group refuses one outside them, and they may differ from the policy's (an operator edited
/// the group).
fn decide_within_bounds(o: &Observed, cfg: &Config, now: EpochMillis) -> Decision {
    let mut decision = decide(&o.obs, &cfg.policy, &o.state.history, now);
    let bounded = decision
        .desired
        .clamp(o.fleet.min, o.fleet.max.max(o.fleet.min));
    if bounded != decision.desired {
        tracing::warn!(
            policy = decision.desired,
            group_min = o.fleet.min,
            group_max = o.fleet.max,
            "desired capacity outside the group's bounds; clamped"
        );
        decision.desired = bounded;
    }
    decision
}

/// Replaces dead workers, retries retirements under way, acts on the decision
/// ([`scaling_policy::actions`]) and cleans the status board. Nothing in a dry run.
async fn act(
    deps: &Deps,
    cfg: &Config,
    o: &mut Observed,
    decision: &Decision,
    now: EpochMillis,
) -> Result<Acted> {
    let mut out = Acted::default();
    if cfg.policy.dry_run {
        return Ok(out);
    }
    out.replaced = replace(deps, &o.seen.stale, &o.active, now).await;
    finish_retiring(deps, &o.seen.retiring).await;
    let in_service = o.counts.in_service;
    for action in actions(decision, &cfg.policy, o.fleet.desired, in_service) {
        match action {
            Action::SetDesired(n) => {
                deps.fleet.set_desired(n).await?;
                out.acted = true;
            }
            Action::Retire(chosen) => {
                out.retired = retire(deps, &chosen, now).await?;
                out.acted = !out.retired.is_empty();
            }
        }
    }
    clean_status_board(deps, &mut o.state, &o.fleet, now).await;
    Ok(out)
}

/// Logs the tick, keeps it in the decision history and publishes its metrics. The decision
/// stands once acted on; recording it must not undo or repeat it, so failures here are logged,
/// not returned.
async fn record(
    deps: &Deps,
    cfg: &Config,
    report: &TickReport,
    state: &ScalerState,
    now: EpochMillis,
) -> Result<()> {
    let json = serde_json::to_string(report).map_err(|source| Error::Encode {
        what: "tick report",
        source,
    })?;
    tracing::info!(
        target: "renderfleet::decision",
        event = events::SCALER_TICK,
        tick = %json,
        desired = report.decision.desired,
        reason = ?report.decision.reason,
        acted = report.acted,
        took_ms = report.took_ms,
        "scaler tick"
    );
    let state_json = serde_json::to_string(state).map_err(|source| Error::Encode {
        what: "scaler state",
        source,
    })?;
    let metrics = metrics_of(report);
    let (saved, recorded, published) = tokio::join!(
        deps.memory.save_state(&state_json),
        deps.memory.record_decision(now, &json, cfg.decision_ttl),
        deps.metrics.publish(&metrics),
    );
    for (what, res) in [
        ("state", saved),
        ("decision", recorded),
        ("metrics", published),
    ] {
        if let Err(e) = res {
            tracing::warn!(error = %e, what, "could not record tick");
        }
    }
    Ok(())
}

/// Replaces silent or unhealthy workers (terminate without decrement: the group launches a new
/// one) and hands their running jobs back to the queue at once.
async fn replace(
    deps: &Deps,
    stale: &[String],
    active: &[ActiveJob],
    now: EpochMillis,
) -> Vec<String> {
    let mut replaced = Vec::new();
    for id in stale {
        match deps.fleet.terminate(id, false).await {
            Ok(()) => replaced.push(id.clone()),
            Err(e) => {
                tracing::warn!(instance = %id, error = %e, "cannot replace instance");
                continue;
            }
        }
        // Its jobs go back to `queued` at once, so they count as waiting work and the next
        // delivery of their messages is rendered elsewhere.
        for j in active
            .iter()
            .filter(|j| j.state == JobState::Running && j.instance_id.as_deref() == Some(id))
        {
            match deps.ledger.release(&j.id, j.attempts, id, now).await {
                Ok(true) => {
                    tracing::info!(job_id = %j.id, instance = %id, "job of a replaced worker requeued")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(job_id = %j.id, error = %e, "cannot requeue the job of a replaced worker")
                }
            }
        }
    }
    replaced
}

/// Terminates (again) workers marked for retirement that are still in service: a termination
/// that failed after the mark is retried here, since the marked agent takes no more work.
async fn finish_retiring(deps: &Deps, retiring: &[String]) {
    for id in retiring {
        if let Err(e) = deps.fleet.terminate(id, true).await {
            tracing::warn!(instance = %id, error = %e, "cannot terminate a retiring worker; the next tick retries");
        }
    }
}

/// Deletes the status parameters of instances that left the group, a bounded number a tick,
/// and sweeps the board for orphans once an hour, one page a tick.
async fn clean_status_board(
    deps: &Deps,
    state: &mut ScalerState,
    fleet: &FleetState,
    now: EpochMillis,
) {
    if !state.status_cleanup.is_empty() {
        let n = state.status_cleanup.len().min(CLEANUP_PER_TICK);
        match deps.status.remove(&state.status_cleanup[..n]).await {
            Ok(()) => {
                state.status_cleanup.drain(..n);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot delete departed agents' status; the next tick retries")
            }
        }
    }
    if !state.sweep.in_progress && now - state.sweep.started_at >= SWEEP_EVERY_MS {
        state.sweep = Sweep {
            started_at: now,
            cursor: None,
            in_progress: true,
        };
    }
    if !state.sweep.in_progress {
        return;
    }
    match deps.status.page(state.sweep.cursor.take()).await {
        Ok((ids, next)) => {
            let orphans: Vec<String> = ids
                .into_iter()
                .filter(|id| !fleet.instances.iter().any(|i| &i.id == id))
                .filter(|id| !state.status_cleanup.contains(id))
                .collect();
            state.status_cleanup.extend(orphans);
            state.sweep.in_progress = next.is_some();
            state.sweep.cursor = next;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the status board; the sweep resumes next tick")
        }
    }
}

/// Handles an instance launching or terminating before the extra tick that re-plans the fleet.
///
/// Launching into service: asks SSM Run Command to start the agent's unit (the user data enables
/// it too; the command makes the start explicit and visible in SSM's history). A command that
/// cannot be sent, typically because the instance's SSM agent has not registered yet, is only
/// logged: the agent completes the launch hook itself once its self-check passes, and the hook's
/// timeout abandons an instance whose agent never comes up. Launching into the warm pool: nothing
/// to start (the agent checks itself and parks). Terminating: the agent drains and completes the
/// hook; the scaler only re-plans.
pub async fn on_lifecycle(deps: &Deps, cfg: &Config, ev: &crate::event::LifecycleEvent) {
    tracing::info!(transition = %ev.transition, instance = %ev.instance, destination = ?ev.destination, "lifecycle event");
    if ev.launching() && !ev.into_warm_pool() && !cfg.policy.dry_run {
        match deps.launcher.start_agent(&ev.instance).await {
            Ok(command) => tracing::info!(instance = %ev.instance, command, "agent start sent"),
            Err(e) => tracing::warn!(
                instance = %ev.instance,
                error = %e,
                "cannot send the agent start; the unit starts at boot and the hook times out if it never does"
            ),
        }
    }
}

/// Terminates each chosen worker with a decrement, after a fresh look at the group confirms it
/// is still in service, and after marking it in its liveness item. The mark is the scaler's half
/// of the work gate: an agent engages the same item before it claims a job, both writes are
/// conditional, so a worker that took work meanwhile is spared. (Instances are launched
/// protected from scale-in, so the group itself never picks a victim; and
/// TerminateInstanceInAutoScalingGroup ignores protection, so protection could not close this
/// race anyway.)
async fn retire(deps: &Deps, chosen: &[String], now: EpochMillis) -> Result<Vec<String>> {
    let fresh = deps.fleet.describe().await?;
    let mut retired = Vec::new();
    for id in chosen {
        let still_in_service = fresh
            .instances
            .iter()
            .any(|i| &i.id == id && i.lifecycle == Lifecycle::InService);
        if !still_in_service {
            tracing::info!(instance = %id, "chosen worker left; spared");
            continue;
        }
        match deps.retirement.mark_retiring(id, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(instance = %id, "chosen worker engaged work first; spared");
                continue;
            }
            Err(e) => {
                tracing::warn!(instance = %id, error = %e, "cannot mark a worker for retirement; spared");
                continue;
            }
        }
        match deps.fleet.terminate(id, true).await {
            Ok(()) => retired.push(id.clone()),
            Err(e) => {
                tracing::warn!(instance = %id, error = %e, "cannot terminate a retiring worker; the next tick retries")
            }
        }
    }
    Ok(retired)
}

/// A retiring worker still in service this long after its mark is terminated again (a shorter
/// wait could count a termination the group has not yet shown twice).
const RETIRE_RETRY_MS: EpochMillis = 60_000;

/// What every instance of one tick is judged by.
struct SeeContext<'a> {
    /// Instances some running job's lease names as still alive, with how many such jobs.
    leased: BTreeMap<&'a str, u32>,
    /// Whether the liveness view was read this tick.
    trusted: bool,
}

/// A worker counted as busy: never retired.
fn busy_worker(id: &str, jobs: u32, age_secs: f64) -> Worker {
    Worker {
        id: id.to_owned(),
        jobs,
        protected: true,
        idle_secs: None,
        age_secs,
    }
}

/// Forgets instances that left the group, and queues their status parameters for deletion.
fn forget_departed(state: &mut ScalerState, fleet: &FleetState) {
    let departed: Vec<String> = state
        .instances
        .keys()
        .filter(|id| !fleet.instances.iter().any(|i| &i.id == *id))
        .cloned()
        .collect();
    for id in departed {
        state.instances.remove(&id);
        if !state.status_cleanup.contains(&id) {
            state.status_cleanup.push(id);
        }
    }
}

/// Instances some running job's lease names as still alive, with how many such jobs.
fn leased_instances(active: &[ActiveJob], now: EpochMillis) -> BTreeMap<&str, u32> {
    active
        .iter()
        .filter(|j| j.state == JobState::Running && j.lease_until.is_some_and(|l| l > now))
        .filter_map(|j| j.instance_id.as_deref())
        .fold(BTreeMap::new(), |mut m, id| {
            *m.entry(id).or_default() += 1;
            m
        })
}

/// Measures an instance's boot time from its agent's first heartbeat, once, and only when the
/// scaler saw the launch: an agent that started before the scaler first looked tells nothing.
fn measure_boot(seen: &mut Seen, hb: &Heartbeat, boot_secs: &mut Option<f64>) {
    if !seen.measured && hb.started_at > seen.first_seen {
        seen.measured = true;
        let sample = secs_between(seen.first_seen, hb.started_at);
        *boot_secs = Some(smoothed_boot_secs(*boot_secs, sample));
    }
}

/// The fleet as the policy sees it, and the bookkeeping that goes with it.
#[derive(Default)]
struct Seeing {
    workers: Vec<Worker>,
    booting: Vec<Booting>,
    /// In-service instances to replace: the agent reports `unhealthy` past the grace period,
    /// its heartbeat went stale (and no job lease it holds is alive), or it never reported within
    /// the boot timeout. Always empty when the view was not read this tick.
    stale: Vec<String>,
    /// Silent workers spared because a job's lease they hold is still being renewed.
    leased: u32,
    /// Marked workers still in service past [`RETIRE_RETRY_MS`]: their termination is retried.
    retiring: Vec<String>,
}

impl Seeing {
    fn new(
        state: &mut ScalerState,
        fleet: &FleetState,
        health: &HealthView,
        active: &[ActiveJob],
        cfg: &Config,
        now: EpochMillis,
    ) -> Self {
        forget_departed(state, fleet);
        let ctx = SeeContext {
            leased: leased_instances(active, now),
            trusted: health.trusted(),
        };
        let stale_ms = cfg.heartbeat_stale.as_millis() as i64;
        let mut out = Self::default();
        let mut condemned = BTreeSet::new();
        for inst in &fleet.instances {
            let seen = state.instances.entry(inst.id.clone()).or_insert(Seen {
                first_seen: now,
                measured: false,
            });
            let age_secs = secs_between(seen.first_seen, now);
            let last = health.beats.get(&inst.id);
            if let Some(at) = last.and_then(|hb| hb.retiring) {
                // Being retired: neither capacity nor a candidate for anything else.
                if inst.lifecycle == Lifecycle::InService
                    && ctx.trusted
                    && now - at > RETIRE_RETRY_MS
                {
                    out.retiring.push(inst.id.clone());
                }
                continue;
            }
            // An old view is used as it is: only a fresh one can show a heartbeat went stale.
            let beat = last.filter(|hb| !ctx.trusted || now - hb.ts <= stale_ms);
            let w = |jobs: u32| busy_worker(&inst.id, jobs, age_secs);
            match (&inst.lifecycle, beat) {
                (Lifecycle::InService, Some(hb))
                    if hb.state == AgentState::Unhealthy
                        && age_secs > cfg.unhealthy_grace.as_secs_f64() =>
                {
                    tracing::warn!(instance = %inst.id, reason = ?hb.reason, "agent unhealthy past its grace");
                    condemned.insert(inst.id.clone());
                    out.workers.push(w(hb.jobs.len() as u32));
                }
                (Lifecycle::InService, None)
                    if last.is_some() || age_secs > cfg.boot_timeout.as_secs_f64() =>
                {
                    out.silent(&inst.id, age_secs, &ctx, &mut condemned)
                }
                (Lifecycle::Pending, _) => out.booting.push(Booting {
                    id: inst.id.clone(),
                    age_secs,
                }),
                (Lifecycle::InService, Some(hb)) => {
                    measure_boot(seen, hb, &mut state.boot_secs);
                    out.workers.push(Worker {
                        id: inst.id.clone(),
                        jobs: hb.jobs.len() as u32,
                        // Busy is the agent's gate: instances are launched protected from
                        // scale-in, so the group's protection flag says nothing about work.
                        protected: hb.engaged,
                        // Retire only on a view read this tick.
                        idle_secs: hb
                            .idle_since
                            .filter(|_| ctx.trusted)
                            .map(|t| secs_between(t, now)),
                        age_secs,
                    });
                }
                (Lifecycle::InService, None) => out.unreported(&inst.id, age_secs, &ctx),
                // Leaving or parked: neither capacity nor cost the policy can change.
                (Lifecycle::Terminating | Lifecycle::Other(_), _) => {}
            }
        }
        if ctx.trusted {
            out.stale = condemned.into_iter().collect();
        }
        out
    }

    /// An in-service worker whose heartbeat went stale, or that never reported within the boot
    /// timeout: replaced, unless a job's lease it holds is still renewed (the liveness write
    /// lags, the worker does not).
    fn silent(
        &mut self,
        id: &str,
        age_secs: f64,
        ctx: &SeeContext<'_>,
        condemned: &mut BTreeSet<String>,
    ) {
        if let Some(&jobs) = ctx.leased.get(id) {
            tracing::info!(instance = %id, "heartbeat stale but a job lease is alive; not replacing");
            self.leased += 1;
            self.workers.push(busy_worker(id, jobs, age_secs));
        } else {
            tracing::warn!(instance = %id, "agent heartbeat stale or never reported");
            condemned.insert(id.to_owned());
            self.workers.push(busy_worker(id, 0, age_secs));
        }
    }

    /// An in-service worker that has not reported yet, within the boot timeout.
    fn unreported(&mut self, id: &str, age_secs: f64, ctx: &SeeContext<'_>) {
        if let Some(&jobs) = ctx.leased.get(id) {
            // Never reported, yet a job's lease names it: busy.
            self.workers.push(busy_worker(id, jobs, age_secs));
        } else if !ctx.trusted {
            // Without a fresh view nothing is known: counted, never retired.
            self.workers.push(Worker {
                protected: false,
                ..busy_worker(id, 0, age_secs)
            });
        } else {
            self.booting.push(Booting {
                id: id.to_owned(),
                age_secs,
            });
        }
    }

    /// The breaker: when more workers look dead at once than a real failure would kill (more
    /// than two, and more than half the fleet), the health path itself is the likelier fault, so
    /// nobody is replaced; otherwise at most a tenth of the fleet (at least one) a tick.
    fn hold_replacements(&mut self, in_service: usize) -> bool {
        let n = self.stale.len();
        if n > 2.max(in_service / 2) {
            tracing::error!(
                stale = n,
                in_service,
                "too many workers look dead at once; replacing none (check the health path)"
            );
            self.stale.clear();
            return true;
        }
        self.stale.truncate(1.max(in_service / 10));
        false
    }
}

/// The fleet's measured render seconds per work unit (the median of the agents' figures), or
/// the configured default before any agent has rendered.
fn seconds_per_unit(beats: &BTreeMap<String, Heartbeat>, default: f64) -> f64 {
    let mut v: Vec<f64> = beats
        .values()
        .filter_map(|hb| hb.seconds_per_unit)
        .filter(|s| s.is_finite() && *s > 0.0)
        .collect();
    if v.is_empty() {
        return default;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn secs_between(from: EpochMillis, to: EpochMillis) -> f64 {
    (to - from).max(0) as f64 / 1000.0
}

fn metrics_of(r: &TickReport) -> Vec<MetricDatum> {
    let c = &r.counts;
    let d = &r.decision;
    let mut out = vec![
        MetricDatum::new("QueueVisible", c.queue.visible as f64, MetricUnit::Count),
        MetricDatum::new("InFlight", c.queue.in_flight as f64, MetricUnit::Count),
        MetricDatum::new("OldestWaitSeconds", d.oldest_wait_secs, MetricUnit::Seconds),
        MetricDatum::new("BacklogSeconds", d.backlog_secs, MetricUnit::Seconds),
        MetricDatum::new("DesiredCapacity", d.desired as f64, MetricUnit::Count),
        MetricDatum::new("InServiceWorkers", c.in_service as f64, MetricUnit::Count),
        MetricDatum::new("BootingWorkers", c.booting as f64, MetricUnit::Count),
        MetricDatum::new("BusyWorkers", c.busy as f64, MetricUnit::Count),
        MetricDatum::new("BootSeconds", d.boot_secs, MetricUnit::Seconds),
        MetricDatum::new(
            "ReplacedWorkers",
            r.replaced.len() as f64,
            MetricUnit::Count,
        ),
    ];
    let reason = serde_json::to_value(d.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut decision = MetricDatum::new("ScalingDecision", 1.0, MetricUnit::Count);
    decision.extra = Some(("Reason".into(), reason));
    out.push(decision);
    out
}

#[cfg(test)]
mod tests;
