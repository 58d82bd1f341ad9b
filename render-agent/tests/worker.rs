//! Orchestration tests: the agent's loop one `step()` at a time against in-memory fakes and a
//! scripted engine that succeeds, fails or hangs.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use render_agent::Config;
use render_agent::engine::{Engine, EngineError, RenderRequest};
use render_agent::worker::{Agent, Deps, Prober, Shared, Step};
use renderfleet_core::clock::now_ms;
use renderfleet_core::fakes::{
    FleetCall, MemoryFleet, MemoryHealth, MemoryMedia, MemoryMetrics, MemoryQueue, MemoryStatus,
    MemoryStore, sample_job,
};
use renderfleet_core::ids::{AssetId, JobId};
use renderfleet_core::job::{Job, JobState};
use renderfleet_core::message::JobMessage;
use renderfleet_core::ports::{
    Asset, AssetStore, HealthReporter, JobQueue, JobStore, MediaFiles, Retirement, StatusState,
    TerminationNotice,
};
use renderfleet_core::spec::JobSpec;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
enum Script {
    Succeed,
    FailRetryable,
    InvalidInput,
    Hang,
}

struct ScriptedEngine {
    script: Mutex<Script>,
    calls: AtomicU32,
}

impl ScriptedEngine {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script),
            calls: AtomicU32::new(0),
        })
    }
    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Engine for ScriptedEngine {
    async fn render(
        &self,
        req: RenderRequest<'_>,
        progress: &watch::Sender<f64>,
        stop: CancellationToken,
    ) -> Result<(), EngineError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(
            req.workdir.is_dir(),
            "the work directory exists while rendering"
        );
        let script = *self.script.lock().unwrap();
        progress.send_replace(0.5);
        match script {
            Script::Succeed => {
                tokio::fs::write(req.output, b"not really an mp4")
                    .await
                    .unwrap();
                Ok(())
            }
            Script::FailRetryable => Err(EngineError::Failed("segfault".into())),
            Script::InvalidInput => Err(EngineError::InvalidInput("corrupt media".into())),
            Script::Hang => {
                stop.cancelled().await;
                Err(EngineError::Stopped)
            }
        }
    }
    async fn self_check(&self, _: &Path) -> Result<(), render_agent::Error> {
        Ok(())
    }
}

struct FixedProbe;

#[async_trait]
impl Prober for FixedProbe {
    async fn duration(&self, _: &Path) -> Result<f64, String> {
        Ok(1.0)
    }
}

struct World {
    store: MemoryStore,
    queue: MemoryQueue,
    media: MemoryMedia,
    fleet: MemoryFleet,
    health: MemoryHealth,
    status: MemoryStatus,
    engine: Arc<ScriptedEngine>,
    agent: Agent,
    shared: Arc<Mutex<Shared>>,
    work: tempfile::TempDir,
    deps: Deps,
}

fn config(work: &Path, slots: u32) -> Config {
    let mut c = Config::for_tests(work.to_path_buf());
    c.slots = slots;
    c.progress_every = Duration::from_millis(50);
    c.visibility = Duration::from_secs(6);
    c.drain_grace = Duration::from_millis(300);
    c.retry_backoff = Duration::from_millis(100);
    c
}

fn world(script: Script, slots: u32) -> World {
    let store = MemoryStore::new();
    let queue = MemoryQueue::new();
    let media = MemoryMedia::new();
    let fleet = MemoryFleet::new(0, 4);
    fleet.add_instance("i-test");
    let engine = ScriptedEngine::new(script);
    let work = tempfile::tempdir().unwrap();
    let health = MemoryHealth::new();
    let status = MemoryStatus::new();
    let deps = Deps {
        source: Arc::new(queue.clone()),
        queue: Arc::new(queue.clone()),
        ledger: Arc::new(store.clone()),
        media: Arc::new(media.clone()),
        assets: Arc::new(store.clone()),
        health: Arc::new(health.clone()),
        gate: Arc::new(health.clone()),
        status: Arc::new(status.clone()),
        notice: Arc::new(render_agent::NoMetadata),
        metrics: Arc::new(MemoryMetrics::new()),
        engine: engine.clone(),
        prober: Arc::new(FixedProbe),
        lifecycle: Arc::new(fleet.clone()),
    };
    let shared = Arc::new(Mutex::new(Shared::default()));
    let agent = new_agent(&deps, work.path(), slots, &shared);
    World {
        store,
        queue,
        media,
        fleet,
        health,
        status,
        engine,
        agent,
        shared,
        work,
        deps,
    }
}

