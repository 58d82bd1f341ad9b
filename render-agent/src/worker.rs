//! The agent's loop: take at most as many jobs as there are free slots, protect the instance from
//! scale-in while busy, render each job under a lease, and drain on shutdown.
//!
//! A job's life on this worker: receive the message -> protect the instance -> claim the job
//! (a conditional write: queued -> running, attempt + 1) -> keep the lease and the message alive
//! while rendering -> upload -> finish (running -> terminal, conditional on the attempt) -> delete
//! the message. Any step that finds the job moved on by someone else stops without writing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use renderfleet_core::clock::{EpochMillis, now_ms};
use renderfleet_core::events;
use renderfleet_core::ids::{AssetId, JobId};
use renderfleet_core::job::{Job, JobError, JobOutput, Outcome};
use renderfleet_core::message::{
    JobMessage, MAX_ATTEMPTS, MAX_TOTAL_VISIBILITY_SECS, REFRESH_AT_RECEIVE_COUNT,
};
use renderfleet_core::names::output_key;
use renderfleet_core::ports::{
    AgentState, AgentStatus, AssetStore, Claim, Delivery, Directive, HealthReporter, Heartbeat,
    JobLedger, JobQueue, JobSource, Lease, LifecycleActions, MediaFiles, MetricDatum, MetricUnit,
    MetricsSink, StatusBoard, StatusState, TerminationNotice, WorkGate,
};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{Engine, EngineError, LocalAsset, RenderRequest};

/// What the agent talks to.
#[derive(Clone)]
pub struct Deps {
    pub source: Arc<dyn JobSource>,
    /// The same queue, to replace a message that keeps coming back without an attempt.
    pub queue: Arc<dyn JobQueue>,
    pub ledger: Arc<dyn JobLedger>,
    pub media: Arc<dyn MediaFiles>,
    pub assets: Arc<dyn AssetStore>,
    /// The liveness heartbeat (DynamoDB on AWS).
    pub health: Arc<dyn HealthReporter>,
    /// The claim gate that closes the race with a retirement.
    pub gate: Arc<dyn WorkGate>,
    /// The health state operators see (SSM Parameter Store on AWS), written on change.
    pub status: Arc<dyn StatusBoard>,
    /// The instance's target lifecycle state and termination notices (IMDS on AWS).
    pub notice: Arc<dyn TerminationNotice>,
    pub metrics: Arc<dyn MetricsSink>,
    pub engine: Arc<dyn Engine>,
    /// Checks a rendered file and reads its duration (in-process, `engine::mp4`, in production).
    pub prober: Arc<dyn Prober>,
    /// Completes the group's termination hook after a drain.
    pub lifecycle: Arc<dyn LifecycleActions>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deps")
    }
}

/// Reads a rendered file's duration in seconds.
#[async_trait::async_trait]
pub trait Prober: Send + Sync {
    async fn duration(&self, path: &Path) -> Result<f64, String>;
}

/// What one [`Agent::step`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to take.
    Idle,
    /// Started this many jobs.
    Started(usize),
    /// Every slot is busy; waited for one to free up.
    Full,
    /// Messages were handled without starting a job (duplicates, poison, finished jobs).
    Handled(usize),
}

/// How one job attempt ended on this worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobEnd {
    Succeeded,
    Failed(String),
    Cancelled,
    /// Handed back to the queue (a drain, or a failure to retry elsewhere).
    Released(String),
    /// Another attempt owns the job now; nothing was written.
    Lost,
}

#[derive(Clone, Debug)]
pub struct JobReport {
    pub job_id: JobId,
    pub end: JobEnd,
    /// Engine seconds per work unit, for calibration, on success.
    pub seconds_per_unit: Option<f64>,
}

/// State the heartbeat reports, shared by the loop and the reporter.
#[derive(Debug, Default)]
pub struct Shared {
    pub running: BTreeMap<JobId, CancellationToken>,
    pub draining: bool,
    pub engine_ok: bool,
    pub seconds_per_unit: Option<f64>,
    /// Duplicate deliveries seen (another attempt held the job, or it had finished).
    pub duplicates: u64,
    /// Since when no job runs (`None` while busy).
    pub idle_since: Option<EpochMillis>,
    /// Whether the self-check has run at least once (before that, health is unknown).
    pub checked: bool,
    /// Why the self-check failed, when it did.
    pub check_error: Option<String>,
}

pub type SharedState = Arc<Mutex<Shared>>;

/// Locks the shared state, also after a task panicked while holding it.
pub(crate) fn lock(s: &SharedState) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The render agent of one instance.
pub struct Agent {
    deps: Deps,
    cfg: Arc<Config>,
    instance: String,
    shared: SharedState,
    tasks: JoinSet<JobReport>,
    /// Whether the claim gate is open for this agent's work (see [`WorkGate`]).
    engaged: bool,
    /// Why this agent takes no more work (the scaler retires it, or its instance is leaving).
    closed: Option<String>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("instance", &self.instance)
            .finish()
    }
}

