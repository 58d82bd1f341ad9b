//! One tick: observe, decide, act, record.
//!
//! Observe: active jobs from the jobs table (their expected work and ages: SQS has neither), the
//! queue's counters, the group's instances and protection, and the agents' heartbeats. Decide:
//! [`scaling_policy::decide`]. Act: retire the idle workers the policy chose, each one terminated
//! with a decrement after a fresh look confirms it is still unprotected, or set the absolute
//! desired capacity. Record: one structured log event, the decision history, the metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use renderfleet_core::clock::EpochMillis;
use renderfleet_core::job::JobState;
use renderfleet_core::ports::{
    ActiveWork, AgentDirectory, AgentLauncher, AgentState, Fleet, FleetState, Heartbeat, JobLedger,
    Lifecycle, MetricDatum, MetricUnit, MetricsSink, QueueCounters, QueueDepth, ScalerMemory,
};
use scaling_policy::{
    Booting, Decision, History, Observation, Running, Waiting, Worker, decide, smoothed_boot_secs,
};
use serde::{Deserialize, Serialize};

use crate::Config;

/// What a tick talks to.
#[derive(Clone)]
pub struct Deps {
    pub work: Arc<dyn ActiveWork>,
    /// To hand the jobs of a replaced worker back to the queue.
    pub ledger: Arc<dyn JobLedger>,
    pub queue: Arc<dyn QueueDepth>,
    pub fleet: Arc<dyn Fleet>,
    pub agents: Arc<dyn AgentDirectory>,
    pub memory: Arc<dyn ScalerMemory>,
    pub metrics: Arc<dyn MetricsSink>,
    pub launcher: Arc<dyn AgentLauncher>,
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
}

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
    /// Render seconds per work unit used for the estimates.
    pub seconds_per_unit: f64,
}

/// Everything a tick saw and did: logged as one event and kept in the decision history.
#[derive(Clone, Debug, Serialize)]
pub struct TickReport {
    pub at: EpochMillis,
    pub observation: Observation,
    pub counts: Counts,
    pub decision: Decision,
    /// Whether the group was changed (desired capacity set, or workers retired).
    pub acted: bool,
    /// Workers actually retired (a chosen one that became busy meanwhile is spared).
    pub retired: Vec<String>,
    /// Instances replaced because their agent never reported or stopped reporting.
    pub replaced: Vec<String>,
    pub dry_run: bool,
}