/// The agent of instance `i-test` on `deps`.
fn new_agent(deps: &Deps, work: &Path, slots: u32, shared: &Arc<Mutex<Shared>>) -> Agent {
    Agent::new(
        deps.clone(),
        Arc::new(config(work, slots)),
        "i-test".into(),
        shared.clone(),
    )
}

/// Stores `job` and queues its message.
async fn submit_job(w: &World, job: Job) -> JobId {
    w.store.create(&job, None).await.unwrap();
    w.queue
        .send(&JobMessage::new(job.id.clone()))
        .await
        .unwrap();
    job.id
}

async fn submit(w: &World) -> JobId {
    submit_job(w, sample_job("acme", now_ms())).await
}

/// Submits a job and takes one step, which claims it and starts its attempt.
async fn submit_and_start(w: &mut World) -> JobId {
    let id = submit(w).await;
    w.agent.step(&CancellationToken::new()).await.unwrap();
    id
}

async fn state(w: &World, id: &JobId) -> Job {
    w.store.get(id).await.unwrap().unwrap()
}

/// Writes a heartbeat of `i-test` (idle, plenty of disk), as the agent does before work.
async fn report_heartbeat(w: &World) {
    let hb =
        render_agent::worker::heartbeat(&w.shared, &config(w.work.path(), 1), now_ms(), 1 << 40);
    w.health.report("i-test", &hb).await.unwrap();
}

/// The lifecycle hooks completed so far.
fn hook_calls(w: &World) -> Vec<FleetCall> {
    w.fleet
        .calls()
        .into_iter()
        .filter(|c| matches!(c, FleetCall::CompleteLifecycle { .. }))
        .collect()
}

/// Polls `done` every `every` until it holds (`true`), or `within` has passed (`false`).
async fn eventually(
    within: Duration,
    every: Duration,
    mut done: impl AsyncFnMut() -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + within;
    while !done().await {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
    true
}

/// [`render_agent::run`] of a world's deps in a task, until [`Running::stop`].
struct Running {
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    shutdown: CancellationToken,
}

impl Running {
    fn start(w: &World, cfg: Config) -> Self {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(render_agent::run(
            w.deps.clone(),
            cfg,
            "i-test".into(),
            shutdown.clone(),
        ));
        Self { task, shutdown }
    }

    /// Shuts the agent down and waits for it to return, which it must without error.
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Steps until the agent has no job running.
async fn settle(w: &mut World) {
    let never = CancellationToken::new();
    for _ in 0..200 {
        if w.agent.running() == 0 {
            return;
        }
        w.agent.step(&never).await.unwrap();
    }
    panic!("the agent did not settle");
}

#[tokio::test]
async fn renders_a_job_uploads_once_and_closes_its_gate_when_idle() {
    let mut w = world(Script::Succeed, 1);
    let id = submit(&w).await;
    let never = CancellationToken::new();
    assert_eq!(w.agent.step(&never).await.unwrap(), Step::Started(1));
    settle(&mut w).await;
    let job = state(&w, &id).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempts, 1);
    assert_eq!(
        job.output.as_ref().unwrap().key,
        format!("outputs/acme/{id}/output.mp4")
    );
    assert_eq!(
        w.media.puts(),
        vec![format!("outputs/acme/{id}/output.mp4")]
    );
    assert!(w.queue.pending().is_empty(), "the message is deleted");
    // The gate stays engaged until a receive finds nothing, then closes; the agent makes no
    // Auto Scaling call per job (instances are launched protected from scale-in).
    assert!(w.health.engaged("i-test"));
    assert_eq!(w.agent.step(&never).await.unwrap(), Step::Idle);
    assert!(!w.health.engaged("i-test"));
    assert!(
        w.fleet.calls().is_empty(),
        "no protection calls: {:?}",
        w.fleet.calls()
    );
}

#[tokio::test]
async fn a_duplicate_delivery_renders_once() {
    let mut w = world(Script::Succeed, 2);
    let id = submit(&w).await;
    w.queue.send(&JobMessage::new(id.clone())).await.unwrap();
    let never = CancellationToken::new();
    w.agent.step(&never).await.unwrap();
    settle(&mut w).await;
    assert_eq!(w.engine.calls(), 1);
    assert_eq!(w.media.puts().len(), 1);
    assert_eq!(state(&w, &id).await.attempts, 1);
    assert!(w.queue.pending().is_empty(), "both copies are gone");
    assert_eq!(w.shared.lock().unwrap().duplicates, 1);
}

#[tokio::test]
async fn a_malformed_message_is_dropped_and_the_loop_goes_on() {
    let mut w = world(Script::Succeed, 1);
    w.queue.push_raw("{\"v\":1,\"job_id\":\"../../etc\"}");
    w.queue.push_raw("garbage");
    let never = CancellationToken::new();
    for _ in 0..3 {
        w.agent.step(&never).await.unwrap();
    }
    assert!(w.queue.pending().is_empty());
    let id = submit(&w).await;
    w.agent.step(&never).await.unwrap();
    settle(&mut w).await;
    assert_eq!(state(&w, &id).await.state, JobState::Succeeded);
}

#[tokio::test]
async fn bad_input_fails_the_job_without_retry() {
    let mut w = world(Script::InvalidInput, 1);
    let id = submit_and_start(&mut w).await;
    settle(&mut w).await;
    let job = state(&w, &id).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.unwrap().code, "invalid_input");
    assert!(w.queue.pending().is_empty());
    assert!(w.media.puts().is_empty());
}

