//! The sweeper keeps the promise of a 202: a job stored but never enqueued (the server died
//! between the two, or the queue refused) is sent after `unsent_after`; a running job whose lease
//! lapsed long ago with nobody taking it over (its message lost) is sent again after
//! `lapsed_after`. Every job-server task runs it; a duplicate message is harmless, agents drop it.

use std::sync::Arc;
use std::time::Duration;

use renderfleet_core::clock::{EpochMillis, now_ms};
use renderfleet_core::job::JobState;
use renderfleet_core::message::JobMessage;
use renderfleet_core::ports::{ActiveWork, JobQueue, JobStore};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// `RENDERFLEET_SWEEP_SECS`: time between sweeps. Default 30.
    pub every: Duration,
    /// `RENDERFLEET_SWEEP_AFTER_SECS`: age at which an unsent job is sent. Default 60.
    pub unsent_after: Duration,
    /// `RENDERFLEET_LAPSED_AFTER_SECS`: time past a running job's lease before it is sent again.
    /// Default 120 (twice the visibility timeout).
    pub lapsed_after: Duration,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(30),
            unsent_after: Duration::from_secs(60),
            lapsed_after: Duration::from_secs(120),
        }
    }
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub unsent: usize,
    pub lapsed: usize,
}

#[derive(Clone)]
pub struct SweepDeps {
    pub work: Arc<dyn ActiveWork>,
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
}

impl std::fmt::Debug for SweepDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SweepDeps")
    }
}

/// One sweep at `now`.
pub async fn sweep_once(
    deps: &SweepDeps,
    cfg: &SweepConfig,
    now: EpochMillis,
) -> renderfleet_core::Result<SweepReport> {
    let mut report = SweepReport::default();
    for job in deps.work.active_jobs().await? {
        let unsent = job.state == JobState::Queued
            && !job.enqueued
            && now - job.created_at >= cfg.unsent_after.as_millis() as i64;
        let lapsed = job.state == JobState::Running
            && job
                .lease_until
                .is_some_and(|l| now - l >= cfg.lapsed_after.as_millis() as i64);
        if !(unsent || lapsed) {
            continue;
        }
        deps.queue.send(&JobMessage::new(job.id.clone())).await?;
        if unsent {
            deps.jobs.mark_enqueued(&job.id).await?;
            report.unsent += 1;
            tracing::warn!(job_id = %job.id, "sent a job that was stored but never enqueued");
        } else {
            report.lapsed += 1;
            tracing::warn!(job_id = %job.id, "re-sent a running job whose lease lapsed with nobody taking it over");
        }
    }
    Ok(report)
}

/// Sweeps every `cfg.every` (with up to 20 % jitter, so tasks do not sweep in step) until `stop`.
pub async fn run(deps: SweepDeps, cfg: SweepConfig, stop: CancellationToken) {
    loop {
        let jitter = cfg.every.mul_f64(rand::random::<f64>() * 0.2);
        tokio::select! {
            _ = tokio::time::sleep(cfg.every + jitter) => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = sweep_once(&deps, &cfg, now_ms()).await {
            tracing::warn!(error = %e, "sweep failed; the next one retries");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use renderfleet_core::fakes::{MemoryQueue, MemoryStore, sample_job};
    use renderfleet_core::job::Job;
    use renderfleet_core::ports::JobStore;

    fn job(created: EpochMillis) -> Job {
        sample_job("t", created)
    }

    #[tokio::test]
    async fn sends_unsent_jobs_once_they_are_old_enough_and_lapsed_running_jobs() {
        let store = MemoryStore::new();
        let queue = MemoryQueue::new();
        let deps = SweepDeps {
            work: Arc::new(store.clone()),
            jobs: Arc::new(store.clone()),
            queue: Arc::new(queue.clone()),
        };
        let cfg = SweepConfig::default();
        let young = job(100_000);
        let old = job(0);
        let mut sent = job(0);
        sent.enqueued = true;
        let mut lapsed = job(0);
        lapsed.state = JobState::Running;
        lapsed.enqueued = true;
        lapsed.lease_until = Some(-60_000);
        let mut live = job(0);
        live.state = JobState::Running;
        live.enqueued = true;
        live.lease_until = Some(200_000);
        for j in [&young, &old, &sent, &lapsed, &live] {
            store.put_job(j.clone());
        }
        let r = sweep_once(&deps, &cfg, 120_000).await.unwrap();
        assert_eq!(
            r,
            SweepReport {
                unsent: 1,
                lapsed: 1
            }
        );
        let ids: Vec<_> = queue.sent().into_iter().map(|m| m.job_id).collect();
        assert!(ids.contains(&old.id) && ids.contains(&lapsed.id) && ids.len() == 2);
        assert!(store.get(&old.id).await.unwrap().unwrap().enqueued);
        let again = sweep_once(&deps, &cfg, 121_000).await.unwrap();
        assert_eq!(again.unsent, 0, "a swept job is marked and not sent twice");
    }
}