impl Agent {
    pub fn new(deps: Deps, cfg: Arc<Config>, instance: String, shared: SharedState) -> Self {
        Self {
            deps,
            cfg,
            instance,
            shared,
            tasks: JoinSet::new(),
            engaged: false,
            closed: None,
        }
    }

    /// Why the agent takes no more work, if it does not.
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    /// One turn of the loop: reap finished jobs, then either wait for a free slot or long-poll for
    /// as many messages as there are free slots and start them.
    pub async fn step(&mut self, shutdown: &CancellationToken) -> anyhow::Result<Step> {
        while let Some(done) = self.tasks.try_join_next() {
            self.record(done);
        }
        if self.closed.is_some() {
            // Leaving: take nothing, wait for SIGTERM (running jobs are reaped above).
            tokio::select! {
                Some(done) = self.tasks.join_next() => self.record(done),
                _ = tokio::time::sleep(self.cfg.poll_wait) => {}
                _ = shutdown.cancelled() => {}
            }
            return Ok(Step::Idle);
        }
        let free = (self.cfg.slots as usize).saturating_sub(self.tasks.len());
        if free == 0 {
            tokio::select! {
                Some(done) = self.tasks.join_next() => self.record(done),
                _ = shutdown.cancelled() => {}
            }
            return Ok(Step::Full);
        }
        let deliveries = self
            .deps
            .source
            .receive(free as u32, self.cfg.poll_wait)
            .await?;
        if deliveries.is_empty() {
            // Idle only once a receive found nothing: between two jobs of a backlog the gate
            // stays engaged, so a busy worker writes its gate once per busy period, not per job.
            if self.tasks.is_empty() {
                self.become_idle().await;
            }
            return Ok(Step::Idle);
        }
        let mut started = 0;
        let total = deliveries.len();
        for d in deliveries {
            if shutdown.is_cancelled() {
                // Draining: hand untouched messages straight back.
                self.hand_back(&d, Duration::ZERO).await;
                continue;
            }
            match self.take(d.clone()).await {
                Ok(true) => started += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "could not take a message; handing it and the rest back"
                    );
                    self.hand_back(&d, Duration::ZERO).await;
                    return Err(e);
                }
            }
        }
        Ok(if started > 0 {
            Step::Started(started)
        } else {
            Step::Handled(total)
        })
    }

    /// Handles one delivery. `Ok(true)` when a job started.
    async fn take(&mut self, d: Delivery) -> anyhow::Result<bool> {
        let received = Instant::now();
        let msg = match JobMessage::parse(&d.body) {
            Ok(m) => m,
            Err(e) => {
                // A malformed message can never become valid: drop it rather than loop on it.
                tracing::error!(message_id = %d.message_id, error = %e, "malformed message deleted");
                self.deps.source.delete(&d.receipt).await?;
                return Ok(false);
            }
        };
        if !self.engage().await? {
            self.hand_back(&d, Duration::ZERO).await;
            return Ok(false);
        }
        let now = now_ms();
        let lease = Lease {
            instance: self.instance.clone(),
            message_id: d.message_id.clone(),
            now,
            until: now + self.lease_ms(),
        };
        let ledger = self.deps.ledger.clone();
        let claim = retry_transient("claim", || ledger.claim(&msg.job_id, &lease)).await?;
        match claim {
            Claim::Claimed(job) => {
                self.start(job, d, received);
                Ok(true)
            }
            Claim::NotClaimable(job) => {
                self.not_claimable(&job, &d, &msg, now).await?;
                Ok(false)
            }
            Claim::Missing => {
                tracing::warn!(job_id = %msg.job_id, "message for an unknown job deleted");
                self.deps.source.delete(&d.receipt).await?;
                Ok(false)
            }
        }
    }

    /// Runs a claimed attempt in a task of its own, which a drain can stop.
    fn start(&mut self, job: Job, d: Delivery, received: Instant) {
        let stop = CancellationToken::new();
        {
            let mut shared = lock(&self.shared);
            shared.running.insert(job.id.clone(), stop.clone());
            shared.idle_since = None;
        }
        let ctx = JobCtx {
            deps: self.deps.clone(),
            cfg: self.cfg.clone(),
            instance: self.instance.clone(),
        };
        tracing::info!(event = events::JOB_CLAIMED, job_id = %job.id, attempt = job.attempts, receive_count = d.receive_count, "job claimed");
        self.tasks.spawn(run_job(ctx, job, d, stop, received));
    }

    /// A delivery of a job another attempt holds, or that has finished: a duplicate.
    async fn not_claimable(
        &self,
        job: &Job,
        d: &Delivery,
        msg: &JobMessage,
        now: EpochMillis,
    ) -> anyhow::Result<()> {
        lock(&self.shared).duplicates += 1;
        let lapse_in = job.lease_until.map(|l| l - now).unwrap_or(0);
        if !job.state.is_terminal() && job.message_id.as_deref() == Some(d.message_id.as_str()) {
            // Our own message back early while its attempt still holds the lease: show it
            // again just after the lease would lapse, in case that worker is gone.
            let after = Duration::from_millis(lapse_in.max(0) as u64 + 1000);
            tracing::info!(event = events::DELIVERY_DROPPED, job_id = %job.id, "message back while its attempt holds the lease; deferring");
            if d.receive_count >= REFRESH_AT_RECEIVE_COUNT {
                self.refresh(d, msg, after).await;
            } else {
                self.hand_back(d, after).await;
            }
        } else {
            tracing::info!(event = events::DELIVERY_DROPPED, job_id = %job.id, state = %job.state, "duplicate delivery deleted");
            self.deps.source.delete(&d.receipt).await?;
        }
        Ok(())
    }

    fn lease_ms(&self) -> i64 {
        // Half the visibility timeout: the lease lapses before the message reappears, so the
        // worker that receives it again can take the job over.
        (self.cfg.visibility.as_millis() / 2) as i64
    }

    /// Engages the work gate before a first job: the scaler retires only a worker it could mark
    /// while disengaged, and both writes are conditional on the same item, so a worker that takes
    /// a job is never retired under it. (Instances are launched protected from scale-in, so the
    /// group never picks a victim itself and no per-job protection call is needed.) `false` when
    /// the scaler is retiring this worker: the caller hands the message back.
    async fn engage(&mut self) -> anyhow::Result<bool> {
        if !self.engaged {
            let gate = self.deps.gate.clone();
            let instance = self.instance.clone();
            if !retry_transient("engage", || gate.engage(&instance)).await? {
                tracing::warn!("the scaler is retiring this worker; taking no more work");
                self.closed = Some("retiring".into());
                return Ok(false);
            }
            self.engaged = true;
        }
        Ok(true)
    }

    /// With no job running and none waiting: closes the gate, so the worker can be retired.
    /// A failure is logged and retried on the next idle step.
    async fn become_idle(&mut self) {
        if self.engaged {
            match self.deps.gate.disengage(&self.instance).await {
                Ok(()) => self.engaged = false,
                Err(e) => tracing::warn!(error = %e, "could not mark the worker idle"),
            }
        }
    }

    /// Replaces a message that keeps coming back without an attempt by a fresh one (receive
    /// count 0), so receives that were not attempts never send a job to the dead-letter queue.
    async fn refresh(&self, d: &Delivery, msg: &JobMessage, after: Duration) {
        match self.deps.queue.send_after(msg, after).await {
            Ok(()) => {
                if let Err(e) = self.deps.source.delete(&d.receipt).await {
                    tracing::warn!(error = %e, "could not delete a refreshed message; a duplicate is harmless");
                }
                tracing::info!(job_id = %msg.job_id, receive_count = d.receive_count, "message replaced by a fresh one");
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh a message; handing it back");
                self.hand_back(d, after).await;
            }
        }
    }

    async fn hand_back(&self, d: &Delivery, after: Duration) {
        if let Err(e) = self.deps.source.set_visibility(&d.receipt, after).await {
            tracing::warn!(error = %e, "could not hand a message back; it returns after its visibility timeout");
        }
    }

    fn record(&mut self, done: Result<JobReport, tokio::task::JoinError>) {
        match done {
            Ok(r) => {
                let mut s = lock(&self.shared);
                s.running.remove(&r.job_id);
                if s.running.is_empty() {
                    s.idle_since = Some(now_ms());
                }
                if let Some(v) = r.seconds_per_unit {
                    s.seconds_per_unit = Some(match s.seconds_per_unit {
                        Some(old) => 0.8 * old + 0.2 * v,
                        None => v,
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "a job task panicked"),
        }
    }

    /// Stops taking work and lets running jobs finish within the grace period; past it, hands
    /// them back to the queue. Closes the work gate at the end.
    pub async fn drain(&mut self) {
        lock(&self.shared).draining = true;
        let deadline = tokio::time::Instant::now() + self.cfg.drain_grace;
        tracing::info!(
            running = self.tasks.len(),
            grace_secs = self.cfg.drain_grace.as_secs(),
            "draining"
        );
        let mut released = false;
        while !self.tasks.is_empty() {
            tokio::select! {
                Some(done) = self.tasks.join_next() => self.record(done),
                _ = tokio::time::sleep_until(deadline), if !released => {
                    tracing::warn!(running = self.tasks.len(), "grace period over; handing running jobs back");
                    for stop in lock(&self.shared).running.values() {
                        stop.cancel();
                    }
                    released = true;
                }
            }
        }
        self.become_idle().await;
    }
}

/// Retries a call that failed transiently (a throttle, a 5xx), in place, with exponential
/// backoff and jitter for up to about half a minute, so a throttled claim or gate write never
/// hands the message back (which would burn one of its receives).
pub async fn retry_transient<T, F, Fut>(op: &str, mut call: F) -> renderfleet_core::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = renderfleet_core::Result<T>>,
{
    let mut delay = Duration::from_millis(200);
    let mut tries = 0;
    loop {
        match call().await {
            Err(e) if e.is_retryable() && tries < 7 => {
                tries += 1;
                let jittered = delay.mul_f64(0.5 + rand::random::<f64>() * 0.5);
                tracing::warn!(op, error = %e, retry_in_ms = jittered.as_millis() as u64, "transient failure; retrying in place");
                tokio::time::sleep(jittered).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            other => return other,
        }
    }
}

#[derive(Clone)]
struct JobCtx {
    deps: Deps,
    cfg: Arc<Config>,
    instance: String,
}

/// Why a running job's engine was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopWhy {
    Cancel,
    Lost,
    Drain,
}

/// Removes the job's work directory whatever happens.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), error = %e, "could not remove a work directory");
        }
    }
}