#[tokio::test]
async fn a_missing_asset_is_bad_input() {
    let mut w = world(Script::Succeed, 1);
    let asset = Asset {
        id: AssetId::generate(),
        tenant: "acme".into(),
        content_type: "image/png".into(),
        size_bytes: 10,
        key: "assets/acme/x".into(),
        created_at: 0,
    };
    w.store.create_asset(&asset).await.unwrap();
    let spec = format!(
        r##"{{"output":{{"width":64,"height":64,"fps":10}},"scenes":[{{"duration":1,"background":{{"image":"{}"}}}}]}}"##,
        asset.id
    );
    let job = Job::new(
        JobId::generate(),
        "acme",
        JobSpec::from_json(spec.as_bytes()).unwrap(),
        now_ms(),
    );
    let id = submit_job(&w, job).await;
    w.agent.step(&CancellationToken::new()).await.unwrap();
    settle(&mut w).await;
    let done = state(&w, &id).await;
    assert_eq!(done.state, JobState::Failed);
    assert!(done.error.unwrap().message.contains("never uploaded"));
    assert_eq!(w.engine.calls(), 0);
}

#[tokio::test]
async fn an_engine_crash_hands_the_job_back_then_fails_it_after_its_last_attempt() {
    let mut w = world(Script::FailRetryable, 1);
    let id = submit_and_start(&mut w).await;
    settle(&mut w).await;
    let job = state(&w, &id).await;
    assert_eq!(
        (job.state, job.attempts),
        (JobState::Queued, 1),
        "handed back for a retry"
    );
    assert_eq!(
        w.queue.pending().len(),
        1,
        "the message stays for the retry"
    );
    // Later deliveries, each after its backoff, until the last attempt.
    let never = CancellationToken::new();
    for attempt in 2..=renderfleet_core::message::MAX_ATTEMPTS {
        let mut started = false;
        for _ in 0..400 {
            if matches!(w.agent.step(&never).await.unwrap(), Step::Started(_)) {
                started = true;
                break;
            }
        }
        assert!(started, "delivery {attempt} arrives after its backoff");
        settle(&mut w).await;
    }
    let job = state(&w, &id).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.unwrap().code, "retries_exhausted");
    assert_eq!(w.engine.calls(), 5);
    assert!(
        w.queue.pending().is_empty(),
        "the failed job's message is deleted, not left to the dead-letter queue"
    );
}

#[tokio::test]
async fn a_cancel_while_running_stops_the_engine_within_the_progress_interval() {
    let mut w = world(Script::Hang, 1);
    let id = submit_and_start(&mut w).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state(&w, &id).await.state, JobState::Running);
    let asked = std::time::Instant::now();
    w.store.cancel(&id, now_ms()).await.unwrap();
    settle(&mut w).await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "noticed in {:?}",
        asked.elapsed()
    );
    assert_eq!(state(&w, &id).await.state, JobState::Cancelled);
    assert!(w.queue.pending().is_empty());
}

