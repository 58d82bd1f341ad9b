//! One tick: observe, decide, act, record.

use std::sync::Arc;

use renderfleet_core::clock::EpochMillis;
use renderfleet_core::job::JobState;
use renderfleet_core::ports::{
    ActiveWork, Fleet, MetricDatum, MetricUnit, MetricsSink, ScalerMemory,
};
use scaling_policy::{Decision, History, Observation, decide};
use serde::Serialize;

use crate::Config;

/// What a tick talks to.
#[derive(Clone)]
pub struct Deps {
    pub work: Arc<dyn ActiveWork>,
    pub fleet: Arc<dyn Fleet>,
    pub memory: Arc<dyn ScalerMemory>,
    pub metrics: Arc<dyn MetricsSink>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deps")
    }
}

/// Everything a tick saw and did: logged as one event and kept in the decision history.
#[derive(Clone, Debug, Serialize)]
pub struct TickReport {
    pub at: EpochMillis,
    pub observation: Observation,
    pub decision: Decision,
    /// Whether SetDesiredCapacity was called.
    pub acted: bool,
    pub dry_run: bool,
    /// The oldest waiting job's age in seconds, if any job waits.
    pub oldest_wait_secs: Option<f64>,
}

/// Runs one observe-decide-act step at `now`. Idempotent: it sets an absolute capacity, so a
/// retried or doubled tick does no harm.
pub async fn tick(deps: &Deps, cfg: &Config, now: EpochMillis) -> anyhow::Result<TickReport> {
    let (active, fleet, stored) = tokio::try_join!(
        deps.work.active_jobs(),
        deps.fleet.describe(),
        deps.memory.load_state(),
    )?;
    let history: History = match stored.as_deref().map(serde_json::from_str) {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "stored scaler history unreadable; starting afresh");
            History::default()
        }
        None => History::default(),
    };
    let waiting: Vec<_> = active
        .iter()
        .filter(|j| j.state == JobState::Queued)
        .collect();
    let running = active.len() - waiting.len();
    let oldest_wait_secs = waiting
        .iter()
        .map(|j| j.created_at)
        .min()
        .map(|t| (now - t).max(0) as f64 / 1000.0);
    let obs = Observation {
        waiting_jobs: waiting.len() as u32,
        running_jobs: running as u32,
        current_desired: fleet.desired,
        in_service: fleet.in_service().count() as u32,
        busy_workers: fleet.in_service().filter(|i| i.protected).count() as u32,
    };
    let decision = decide(&obs, &cfg.policy, &history, now);
    // Re-asserting an unchanged capacity is harmless, and lets the group remove instances whose
    // protection was released after it last shrank.
    let acted = !cfg.policy.dry_run
        && (decision.desired != fleet.desired || obs.in_service > decision.desired);
    if acted {
        deps.fleet.set_desired(decision.desired).await?;
    }
    let report = TickReport {
        at: now,
        observation: obs,
        decision,
        acted,
        dry_run: cfg.policy.dry_run,
        oldest_wait_secs,
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
    let history_json = serde_json::to_string(&report.decision.history)?;
    let metrics = metrics_of(&report);
    // The decision stands once acted on; recording it must not undo or repeat it, so failures
    // here are logged, not returned.
    let (saved, recorded, published) = tokio::join!(
        deps.memory.save_state(&history_json),
        deps.memory.record_decision(now, &json, cfg.decision_ttl),
        deps.metrics.publish(&metrics),
    );
    for (what, res) in [
        ("history", saved),
        ("decision", recorded),
        ("metrics", published),
    ] {
        if let Err(e) = res {
            tracing::warn!(error = %e, what, "could not record tick");
        }
    }
    Ok(report)
}

fn metrics_of(r: &TickReport) -> Vec<MetricDatum> {
    let o = &r.observation;
    vec![
        MetricDatum::new("QueueVisible", o.waiting_jobs as f64, MetricUnit::Count),
        MetricDatum::new("InFlight", o.running_jobs as f64, MetricUnit::Count),
        MetricDatum::new(
            "OldestWaitSeconds",
            r.oldest_wait_secs.unwrap_or(0.0),
            MetricUnit::Seconds,
        ),
        MetricDatum::new(
            "DesiredCapacity",
            r.decision.desired as f64,
            MetricUnit::Count,
        ),
        MetricDatum::new("InServiceWorkers", o.in_service as f64, MetricUnit::Count),
        MetricDatum::new("BusyWorkers", o.busy_workers as f64, MetricUnit::Count),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use renderfleet_core::fakes::{FleetCall, MemoryFleet, MemoryMetrics, MemoryStore};
    use renderfleet_core::ids::JobId;
    use renderfleet_core::job::Job;
    use renderfleet_core::spec::JobSpec;

    fn deps() -> (Deps, MemoryStore, MemoryFleet, MemoryMetrics) {
        let store = MemoryStore::new();
        let fleet = MemoryFleet::new(0, 4);
        let metrics = MemoryMetrics::new();
        let deps = Deps {
            work: Arc::new(store.clone()),
            fleet: Arc::new(fleet.clone()),
            memory: Arc::new(store.clone()),
            metrics: Arc::new(metrics.clone()),
        };
        (deps, store, fleet, metrics)
    }

    fn cfg() -> Config {
        let mut c =
            Config::from_lookup(|k| (k == "RENDERFLEET_ENV").then(|| "test".into())).unwrap();
        c.policy.max_workers = 4;
        c.policy.idle_window_secs = 10;
        c
    }

    fn job(created: EpochMillis) -> Job {
        let spec = JobSpec::from_json(
            br##"{"output":{"width":64,"height":64,"fps":10},"scenes":[{"duration":1,"background":{"color":"#000000"}}]}"##,
        )
        .unwrap();
        Job::new(JobId::generate(), "t", spec, created)
    }

    #[tokio::test]
    async fn scales_from_zero_on_the_first_tick_and_back_after_the_idle_window() {
        let (deps, store, fleet, metrics) = deps();
        for _ in 0..6 {
            store.put_job(job(1_000));
        }
        let r = tick(&deps, &cfg(), 2_000).await.unwrap();
        assert_eq!(r.decision.desired, 4);
        assert_eq!(r.oldest_wait_secs, Some(1.0));
        assert_eq!(fleet.calls(), vec![FleetCall::SetDesired(4)]);
        assert!(
            metrics
                .published()
                .iter()
                .any(|m| m.name == "DesiredCapacity" && m.value == 4.0)
        );

        for mut j in store.jobs() {
            j.state = JobState::Succeeded;
            store.put_job(j);
        }
        let r = tick(&deps, &cfg(), 5_000).await.unwrap();
        assert_eq!((r.decision.desired, r.acted), (4, false));
        let r = tick(&deps, &cfg(), 13_000).await.unwrap();
        assert_eq!((r.decision.desired, r.acted), (0, true));
        assert_eq!(fleet.calls().last(), Some(&FleetCall::SetDesired(0)));
        assert_eq!(store.decisions(10).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn dry_run_decides_without_acting() {
        let (deps, store, fleet, _) = deps();
        store.put_job(job(0));
        let mut c = cfg();
        c.policy.dry_run = true;
        let r = tick(&deps, &c, 1_000).await.unwrap();
        assert_eq!((r.decision.desired, r.acted), (1, false));
        assert!(fleet.calls().is_empty());
    }
}