/// Runs one observe-decide-act step at `now`. Idempotent: it sets an absolute capacity and
/// retires only instances still idle, so a retried or doubled tick does no harm.
pub async fn tick(deps: &Deps, cfg: &Config, now: EpochMillis) -> anyhow::Result<TickReport> {
    let (active, fleet, beats, stored) = tokio::try_join!(
        deps.work.active_jobs(),
        deps.fleet.describe(),
        deps.agents.heartbeats(),
        deps.memory.load_state(),
    )?;
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
    let beats: BTreeMap<String, Heartbeat> = beats.into_iter().collect();
    let spu = seconds_per_unit(&beats, cfg.seconds_per_unit);
    let seen = Seeing::new(&mut state, &fleet, &beats, cfg, now);

    let mut obs = Observation {
        current_desired: fleet.desired,
        boot_secs: state.boot_secs,
        ..Observation::default()
    };
    for j in &active {
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
    obs.workers = seen.workers;
    obs.booting = seen.booting;
    let counts = Counts {
        queue,
        in_service: fleet.in_service().count() as u32,
        booting: obs.booting.len() as u32,
        busy: obs.busy_workers(),
        seconds_per_unit: spu,
    };

    let decision = decide(&obs, &cfg.policy, &state.history, now);
    let dry_run = cfg.policy.dry_run;
    let mut acted = false;
    let mut retired = Vec::new();
    let mut replaced = Vec::new();
    if !dry_run {
        for id in &seen.stale {
            match deps.fleet.terminate(id, false).await {
                Ok(()) => replaced.push(id.clone()),
                Err(e) => tracing::warn!(instance = %id, error = %e, "cannot replace instance"),
            }
            // Its jobs go back to `queued` at once, so they count as waiting work and the next
            // delivery of their messages is rendered elsewhere.
            for j in active.iter().filter(|j| {
                j.state == JobState::Running && j.instance_id.as_deref() == Some(id.as_str())
            }) {
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
        if decision.retire.is_empty() {
            // Re-asserting an unchanged capacity is harmless, and lets the group remove
            // instances whose protection was released after it last shrank.
            if decision.desired != fleet.desired || counts.in_service > decision.desired {
                deps.fleet.set_desired(decision.desired).await?;
                acted = true;
            }
        } else {
            retired = retire(deps, &decision).await?;
            acted = !retired.is_empty();
        }
    }
    state.history = decision.history.clone();

    let report = TickReport {
        at: now,
        observation: obs,
        counts,
        decision,
        acted,
        retired,
        replaced,
        dry_run,
    };
    let json = serde_json::to_string(&report)?;
    tracing::info!(
        target: "renderfleet::decision",
        tick = %json,
        desired = report.decision.desired,
        reason = ?report.decision.reason,
        acted,
        "scaler tick"
    );
    let state_json = serde_json::to_string(&state)?;
    let metrics = metrics_of(&report);
    // The decision stands once acted on; recording it must not undo or repeat it, so failures
    // here are logged, not returned.
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
    Ok(report)
}

/// Handles an instance launching or terminating, then ticks so the fleet re-plans at once.
///
/// Launching: asks SSM Run Command to start the agent's unit (the user data enables it too; the
/// command makes the start explicit and visible in SSM's history). A command that cannot be sent,
/// typically because the instance's SSM agent has not registered yet, is only logged: the agent
/// completes the launch hook itself once its self-check passes, and the hook's timeout abandons
/// an instance whose agent never comes up. Terminating: the agent drains and completes the hook;
/// the scaler only re-plans.
pub async fn on_lifecycle(
    deps: &Deps,
    cfg: &Config,
    ev: &crate::event::LifecycleEvent,
    now: EpochMillis,
) -> anyhow::Result<TickReport> {
    tracing::info!(transition = %ev.transition, instance = %ev.instance, "lifecycle event");
    if ev.launching() && !cfg.policy.dry_run {
        match deps.launcher.start_agent(&ev.instance).await {
            Ok(command) => tracing::info!(instance = %ev.instance, command, "agent start sent"),
            Err(e) => tracing::warn!(
                instance = %ev.instance,
                error = %e,
                "cannot send the agent start; the unit starts at boot and the hook times out if it never does"
            ),
        }
    }
    tick(deps, cfg, now).await
}

/// Terminates each chosen worker with a decrement, after a fresh look at the group confirms it
/// is still in service and unprotected: an agent protects its instance before it takes a job, so
/// a worker that became busy since the observation is spared.
async fn retire(deps: &Deps, decision: &Decision) -> anyhow::Result<Vec<String>> {
    let fresh = deps.fleet.describe().await?;
    let mut retired = Vec::new();
    for id in &decision.retire {
        let still_idle = fresh
            .instances
            .iter()
            .any(|i| &i.id == id && i.lifecycle == Lifecycle::InService && !i.protected);
        if !still_idle {
            tracing::info!(instance = %id, "chosen worker became busy or left; spared");
            continue;
        }
        deps.fleet.terminate(id, true).await?;
        retired.push(id.clone());
    }
    Ok(retired)
}

/// The fleet as the policy sees it, and the bookkeeping that goes with it.
struct Seeing {
    workers: Vec<Worker>,
    booting: Vec<Booting>,
    /// In-service instances to replace: the agent reports `unhealthy` past the grace period,
    /// its heartbeat went stale, or it never reported within the boot timeout.
    stale: Vec<String>,
}

impl Seeing {
    fn new(
        state: &mut ScalerState,
        fleet: &FleetState,
        beats: &BTreeMap<String, Heartbeat>,
        cfg: &Config,
        now: EpochMillis,
    ) -> Self {
        state
            .instances
            .retain(|id, _| fleet.instances.iter().any(|i| &i.id == id));
        let stale_ms = cfg.heartbeat_stale.as_millis() as i64;
        let mut out = Self {
            workers: Vec::new(),
            booting: Vec::new(),
            stale: Vec::new(),
        };
        for inst in &fleet.instances {
            let seen = state.instances.entry(inst.id.clone()).or_insert(Seen {
                first_seen: now,
                measured: false,
            });
            let age_secs = secs_between(seen.first_seen, now);
            let last = beats.get(&inst.id);
            let beat = last.filter(|hb| now - hb.ts <= stale_ms);
            match (&inst.lifecycle, beat) {
                (Lifecycle::InService, Some(hb))
                    if hb.state == AgentState::Unhealthy
                        && age_secs > cfg.unhealthy_grace.as_secs_f64() =>
                {
                    tracing::warn!(instance = %inst.id, "agent unhealthy past its grace; replacing");
                    out.stale.push(inst.id.clone());
                }
                (Lifecycle::InService, None) if last.is_some() => {
                    tracing::warn!(instance = %inst.id, "agent heartbeat stale; replacing");
                    out.stale.push(inst.id.clone());
                }
                (Lifecycle::Pending, _) => out.booting.push(Booting {
                    id: inst.id.clone(),
                    age_secs,
                }),
                (Lifecycle::InService, Some(hb)) => {
                    // Measured only when the scaler saw the launch: an agent that started
                    // before the scaler first looked tells nothing about boot time.
                    if !seen.measured && hb.started_at > seen.first_seen {
                        seen.measured = true;
                        let sample = secs_between(seen.first_seen, hb.started_at);
                        state.boot_secs = Some(smoothed_boot_secs(state.boot_secs, sample));
                    }
                    out.workers.push(Worker {
                        id: inst.id.clone(),
                        jobs: hb.jobs.len() as u32,
                        protected: inst.protected,
                        idle_secs: hb.idle_since.map(|t| secs_between(t, now)),
                        age_secs,
                    });
                }
                (Lifecycle::InService, None) => {
                    if age_secs > cfg.boot_timeout.as_secs_f64() {
                        out.stale.push(inst.id.clone());
                    } else if inst.protected {
                        // Protected but silent: an agent mid-job whose heartbeat lags. Busy.
                        out.workers.push(Worker {
                            id: inst.id.clone(),
                            jobs: 1,
                            protected: true,
                            idle_secs: None,
                            age_secs,
                        });
                    } else {
                        out.booting.push(Booting {
                            id: inst.id.clone(),
                            age_secs,
                        });
                    }
                }
                // Leaving or parked: neither capacity nor cost the policy can change.
                (Lifecycle::Terminating | Lifecycle::Other(_), _) => {}
            }
        }
        out
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