#[tokio::test]
async fn a_drain_past_the_grace_period_hands_the_job_back() {
    let mut w = world(Script::Hang, 1);
    let id = submit_and_start(&mut w).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.agent.drain().await;
    let job = state(&w, &id).await;
    assert_eq!((job.state, job.instance_id), (JobState::Queued, None));
    assert_eq!(
        w.queue.pending().len(),
        1,
        "the message is back on the queue"
    );
    assert!(w.shared.lock().unwrap().draining);
    assert!(
        !w.health.engaged("i-test"),
        "the gate is closed after the drain"
    );
}

#[tokio::test]
async fn a_job_taken_over_elsewhere_is_stopped_without_writing() {
    let mut w = world(Script::Hang, 1);
    let id = submit_and_start(&mut w).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut job = state(&w, &id).await;
    job.attempts += 1;
    job.instance_id = Some("i-other".into());
    w.store.put_job(job.clone());
    settle(&mut w).await;
    assert_eq!(
        state(&w, &id).await,
        job,
        "nothing was written by the lost attempt"
    );
    assert_eq!(
        w.queue.pending().len(),
        1,
        "its message is left to the new attempt"
    );
}

#[tokio::test]
async fn takes_no_more_jobs_than_slots() {
    let mut w = world(Script::Hang, 2);
    for _ in 0..3 {
        submit(&w).await;
    }
    let never = CancellationToken::new();
    assert_eq!(w.agent.step(&never).await.unwrap(), Step::Started(2));
    assert_eq!(w.agent.running(), 2);
    let queued = w
        .store
        .jobs()
        .iter()
        .filter(|j| j.state == JobState::Queued)
        .count();
    assert_eq!(queued, 1);
    let _ = &w.media;
}

#[tokio::test]
async fn completes_the_launch_hook_when_ready_and_the_termination_hook_after_draining() {
    let w = world(Script::Succeed, 1);
    let mut cfg = config(w.work.path(), 1);
    cfg.launch_hook = Some("rf-launch".into());
    cfg.termination_hook = Some("rf-terminate".into());
    let run = Running::start(&w, cfg);
    let launch = FleetCall::CompleteLifecycle {
        hook: "rf-launch".into(),
        instance: "i-test".into(),
        proceed: true,
    };
    let every = Duration::from_millis(20);
    let launched = eventually(Duration::from_secs(10), every, async || {
        w.fleet.calls().contains(&launch)
    });
    assert!(launched.await, "{:?}", w.fleet.calls());
    run.stop().await;
    assert_eq!(
        hook_calls(&w),
        vec![
            launch,
            FleetCall::CompleteLifecycle {
                hook: "rf-terminate".into(),
                instance: "i-test".into(),
                proceed: true
            }
        ]
    );
}

#[tokio::test]
async fn a_backlog_keeps_the_gate_engaged_between_jobs() {
    let mut w = world(Script::Succeed, 1);
    let first = submit(&w).await;
    let never = CancellationToken::new();
    assert_eq!(w.agent.step(&never).await.unwrap(), Step::Started(1));
    settle(&mut w).await;
    let second = submit(&w).await;
    assert!(w.health.engaged("i-test"), "still engaged between two jobs");
    assert_eq!(w.agent.step(&never).await.unwrap(), Step::Started(1));
    settle(&mut w).await;
    for id in [&first, &second] {
        assert_eq!(state(&w, id).await.state, JobState::Succeeded);
    }
    assert_eq!(w.agent.step(&never).await.unwrap(), Step::Idle);
    assert!(!w.health.engaged("i-test"));
}

#[tokio::test]
async fn a_worker_the_scaler_retires_takes_no_more_work() {
    let mut w = world(Script::Succeed, 1);
    report_heartbeat(&w).await;
    assert!(w.health.mark_retiring("i-test", now_ms()).await.unwrap());
    let id = submit_and_start(&mut w).await;
    assert_eq!(w.agent.closed(), Some("retiring"));
    let never = CancellationToken::new();
    for _ in 0..3 {
        assert_eq!(w.agent.step(&never).await.unwrap(), Step::Idle);
    }
    let job = state(&w, &id).await;
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0));
    assert_eq!(w.engine.calls(), 0);
}

