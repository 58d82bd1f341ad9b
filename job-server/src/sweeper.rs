//! The sweeper keeps the promise of a 202: a job stored but never enqueued (the server died
//! between the two, or the queue refused) is sent after `unsent_after`; a running job whose lease
//! lapsed long ago with nobody taking it over (its message lost) is sent again after
//! `lapsed_after`; a message that reached the dead-letter queue (received ten times without
//! being settled: agents crashing on it, or handing it back) is settled here. Every job-server
//! task runs it; a duplicate message is harmless, agents drop it.
//!
//! A dead letter of a job still waiting is sent again (up to [`MAX_REDRIVES`] times, counted on
//! the job); then, or once the job has used its [`MAX_ATTEMPTS`], the job fails, so every
//! accepted job ends in exactly one terminal state and no message waits forever.

use std::sync::Arc;
use std::time::Duration;

use renderfleet_core::clock::{EpochMillis, now_ms};
use renderfleet_core::job::{JobError, JobState};
use renderfleet_core::message::{JobMessage, MAX_ATTEMPTS, MAX_REDRIVES};
use renderfleet_core::ports::{ActiveWork, JobQueue, JobSource, JobStore};
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
    /// `RENDERFLEET_REQUEUE_AFTER_SECS`: a queued job whose message was sent this long ago and
    /// that nobody took is sent again (its message may be gone: deleted by hand, expired, lost);
    /// at most once per period, and agents drop the copy they do not need. Default 1800.
    pub requeue_after: Duration,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(30),
            unsent_after: Duration::from_secs(60),
            lapsed_after: Duration::from_secs(120),
            requeue_after: Duration::from_secs(1800),
        }
    }
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub unsent: usize,
    pub lapsed: usize,
    /// Queued jobs sent again because their message went unanswered for `requeue_after`.
    pub requeued: usize,
    /// Dead letters of waiting jobs, sent to the job queue again.
    pub redriven: usize,
    /// Jobs failed from the dead-letter queue (`retries_exhausted` or `dead_lettered`).
    pub dead: usize,
    /// Dead letters deleted with nothing to do (the job ended, is rendering, or is unknown).
    pub dropped: usize,
}

/// Dead letters read per sweep at most (ten a receive).
const DLQ_PER_SWEEP: usize = 100;

#[derive(Clone)]
pub struct SweepDeps {
    pub work: Arc<dyn ActiveWork>,
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    /// The dead-letter queue; `None` when it is not reachable (then it is not drained).
    pub dead_letters: Option<Arc<dyn JobSource>>,
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
        let stale = job.state == JobState::Queued
            && job.enqueued
            && now - job.enqueued_at.unwrap_or(job.created_at)
                >= cfg.requeue_after.as_millis() as i64;
        if stale {
            deps.queue.send(&JobMessage::new(job.id.clone())).await?;
            deps.jobs.mark_enqueued(&job.id, now).await?;
            report.requeued += 1;
            tracing::warn!(job_id = %job.id, "re-sent a queued job whose message went unanswered");
            continue;
        }
        if !(unsent || lapsed) {
            continue;
        }
        deps.queue.send(&JobMessage::new(job.id.clone())).await?;
        if unsent {
            deps.jobs.mark_enqueued(&job.id, now).await?;
            report.unsent += 1;
            tracing::warn!(job_id = %job.id, "sent a job that was stored but never enqueued");
        } else {
            report.lapsed += 1;
            tracing::warn!(job_id = %job.id, "re-sent a running job whose lease lapsed with nobody taking it over");
        }
    }
    if let Some(dlq) = &deps.dead_letters {
        drain_dead_letters(deps, dlq.as_ref(), now, &mut report).await?;
    }
    Ok(report)
}

/// Settles the messages in the dead-letter queue, a bounded number per sweep.
async fn drain_dead_letters(
    deps: &SweepDeps,
    dlq: &dyn JobSource,
    now: EpochMillis,
    report: &mut SweepReport,
) -> renderfleet_core::Result<()> {
    let mut seen = 0;
    while seen < DLQ_PER_SWEEP {
        let batch = dlq.receive(10, Duration::ZERO).await?;
        if batch.is_empty() {
            break;
        }
        seen += batch.len();
        for d in batch {
            settle_dead_letter(deps, &d.body, now, report).await?;
            dlq.delete(&d.receipt).await?;
        }
    }
    Ok(())
}