fn content_extension(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "video/mp4" => "mp4",
        "audio/mpeg" => "mp3",
        _ => "wav",
    }
}

/// Runs one claimed attempt to its end. Never panics on bad input; reports what happened.
async fn run_job(
    ctx: JobCtx,
    job: Job,
    d: Delivery,
    drain: CancellationToken,
    received: Instant,
) -> JobReport {
    use tracing::Instrument;
    let span = tracing::info_span!("job", job_id = %job.id, attempt = job.attempts);
    let id = job.id.clone();
    let (end, spu) = attempt(&ctx, &job, &d, drain, received)
        .instrument(span)
        .await;
    JobReport {
        job_id: id,
        end,
        seconds_per_unit: spu,
    }
}

/// One attempt, top-down: prepare its work directory, render (download the assets and run the
/// engine while the lease and the message are kept alive), deliver the output (check it, upload
/// it), and settle the job (finish, hand back or fail it; delete or return its message).
async fn attempt(
    ctx: &JobCtx,
    job: &Job,
    d: &Delivery,
    drain: CancellationToken,
    received: Instant,
) -> (JobEnd, Option<f64>) {
    let started = Started {
        received,
        claimed_at: now_ms(),
        claim_secs: received.elapsed().as_secs_f64(),
    };
    if job.cancel_requested {
        return (finish(ctx, job, d, Outcome::Cancelled).await, None);
    }
    let dir = match prepare(ctx, job, d).await {
        Ok(dir) => dir,
        Err(end) => return (end, None),
    };
    let output = dir.0.join("output.mp4");
    let alive = KeepAlive::start(ctx, job, d, drain);
    let rendered = render(ctx, job, &dir.0, &output, &alive, received).await;
    let stop_why = alive.why();
    // The lease and the message stay alive through the upload and the finish: an upload slower
    // than the lease must not let another worker render the job again.
    let ended = match rendered {
        Ok(rendered) => match deliver(ctx, job, &output).await {
            Ok(delivered) => succeed(ctx, job, d, &started, rendered, delivered).await,
            Err(why) => (retry_or_fail(ctx, job, d, &why).await, None),
        },
        Err(e) => (settle_failure(ctx, job, d, e, stop_why).await, None),
    };
    alive.stop();
    ended
}