#[tokio::test]
async fn a_busy_worker_cannot_be_marked_for_retirement() {
    let mut w = world(Script::Hang, 1);
    report_heartbeat(&w).await;
    submit(&w).await;
    let never = CancellationToken::new();
    assert_eq!(w.agent.step(&never).await.unwrap(), Step::Started(1));
    assert!(w.health.engaged("i-test"));
    assert!(
        !w.health.mark_retiring("i-test", now_ms()).await.unwrap(),
        "the gate is engaged while a job runs"
    );
    w.agent.drain().await;
    assert!(!w.health.engaged("i-test"), "idle again after the drain");
    assert!(w.health.mark_retiring("i-test", now_ms()).await.unwrap());
}

#[tokio::test]
async fn receives_that_are_not_attempts_never_exhaust_a_job() {
    let mut w = world(Script::Succeed, 1);
    let id = submit(&w).await;
    // Another worker runs the job under a live lease and holds this very message.
    let mut job = state(&w, &id).await;
    job.state = JobState::Running;
    job.attempts = 1;
    job.instance_id = Some("i-other".into());
    job.message_id = Some("1".into());
    job.lease_until = Some(now_ms() + 600_000);
    w.store.put_job(job.clone());
    let never = CancellationToken::new();
    for _ in 0..20 {
        w.agent.step(&never).await.unwrap();
        if w.queue.sent().len() == 2 {
            break;
        }
        // Each deferral hides the message until the lease would lapse; show it again now.
        w.queue.expire_visibility();
    }
    assert_eq!(
        w.queue.sent().len(),
        2,
        "the message was replaced by a fresh one"
    );
    assert_eq!(w.queue.pending().len(), 1, "and the old one deleted");
    assert_eq!(
        state(&w, &id).await,
        job,
        "the running attempt is untouched"
    );
    assert_eq!(w.engine.calls(), 0);
}

/// Media whose uploads take `delay`.
struct SlowMedia {
    inner: MemoryMedia,
    delay: Duration,
}

#[async_trait]
impl MediaFiles for SlowMedia {
    async fn put_file(&self, key: &str, path: &Path, ct: &str) -> renderfleet_core::Result<u64> {
        tokio::time::sleep(self.delay).await;
        self.inner.put_file(key, path, ct).await
    }
    async fn get_file(&self, key: &str, path: &Path, max: u64) -> renderfleet_core::Result<u64> {
        self.inner.get_file(key, path, max).await
    }
}