async fn settle_dead_letter(
    deps: &SweepDeps,
    body: &str,
    now: EpochMillis,
    report: &mut SweepReport,
) -> renderfleet_core::Result<()> {
    let Ok(msg) = JobMessage::parse(body) else {
        tracing::warn!(body, "dead letter that is not a job message; deleted");
        report.dropped += 1;
        return Ok(());
    };
    let Some(job) = deps.jobs.get(&msg.job_id).await? else {
        report.dropped += 1;
        return Ok(());
    };
    let live = |l: Option<EpochMillis>| l.is_some_and(|l| l > now);
    let waiting =
        job.state == JobState::Queued || (job.state == JobState::Running && !live(job.lease_until));
    if !waiting {
        // Ended, or an attempt is rendering it and owns its own message.
        report.dropped += 1;
        return Ok(());
    }
    let failure = if job.attempts >= MAX_ATTEMPTS {
        Some(JobError {
            code: "retries_exhausted".into(),
            message: format!("{} attempts did not render it", job.attempts),
        })
    } else if job.redrives >= MAX_REDRIVES {
        Some(JobError {
            code: "dead_lettered".into(),
            message: format!(
                "its message reached the dead-letter queue {} times without an attempt settling it",
                job.redrives + 1
            ),
        })
    } else {
        None
    };
    if let Some(error) = failure {
        if deps.work.fail_unfinished(&job.id, &error, now).await? {
            tracing::warn!(job_id = %job.id, code = %error.code, "job failed from the dead-letter queue");
            report.dead += 1;
        }
        return Ok(());
    }
    deps.queue.send(&JobMessage::new(job.id.clone())).await?;
    deps.jobs.redrive(&job.id, now).await?;
    tracing::warn!(job_id = %job.id, redrives = job.redrives + 1, "dead letter of a waiting job sent again");
    report.redriven += 1;
    Ok(())
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

    fn deps_of(store: &MemoryStore, queue: &MemoryQueue, dlq: Option<&MemoryQueue>) -> SweepDeps {
        SweepDeps {
            work: Arc::new(store.clone()),
            jobs: Arc::new(store.clone()),
            queue: Arc::new(queue.clone()),
            dead_letters: dlq.map(|q| Arc::new(q.clone()) as Arc<dyn JobSource>),
        }
    }

    #[tokio::test]
    async fn sends_unsent_jobs_once_they_are_old_enough_and_lapsed_running_jobs() {
        let store = MemoryStore::new();
        let queue = MemoryQueue::new();
        let deps = deps_of(&store, &queue, None);
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
                lapsed: 1,
                ..SweepReport::default()
            }
        );
        let ids: Vec<_> = queue.sent().into_iter().map(|m| m.job_id).collect();
        assert!(ids.contains(&old.id) && ids.contains(&lapsed.id) && ids.len() == 2);
        assert!(store.get(&old.id).await.unwrap().unwrap().enqueued);
        let again = sweep_once(&deps, &cfg, 121_000).await.unwrap();
        assert_eq!(again.unsent, 0, "a swept job is marked and not sent twice");
    }

    #[tokio::test]
    async fn a_queued_job_whose_message_went_unanswered_is_sent_again_once_a_period() {
        let store = MemoryStore::new();
        let queue = MemoryQueue::new();
        let deps = deps_of(&store, &queue, None);
        let cfg = SweepConfig::default();
        let mut waiting = job(0);
        waiting.enqueued = true;
        waiting.enqueued_at = Some(1_000);
        store.put_job(waiting.clone());
        let r = sweep_once(&deps, &cfg, 1_000 + 1_799_000).await.unwrap();
        assert_eq!(r.requeued, 0, "younger than the period");
        let r = sweep_once(&deps, &cfg, 1_000 + 1_800_000).await.unwrap();
        assert_eq!(r.requeued, 1);
        assert_eq!(queue.sent().len(), 1);
        let r = sweep_once(&deps, &cfg, 1_000 + 1_801_000).await.unwrap();
        assert_eq!(r.requeued, 0, "re-sent at most once a period");
    }

    #[tokio::test]
    async fn dead_letters_are_sent_again_then_failed_and_never_left_waiting() {
        let store = MemoryStore::new();
        let queue = MemoryQueue::new();
        let dlq = MemoryQueue::new();
        let deps = deps_of(&store, &queue, Some(&dlq));
        let cfg = SweepConfig::default();
        let mut waiting = job(0);
        waiting.enqueued = true;
        let mut spent = job(0);
        spent.enqueued = true;
        spent.attempts = MAX_ATTEMPTS;
        let mut done = job(0);
        done.state = JobState::Succeeded;
        let mut rendering = job(0);
        rendering.state = JobState::Running;
        rendering.lease_until = Some(1_000_000);
        for j in [&waiting, &spent, &done, &rendering] {
            store.put_job(j.clone());
            dlq.send(&JobMessage::new(j.id.clone())).await.unwrap();
        }
        let r = sweep_once(&deps, &cfg, 10_000).await.unwrap();
        assert_eq!((r.redriven, r.dead, r.dropped), (1, 1, 2), "{r:?}");
        assert_eq!(
            queue
                .sent()
                .into_iter()
                .map(|m| m.job_id)
                .collect::<Vec<_>>(),
            vec![waiting.id.clone()]
        );
        let failed = store.get(&spent.id).await.unwrap().unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.error.unwrap().code, "retries_exhausted");
        assert_eq!(
            store.get(&rendering.id).await.unwrap().unwrap().state,
            JobState::Running
        );
        // A job whose message keeps dying without attempts is redriven MAX_REDRIVES times, then
        // fails `dead_lettered`: it never waits forever.
        for round in 1..=MAX_REDRIVES {
            assert_eq!(
                store.get(&waiting.id).await.unwrap().unwrap().redrives,
                round
            );
            dlq.send(&JobMessage::new(waiting.id.clone()))
                .await
                .unwrap();
            sweep_once(&deps, &cfg, 20_000).await.unwrap();
        }
        let gone = store.get(&waiting.id).await.unwrap().unwrap();
        assert_eq!(gone.state, JobState::Failed);
        assert_eq!(gone.error.unwrap().code, "dead_lettered");
        let left = renderfleet_core::ports::QueueDepth::counters(&dlq)
            .await
            .unwrap();
        assert_eq!(
            left.visible + left.in_flight,
            0,
            "every dead letter settled: {left:?}"
        );
    }
}