/// When an attempt started: the receive, the claim, and the seconds between them.
struct Started {
    received: Instant,
    claimed_at: EpochMillis,
    claim_secs: f64,
}

/// How long an attempt's download and engine run took.
struct Rendered {
    download: Duration,
    engine: Duration,
}

/// What an attempt delivered, and how long its check and its upload took.
struct Delivered {
    output: JobOutput,
    probe_secs: f64,
    upload_secs: f64,
}

/// Why a running attempt's engine was stopped: the first cause to stop it.
type StopCause = Arc<Mutex<Option<StopWhy>>>;

/// Stops the engine for `why`, unless something stopped it already.
fn stop_for(cause: &StopCause, stop: &CancellationToken, why: StopWhy) {
    cause
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert(why);
    stop.cancel();
}

/// What keeps a running attempt alive and stoppable: the engine's progress and stop signal, the
/// keeper of the lease and the message ([`keep_alive`], which also notices a cancel or a lost
/// lease), and the watch that stops the engine on a drain.
struct KeepAlive {
    progress: watch::Sender<f64>,
    stop: CancellationToken,
    why: StopCause,
    keeper: tokio::task::JoinHandle<()>,
    drain_watch: tokio::task::JoinHandle<()>,
}

impl KeepAlive {
    fn start(ctx: &JobCtx, job: &Job, d: &Delivery, drain: CancellationToken) -> Self {
        let (progress, progress_rx) = watch::channel(0.0f64);
        let stop = CancellationToken::new();
        let why = StopCause::default();
        let keeper = tokio::spawn(keep_alive(
            ctx.clone(),
            job.clone(),
            d.receipt.clone(),
            progress_rx,
            stop.clone(),
            why.clone(),
        ));
        let drain_watch = {
            let (stop, why) = (stop.clone(), why.clone());
            tokio::spawn(async move {
                drain.cancelled().await;
                stop_for(&why, &stop, StopWhy::Drain);
            })
        };
        Self {
            progress,
            stop,
            why,
            keeper,
            drain_watch,
        }
    }