#[tokio::test]
async fn the_lease_stays_alive_through_a_slow_upload() {
    let mut w = world(Script::Succeed, 1);
    w.deps.media = Arc::new(SlowMedia {
        inner: w.media.clone(),
        // Longer than the lease (half the 6 s visibility timeout).
        delay: Duration::from_secs(5),
    });
    w.agent = new_agent(&w.deps, w.work.path(), 1, &w.shared);
    let id = submit_and_start(&mut w).await;
    let never = CancellationToken::new();
    let mut seen_lapsed = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while w.agent.running() > 0 {
        let job = state(&w, &id).await;
        if job.state == JobState::Running && job.lease_until.is_some_and(|l| l < now_ms()) {
            seen_lapsed = true;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job did not finish"
        );
        tokio::select! {
            _ = w.agent.step(&never) => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    assert!(!seen_lapsed, "the lease lapsed during the upload");
    let job = state(&w, &id).await;
    assert_eq!((job.state, job.attempts), (JobState::Succeeded, 1));
}

/// Instance metadata that says what a test wants.
struct Target(Mutex<Option<String>>);

#[async_trait]
impl TerminationNotice for Target {
    async fn pending(&self) -> renderfleet_core::Result<Option<String>> {
        Ok(None)
    }
    async fn target_state(&self) -> renderfleet_core::Result<Option<String>> {
        Ok(self.0.lock().unwrap().clone())
    }
}

#[tokio::test]
async fn a_warming_instance_completes_its_hook_and_takes_no_work_until_in_service() {
    let mut w = world(Script::Succeed, 1);
    let target = Arc::new(Target(Mutex::new(Some("Warmed:Stopped".into()))));
    w.deps.notice = target.clone();
    let mut cfg = config(w.work.path(), 1);
    cfg.launch_hook = Some("rf-launch".into());
    let id = submit(&w).await;
    let run = Running::start(&w, cfg);
    let every = Duration::from_millis(20);
    let warmed = eventually(Duration::from_secs(10), every, async || {
        !hook_calls(&w).is_empty()
    });
    assert!(warmed.await, "the warm-up hook was not completed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        state(&w, &id).await.state,
        JobState::Queued,
        "no work while warming"
    );
    // Put in service: the launch hook of that transition, then the job.
    *target.0.lock().unwrap() = Some("InService".into());
    let every = Duration::from_millis(50);
    let ran = eventually(Duration::from_secs(20), every, async || {
        state(&w, &id).await.state == JobState::Succeeded
    });
    assert!(ran.await, "the job never ran");
    assert_eq!(hook_calls(&w).len(), 2);
    run.stop().await;
    let _ = &w.agent;
}

#[tokio::test]
async fn the_health_state_is_published_once_per_change() {
    let w = world(Script::Succeed, 1);
    let mut cfg = config(w.work.path(), 1);
    cfg.heartbeat = Duration::from_millis(30);
    let run = Running::start(&w, cfg);
    let every = Duration::from_millis(20);
    let published = eventually(Duration::from_secs(10), every, async || {
        w.status.get("i-test").is_some()
    });
    assert!(published.await, "no health state published");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        w.health.get("i-test").is_some(),
        "heartbeats go to the liveness store"
    );
    let writes = w.status.writes();
    assert_eq!(
        writes.len(),
        1,
        "ten heartbeats, one state write: {writes:?}"
    );
    assert_eq!(writes[0].1.state, StatusState::Ready);
    run.stop().await;
    assert!(
        w.health.get("i-test").is_none(),
        "the heartbeat is withdrawn on exit"
    );
    assert_eq!(w.status.writes().len(), 1, "an idle drain writes nothing");
}

#[tokio::test]
async fn the_first_ready_state_waits_a_spread_and_a_throttled_write_is_retried() {
    use render_agent::worker::StatusWriter;
    let board = MemoryStatus::new();
    let spread = Duration::from_millis(400);
    let mut writer = StatusWriter::new(spread, Duration::from_millis(50));
    let ready = Some((StatusState::Ready, None));
    let start = std::time::Instant::now();
    let mut calls = 0;
    while board.get("i-1").is_none() {
        writer.observe(&board, "i-1", ready.clone()).await;
        calls += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(start.elapsed() <= spread * 2, "the ready write never came");
    }
    assert!(calls >= 1);
    board.throttle_next(2);
    let unhealthy = Some((StatusState::Unhealthy, Some("disk full".into())));
    let mut tries = 0;
    while board.get("i-1").unwrap().state != StatusState::Unhealthy {
        writer.observe(&board, "i-1", unhealthy.clone()).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        tries += 1;
        assert!(tries < 300, "the throttled write was never retried");
    }
    assert!(tries > 2, "a throttled write waits before its retry");
    assert_eq!(
        board.writes().len(),
        2,
        "one write per change, throttles retried"
    );
    for _ in 0..5 {
        writer.observe(&board, "i-1", unhealthy.clone()).await;
    }
    assert_eq!(board.writes().len(), 2, "no write without a change");
}

/// Log lines kept in memory as the agent writes them in production (JSON, fields flattened).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Logs the current thread's events here until the guard drops.
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// The `(event, job_id)` fields of the lines that have an `event`.
    fn events(&self) -> Vec<(String, String)> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter_map(|v| {
                let event = v["event"].as_str()?.to_owned();
                Some((event, v["job_id"].as_str().unwrap_or("").to_owned()))
            })
            .collect()
    }
}

#[tokio::test]
async fn job_events_are_logged_as_fields_with_the_job() {
    use renderfleet_core::events::{
        DELIVERY_DROPPED, JOB_CLAIMED, JOB_FAILED, JOB_HANDED_BACK, JOB_SUCCEEDED,
    };
    let cases = [
        (Script::Succeed, JOB_SUCCEEDED),
        (Script::InvalidInput, JOB_FAILED),
        (Script::FailRetryable, JOB_HANDED_BACK),
    ];
    for (script, outcome) in cases {
        let logs = Logs::default();
        let _capture = logs.capture();
        let mut w = world(script, 2);
        let id = submit(&w).await;
        w.queue.send(&JobMessage::new(id.clone())).await.unwrap();
        w.agent.step(&CancellationToken::new()).await.unwrap();
        settle(&mut w).await;
        // Which events, each with the job (a retried job is claimed and handed back again).
        let events: std::collections::BTreeSet<_> = logs.events().into_iter().collect();
        let expected = [JOB_CLAIMED, DELIVERY_DROPPED, outcome]
            .map(|e| (e.to_owned(), id.to_string()))
            .into();
        assert_eq!(events, expected, "{script:?}");
    }
}
