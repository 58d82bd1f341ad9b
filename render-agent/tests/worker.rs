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
    FleetCall, MemoryFleet, MemoryHealth, MemoryMedia, MemoryMetrics, MemoryQueue, MemoryStore,
    sample_job,
};
use renderfleet_core::ids::{AssetId, JobId};
use renderfleet_core::job::{Job, JobState};
use renderfleet_core::message::JobMessage;
use renderfleet_core::ports::{Asset, AssetStore, JobQueue, JobStore};
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
    async fn self_check(&self, _: &Path) -> Result<(), String> {
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
    let deps = Deps {
        source: Arc::new(queue.clone()),
        ledger: Arc::new(store.clone()),
        media: Arc::new(media.clone()),
        assets: Arc::new(store.clone()),
        protection: Arc::new(fleet.clone()),
        health: Arc::new(MemoryHealth::new()),
        metrics: Arc::new(MemoryMetrics::new()),
        engine: engine.clone(),
        prober: Arc::new(FixedProbe),
        lifecycle: Arc::new(fleet.clone()),
    };
    let shared = Arc::new(Mutex::new(Shared::default()));
    let agent = Agent::new(
        deps.clone(),
        Arc::new(config(work.path(), slots)),
        "i-test".into(),
        shared.clone(),
    );
    World {
        store,
        queue,
        media,
        fleet,
        engine,
        agent,
        shared,
        work,
        deps,
    }
}

async fn submit(w: &World) -> JobId {
    let job = sample_job("acme", now_ms());
    w.store.create(&job, None).await.unwrap();
    w.queue
        .send(&JobMessage::new(job.id.clone()))
        .await
        .unwrap();
    job.id
}

async fn state(w: &World, id: &JobId) -> Job {
    w.store.get(id).await.unwrap().unwrap()
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
async fn renders_a_job_uploads_once_and_releases_protection_when_idle() {
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
    assert_eq!(w.agent.step(&never).await.unwrap(), Step::Idle);
    let calls = w.fleet.calls();
    assert_eq!(
        calls,
        vec![
            FleetCall::Protect {
                instance: "i-test".into(),
                protected: true
            },
            FleetCall::Protect {
                instance: "i-test".into(),
                protected: false
            },
        ]
    );
    assert_eq!(
        std::fs::read_dir(w.work.path()).unwrap().count(),
        0,
        "the work directory is removed"
    );
    assert!(w.shared.lock().unwrap().seconds_per_unit.is_some());
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
    let id = submit(&w).await;
    let never = CancellationToken::new();
    w.agent.step(&never).await.unwrap();
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
    w.store.create(&job, None).await.unwrap();
    w.queue
        .send(&JobMessage::new(job.id.clone()))
        .await
        .unwrap();
    let never = CancellationToken::new();
    w.agent.step(&never).await.unwrap();
    settle(&mut w).await;
    let done = state(&w, &job.id).await;
    assert_eq!(done.state, JobState::Failed);
    assert!(done.error.unwrap().message.contains("never uploaded"));
    assert_eq!(w.engine.calls(), 0);
}

#[tokio::test]
async fn an_engine_crash_hands_the_job_back_then_fails_it_after_the_last_delivery() {
    let mut w = world(Script::FailRetryable, 1);
    let id = submit(&w).await;
    let never = CancellationToken::new();
    w.agent.step(&never).await.unwrap();
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
    // Later deliveries, each after its backoff, until the queue's maximum.
    for attempt in 2..=5 {
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
}

#[tokio::test]
async fn a_cancel_while_running_stops_the_engine_within_the_progress_interval() {
    let mut w = world(Script::Hang, 1);
    let id = submit(&w).await;
    let never = CancellationToken::new();
    w.agent.step(&never).await.unwrap();
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
    let id = submit(&w).await;
    let never = CancellationToken::new();
    w.agent.step(&never).await.unwrap();
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
    assert_eq!(
        w.fleet.calls().last(),
        Some(&FleetCall::Protect {
            instance: "i-test".into(),
            protected: false
        })
    );
}

#[tokio::test]
async fn a_job_taken_over_elsewhere_is_stopped_without_writing() {
    let mut w = world(Script::Hang, 1);
    let id = submit(&w).await;
    let never = CancellationToken::new();
    w.agent.step(&never).await.unwrap();
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
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(render_agent::run(
        w.deps.clone(),
        cfg,
        "i-test".into(),
        shutdown.clone(),
    ));
    let launch = FleetCall::CompleteLifecycle {
        hook: "rf-launch".into(),
        instance: "i-test".into(),
        proceed: true,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !w.fleet.calls().contains(&launch) {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            w.fleet.calls()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    run.await.unwrap().unwrap();
    let hooks: Vec<_> = w
        .fleet
        .calls()
        .into_iter()
        .filter(|c| matches!(c, FleetCall::CompleteLifecycle { .. }))
        .collect();
    assert_eq!(
        hooks,
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