    /// Why the engine was stopped, if it was.
    fn why(&self) -> Option<StopWhy> {
        *self.why.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops keeping the attempt alive (it has ended).
    fn stop(self) {
        self.keeper.abort();
        self.drain_watch.abort();
    }
}

/// Creates the attempt's private work directory, removed again when the returned guard drops.
/// Where it cannot be created, the attempt ends as a retry (or fails, after the last one).
async fn prepare(ctx: &JobCtx, job: &Job, d: &Delivery) -> Result<WorkDir, JobEnd> {
    let dir = ctx.cfg.work_dir.join(job.id.as_str());
    match create_private_dir(&dir) {
        Ok(()) => Ok(WorkDir(dir)),
        Err(e) => {
            let why = format!("cannot create the work directory: {e}");
            Err(retry_or_fail(ctx, job, d, &why).await)
        }
    }
}

/// Downloads the job's assets into `dir` and runs the engine on them, until it is done or
/// stopped (a cancel, a lost lease, a drain: the download stops for them too).
async fn render(
    ctx: &JobCtx,
    job: &Job,
    dir: &Path,
    output: &Path,
    alive: &KeepAlive,
    received: Instant,
) -> Result<Rendered, EngineError> {
    let timeout = engine_timeout(&ctx.cfg, job.est_work, received.elapsed());
    let work = async {
        let t0 = Instant::now();
        let assets = fetch_assets(ctx, job, dir).await?;
        let download = t0.elapsed();
        let req = RenderRequest {
            spec: &job.spec,
            workdir: dir,
            output,
            assets: &assets,
            timeout,
        };
        let t1 = Instant::now();
        ctx.deps
            .engine
            .render(req, &alive.progress, alive.stop.clone())
            .await?;
        Ok(Rendered {
            download,
            engine: t1.elapsed(),
        })
    };
    tokio::select! {
        r = work => r,
        _ = alive.stop.cancelled() => Err(EngineError::Stopped),
    }
}

/// Checks the rendered file (in-process) and uploads it, side by side. `Err` says why the
/// attempt is to be retried. An output the check cannot read is then uploaded but never
/// referenced: the retry overwrites it, or the bucket's lifecycle expires it.
async fn deliver(ctx: &JobCtx, job: &Job, output: &Path) -> Result<Delivered, String> {
    let key = output_key(&job.tenant, job.id.as_str());
    let uploading = Instant::now();
    let (probed, uploaded) = tokio::join!(
        async {
            let r = ctx.deps.prober.duration(output).await;
            (r, uploading.elapsed().as_secs_f64())
        },
        async {
            let r = ctx.deps.media.put_file(&key, output, "video/mp4").await;
            (r, uploading.elapsed().as_secs_f64())
        }
    );
    let (probed, probe_secs) = probed;
    let duration = probed.map_err(|e| format!("the output is unreadable: {e}"))?;
    let (size_bytes, upload_secs) = match uploaded {
        (Ok(n), secs) => (n, secs),
        (Err(e), _) => return Err(format!("upload failed: {e}")),
    };
    Ok(Delivered {
        output: JobOutput {
            key,
            size_bytes,
            duration,
        },
        probe_secs,
        upload_secs,
    })
}

/// Records the delivered output as the job's success; on success, publishes the job's metrics
/// and logs where its time went. Returns the engine seconds per work unit, for calibration.
async fn succeed(
    ctx: &JobCtx,
    job: &Job,
    d: &Delivery,
    started: &Started,
    rendered: Rendered,
    delivered: Delivered,
) -> (JobEnd, Option<f64>) {
    let engine_secs = rendered.engine.as_secs_f64();
    let (duration, size) = (delivered.output.duration, delivered.output.size_bytes);
    let finishing = Instant::now();
    let end = finish(ctx, job, d, Outcome::Succeeded(delivered.output)).await;
    let finish_secs = finishing.elapsed().as_secs_f64();
    let spu = (end == JobEnd::Succeeded && job.est_work > 0.0).then(|| engine_secs / job.est_work);
    if end == JobEnd::Succeeded {
        let wait = (started.claimed_at - job.created_at).max(0) as f64 / 1000.0;
        publish(
            ctx,
            vec![
                MetricDatum::new("JobsSucceeded", 1.0, MetricUnit::Count),
                MetricDatum::new("RenderSeconds", engine_secs, MetricUnit::Seconds),
                MetricDatum::new("WaitSeconds", wait, MetricUnit::Seconds),
                MetricDatum::new(
                    "RealtimeFactor",
                    engine_secs / duration.max(0.001),
                    MetricUnit::None,
                ),
            ],
        );
        let wall_secs = started.received.elapsed().as_secs_f64();
        tracing::info!(
            event = events::JOB_SUCCEEDED,
            job_id = %job.id,
            wall_secs,
            engine_secs,
            claim_secs = started.claim_secs,
            download_secs = rendered.download.as_secs_f64(),
            probe_secs = delivered.probe_secs,
            upload_secs = delivered.upload_secs,
            finish_secs,
            overhead_secs = wall_secs - engine_secs,
            duration,
            size,
            "job succeeded"
        );
    }
    (end, spu)
}

/// Settles an attempt whose render did not succeed, by what stopped it: a cancel finishes the
/// job cancelled, a lost lease writes nothing, a drain hands it back; an engine failure is
/// retried elsewhere; bad input, a timeout and an oversized output fail the job.
async fn settle_failure(
    ctx: &JobCtx,
    job: &Job,
    d: &Delivery,
    e: EngineError,
    stop_why: Option<StopWhy>,
) -> JobEnd {
    match e {
        EngineError::Stopped => match stop_why {
            Some(StopWhy::Cancel) => finish(ctx, job, d, Outcome::Cancelled).await,
            Some(StopWhy::Lost) => {
                tracing::warn!("the job moved on without this attempt; stopped without writing");
                JobEnd::Lost
            }
            Some(StopWhy::Drain) | None => release(ctx, job, d, Duration::ZERO, "drained").await,
        },
        EngineError::Failed(m) => retry_or_fail(ctx, job, d, &m).await,
        EngineError::InvalidInput(_) => fail(ctx, job, d, "invalid_input", &e.to_string()).await,
        EngineError::Timeout(_) => fail(ctx, job, d, "timeout", &e.to_string()).await,
        EngineError::OutputTooLarge(_) => {
            fail(ctx, job, d, "output_too_large", &e.to_string()).await
        }
    }
}

/// The engine's wall-clock limit for a job: base + per-unit x its work units, capped so that the
/// whole attempt (what already passed since the receive, the render, a margin for the upload and
/// the finish) ends inside SQS's 12-hour cap on a message's total invisibility.
pub fn engine_timeout(cfg: &Config, work_units: f64, since_receive: Duration) -> Duration {
    const MARGIN: Duration = Duration::from_secs(3600);
    let wanted = cfg.timeout_base + cfg.timeout_per_unit.mul_f64(work_units.max(0.0));
    let cap = Duration::from_secs(MAX_TOTAL_VISIBILITY_SECS)
        .saturating_sub(MARGIN)
        .saturating_sub(since_receive);
    wanted.min(cap)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Downloads the job's own assets into its work directory.
async fn fetch_assets(
    ctx: &JobCtx,
    job: &Job,
    dir: &Path,
) -> Result<HashMap<AssetId, LocalAsset>, EngineError> {
    let mut out = HashMap::new();
    for (n, (field, id, _)) in job.spec.asset_refs().into_iter().enumerate() {
        if out.contains_key(id) {
            continue;
        }
        let asset = match ctx.deps.assets.get_asset(id).await {
            Ok(Some(a)) if a.tenant == job.tenant => a,
            Ok(_) => {
                return Err(EngineError::InvalidInput(format!(
                    "{field}: asset {id} does not exist"
                )));
            }
            Err(e) => return Err(EngineError::Failed(e.to_string())),
        };
        let path = dir.join(format!(
            "asset-{n}.{}",
            content_extension(&asset.content_type)
        ));
        match ctx
            .deps
            .media
            .get_file(&asset.key, &path, ctx.cfg.max_asset_bytes)
            .await
        {
            Ok(_) => {}
            Err(renderfleet_core::Error::NotFound(_)) => {
                return Err(EngineError::InvalidInput(format!(
                    "{field}: asset {id} was never uploaded"
                )));
            }
            Err(e) => return Err(EngineError::Failed(format!("downloading asset {id}: {e}"))),
        }
        out.insert(
            id.clone(),
            LocalAsset {
                path,
                content_type: asset.content_type,
            },
        );
    }
    Ok(out)
}

/// Keeps a running attempt alive: writes progress and renews the lease every `progress_every`
/// (and so notices a cancel within it), and extends the message's visibility every third of the
/// visibility timeout.
async fn keep_alive(
    ctx: JobCtx,
    job: Job,
    receipt: String,
    progress: watch::Receiver<f64>,
    stop: CancellationToken,
    why: StopCause,
) {
    let lease = ctx.cfg.visibility / 2;
    let extend_every = ctx.cfg.visibility / 3;
    // The lease is projected into the active index (progress is not): renewing it with every
    // progress write would rewrite the index every few seconds per running job.
    let renew_every = lease / 3;
    let mut last_extend = Instant::now();
    let mut last_renew = Instant::now();
    let mut tick = tokio::time::interval(ctx.cfg.progress_every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if last_extend.elapsed() >= extend_every {
            match ctx
                .deps
                .source
                .set_visibility(&receipt, ctx.cfg.visibility)
                .await
            {
                Ok(()) => last_extend = Instant::now(),
                Err(e) => tracing::warn!(error = %e, "could not extend the message's visibility"),
            }
        }
        let p = *progress.borrow();
        let renew = last_renew.elapsed() >= renew_every;
        let until = renew.then(|| now_ms() + lease.as_millis() as i64);
        match ctx
            .deps
            .ledger
            .heartbeat(&job.id, job.attempts, &ctx.instance, p, until)
            .await
        {
            Ok(Directive::Continue) => {
                if renew {
                    last_renew = Instant::now();
                }
            }
            Ok(Directive::Cancel) => {
                tracing::info!("cancel requested; stopping the engine");
                stop_for(&why, &stop, StopWhy::Cancel);
                return;
            }
            Ok(Directive::Lost) => {
                stop_for(&why, &stop, StopWhy::Lost);
                return;
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the job's lease"),
        }
    }
}

async fn finish(ctx: &JobCtx, job: &Job, d: &Delivery, outcome: Outcome) -> JobEnd {
    let end = match &outcome {
        Outcome::Succeeded(_) => JobEnd::Succeeded,
        Outcome::Failed(e) => JobEnd::Failed(e.code.clone()),
        Outcome::Cancelled => JobEnd::Cancelled,
    };
    let mut delay = Duration::from_millis(200);
    for _ in 0..6 {
        match ctx
            .deps
            .ledger
            .finish(&job.id, job.attempts, &ctx.instance, &outcome, now_ms())
            .await
        {
            Ok(true) => {
                if let Err(e) = ctx.deps.source.delete(&d.receipt).await {
                    tracing::warn!(error = %e, "finished, but the message could not be deleted; a redelivery will find the job finished");
                }
                if let JobEnd::Failed(code) = &end {
                    publish(
                        ctx,
                        vec![MetricDatum::new("JobsFailed", 1.0, MetricUnit::Count)],
                    );
                    tracing::warn!(event = events::JOB_FAILED, job_id = %job.id, code, "job failed");
                }
                return end;
            }
            Ok(false) => {
                tracing::warn!(
                    event = events::ATTEMPT_DISCARDED,
                    job_id = %job.id,
                    "the job moved on without this attempt; result discarded"
                );
                return JobEnd::Lost;
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "could not record the result; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record the result");
                break;
            }
        }
    }
    // The lease lapses and the message returns: another attempt will redo the job.
    JobEnd::Released("could not record the result".into())
}

async fn fail(ctx: &JobCtx, job: &Job, d: &Delivery, code: &str, message: &str) -> JobEnd {
    finish(
        ctx,
        job,
        d,
        Outcome::Failed(JobError {
            code: code.into(),
            message: message.into(),
        }),
    )
    .await
}

/// A failure that another worker may not hit: hand the job back, with a backoff, unless this was
/// its last attempt (counted in the job record, so receives that were not attempts do not count);
/// then the job fails with `retries_exhausted` and its message is deleted.
async fn retry_or_fail(ctx: &JobCtx, job: &Job, d: &Delivery, message: &str) -> JobEnd {
    if job.attempts >= MAX_ATTEMPTS {
        tracing::error!(
            message,
            attempts = job.attempts,
            "job failed: retries exhausted"
        );
        return fail(
            ctx,
            job,
            d,
            "retries_exhausted",
            &format!("after {} attempts: {message}", job.attempts),
        )
        .await;
    }
    let backoff = (ctx.cfg.retry_backoff * (1u32 << job.attempts.saturating_sub(1).min(4)))
        .min(Duration::from_secs(60));
    tracing::warn!(
        message,
        backoff_secs = backoff.as_secs(),
        "attempt failed; handing the job back for a retry"
    );
    release(ctx, job, d, backoff, message).await
}

async fn release(ctx: &JobCtx, job: &Job, d: &Delivery, after: Duration, why: &str) -> JobEnd {
    match ctx
        .deps
        .ledger
        .release(&job.id, job.attempts, &ctx.instance, now_ms())
        .await
    {
        Ok(true) => {}
        Ok(false) => return JobEnd::Lost,
        Err(e) => {
            tracing::warn!(error = %e, "could not put the job back to queued; its lease will lapse")
        }
    }
    if let Err(e) = ctx.deps.source.set_visibility(&d.receipt, after).await {
        tracing::warn!(error = %e, "could not hand the message back; it returns after its visibility timeout");
    }
    tracing::info!(event = events::JOB_HANDED_BACK, job_id = %job.id, why, "job handed back to the queue");
    JobEnd::Released(why.to_owned())
}

/// Publishes in the background: metrics never hold up a job's end.
fn publish(ctx: &JobCtx, data: Vec<MetricDatum>) {
    use tracing::Instrument;
    let metrics = ctx.deps.metrics.clone();
    tokio::spawn(
        async move {
            if let Err(e) = metrics.publish(&data).await {
                tracing::warn!(error = %e, "could not publish metrics");
            }
        }
        .in_current_span(),
    );
}

/// The heartbeat the agent writes now.
pub fn heartbeat(
    shared: &SharedState,
    cfg: &Config,
    started_at: EpochMillis,
    disk_free: u64,
) -> Heartbeat {
    let s = lock(shared);
    let low_disk = disk_free < cfg.min_free_disk;
    let state = if !s.engine_ok || low_disk {
        AgentState::Unhealthy
    } else if s.draining {
        AgentState::Draining
    } else if s.running.is_empty() {
        AgentState::Idle
    } else {
        AgentState::Busy
    };
    let reason = match state {
        AgentState::Unhealthy if low_disk => Some(format!(
            "only {disk_free} bytes free in {}",
            cfg.work_dir.display()
        )),
        AgentState::Unhealthy => Some(
            s.check_error
                .clone()
                .unwrap_or_else(|| "the self-check has not passed yet".into()),
        ),
        _ => None,
    };
    Heartbeat {
        state,
        jobs: s.running.keys().cloned().collect(),
        slots: cfg.slots,
        engine_ok: s.engine_ok,
        disk_free_bytes: disk_free,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ts: now_ms(),
        started_at,
        idle_since: if s.running.is_empty() {
            s.idle_since.or(Some(started_at))
        } else {
            None
        },
        seconds_per_unit: s.seconds_per_unit,
        reason,
        retiring: None,
        engaged: false,
    }
}

/// The health state operators should see for `hb`, once the self-check has run at least once:
/// ready, unhealthy with its reason, or draining while jobs still run (an idle worker drains in
/// moments, and writing that would only spend the quota).
pub fn status_of(hb: &Heartbeat, checked: bool) -> Option<(StatusState, Option<String>)> {
    if !checked {
        return None;
    }
    Some(match hb.state {
        AgentState::Unhealthy => (StatusState::Unhealthy, hb.reason.clone()),
        AgentState::Draining if !hb.jobs.is_empty() => (StatusState::Draining, None),
        AgentState::Draining => return None,
        AgentState::Idle | AgentState::Busy => (StatusState::Ready, None),
    })
}

/// Free bytes for unprivileged users on the file system holding `path`.
pub fn disk_free(path: &Path) -> u64 {
    match nix::sys::statvfs::statvfs(path) {
        Ok(s) => s.blocks_available() * s.fragment_size(),
        Err(_) => 0,
    }
}

/// Writes the agent's health state to the status board only when it changes. The first
/// `ready` of a worker waits a random part of `spread` (a fleet that boots together would
/// otherwise write at once, above PutParameter's few-per-second quota); a throttled write is
/// retried with a growing, jittered delay. Nothing here holds up a job.
#[derive(Debug)]
pub struct StatusWriter {
    spread: Duration,
    written: Option<(StatusState, Option<String>)>,
    due: Option<tokio::time::Instant>,
    first_backoff: Duration,
    backoff: Duration,
}

impl StatusWriter {
    /// `first_backoff`: the wait before retrying a throttled write, doubled per failure up to
    /// five minutes (the agent uses 10 s).
    pub fn new(spread: Duration, first_backoff: Duration) -> Self {
        Self {
            spread,
            written: None,
            due: None,
            first_backoff,
            backoff: first_backoff,
        }
    }

    /// Called with each heartbeat: writes when the state differs from the last one written and
    /// its time has come.
    pub async fn observe(
        &mut self,
        board: &dyn StatusBoard,
        instance: &str,
        wanted: Option<(StatusState, Option<String>)>,
    ) {
        let Some(wanted) = wanted else { return };
        if self.written.as_ref() == Some(&wanted) {
            self.due = None;
            return;
        }
        let now = tokio::time::Instant::now();
        let due = *self.due.get_or_insert_with(|| {
            if self.written.is_none() && wanted.0 == StatusState::Ready {
                now + self.spread.mul_f64(rand::random::<f64>())
            } else {
                now
            }
        });
        if now < due {
            return;
        }
        let status = AgentStatus {
            state: wanted.0,
            reason: wanted.1.clone(),
            since: now_ms(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        match board.publish(instance, &status).await {
            Ok(()) => {
                tracing::info!(state = ?status.state, "health state published");
                self.written = Some(wanted);
                self.due = None;
                self.backoff = self.first_backoff;
            }
            Err(e) => {
                let wait = self.backoff.mul_f64(0.5 + rand::random::<f64>());
                tracing::warn!(error = %e, retry_in_secs = wait.as_secs(), "could not publish the health state");
                self.due = Some(now + wait);
                self.backoff = (self.backoff * 2).min(Duration::from_secs(300));
            }
        }
    }
}

/// Writes heartbeats until `stop` fires, and the health state when it changes.
pub async fn report_health(
    deps: Deps,
    shared: SharedState,
    cfg: Arc<Config>,
    instance: String,
    started_at: EpochMillis,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(cfg.heartbeat);
    let mut status = StatusWriter::new(cfg.status_spread, Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let hb = heartbeat(&shared, &cfg, started_at, disk_free(&cfg.work_dir));
        let writing = Instant::now();
        if let Err(e) = deps.health.report(&instance, &hb).await {
            tracing::warn!(error = %e, "could not write the heartbeat");
        }
        if writing.elapsed() > cfg.heartbeat {
            tracing::warn!(
                took_ms = writing.elapsed().as_millis() as u64,
                "a heartbeat write took longer than the heartbeat interval"
            );
        }
        let checked = lock(&shared).checked;
        status
            .observe(&*deps.status, &instance, status_of(&hb, checked))
            .await;
    }
}
