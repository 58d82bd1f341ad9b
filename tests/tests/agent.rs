//! The render agent on the local stack, under the faults it must survive: a worker killed
//! mid-render, scale-in within and beyond the drain grace period, a cancel while running, a job
//! that crashes the engine every time, and a render longer than the visibility timeout.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use renderctl::local::process;
use renderfleet_core::aws::SqsQueue;
use renderfleet_core::job::JobState;
use renderfleet_core::ports::{Fleet, QueueDepth};
use renderfleet_e2e::{Stack, alive, long_job};

const TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_render_loses_nothing_and_the_job_renders_once_more()
-> anyhow::Result<()> {
    let stack = Stack::start(&[
        "--visibility",
        "8s",
        "--boot-delay",
        "1s",
        "--tick",
        "1s",
        "--idle-window",
        "30s",
    ])?;
    let id = stack.submit(&long_job(40.0, "kill -9")).await?;
    let instance = stack.wait_running(&id, 0.05, TIMEOUT).await?;
    let agent = stack
        .agent(&instance)
        .expect("the agent of the running instance");
    anyhow::ensure!(
        process::signal(&agent, Signal::SIGKILL),
        "the agent {agent:?} no longer runs"
    );
    let done = stack
        .wait_terminal(std::slice::from_ref(&id), TIMEOUT)
        .await?;
    assert_eq!(done[0].state, JobState::Succeeded, "{:?}", done[0]);
    assert_eq!(done[0].attempts, 2);
    assert_eq!(stack.outputs_of(&id).await?.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_within_the_grace_period_lets_the_job_finish() -> anyhow::Result<()> {
    let stack = Stack::start(&["--boot-delay", "1s", "--tick", "1s", "--idle-window", "30s"])?;
    let id = stack.submit(&long_job(20.0, "drain")).await?;
    let instance = stack.wait_running(&id, 0.05, TIMEOUT).await?;
    let pid = stack.agent_pid(&instance).expect("an agent");
    stack.fleet().await.terminate(&instance, false).await?;
    let done = stack
        .wait_terminal(std::slice::from_ref(&id), TIMEOUT)
        .await?;
    assert_eq!(done[0].state, JobState::Succeeded, "{:?}", done[0]);
    assert_eq!(done[0].attempts, 1, "the draining agent finished it");
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        anyhow::ensure!(Instant::now() < deadline, "the drained agent did not exit");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stack.outputs_of(&id).await?.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_beyond_the_grace_period_hands_the_job_to_another_worker() -> anyhow::Result<()> {
    let stack = Stack::start(&[
        "--boot-delay",
        "1s",
        "--tick",
        "1s",
        "--idle-window",
        "30s",
        "--service-env",
        "RENDERFLEET_DRAIN_GRACE_SECS=1",
    ])?;
    let id = stack.submit(&long_job(40.0, "grace")).await?;
    let instance = stack.wait_running(&id, 0.05, TIMEOUT).await?;
    stack.fleet().await.terminate(&instance, false).await?;
    let done = stack
        .wait_terminal(std::slice::from_ref(&id), TIMEOUT)
        .await?;
    assert_eq!(done[0].state, JobState::Succeeded, "{:?}", done[0]);
    assert_eq!(
        done[0].attempts, 2,
        "released at the end of the grace period and rendered again"
    );
    let second = stack.job_record(&id).await?.instance_id;
    assert_ne!(
        second.as_deref(),
        Some(instance.as_str()),
        "finished elsewhere"
    );
    assert_eq!(stack.outputs_of(&id).await?.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_a_running_render_within_two_seconds() -> anyhow::Result<()> {
    let stack = Stack::start(&["--boot-delay", "1s", "--tick", "1s", "--idle-window", "30s"])?;
    let id = stack.submit(&long_job(40.0, "cancel me")).await?;
    stack.wait_running(&id, 0.02, TIMEOUT).await?;
    let asked = Instant::now();
    let (status, _) = stack.api.cancel(&id).await?;
    assert_eq!(status, 202);
    let done = stack
        .wait_terminal(std::slice::from_ref(&id), TIMEOUT)
        .await?;
    let took = asked.elapsed();
    assert_eq!(done[0].state, JobState::Cancelled);
    assert!(took < Duration::from_secs(3), "the cancel took {took:?}");
    assert!(stack.outputs_of(&id).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_crashes_the_engine_every_time_fails_after_its_attempts_and_leaves_no_message()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = dir.path().join("crashing-engine");
    std::fs::write(
        &engine,
        "#!/bin/sh\necho 'engine: segmentation fault' >&2\nexit 139\n",
    )?;
    std::fs::set_permissions(&engine, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let stack = Stack::start(&[
        "--boot-delay",
        "1s",
        "--tick",
        "1s",
        "--idle-window",
        "30s",
        "--visibility",
        "6s",
        "--service-env",
        "RENDERFLEET_ENGINE=external",
        "--service-env",
        &format!("RENDERFLEET_ENGINE_COMMAND={}", engine.display()),
        "--service-env",
        "RENDERFLEET_RETRY_BACKOFF_SECS=1",
    ])?;
    let id = stack.submit(&long_job(1.0, "poison")).await?;
    let done = stack
        .wait_terminal(std::slice::from_ref(&id), TIMEOUT)
        .await?;
    assert_eq!(done[0].state, JobState::Failed);
    let error = done[0].error.clone().expect("a reason");
    assert_eq!(error.code, "retries_exhausted", "{error:?}");
    assert_eq!(done[0].attempts, renderfleet_core::message::MAX_ATTEMPTS);
    // The agent settled the message itself: neither queue holds it (the dead-letter queue is
    // for messages received without attempts, and the sweeper settles those).
    let sdk = stack.sdk().await;
    for name in [&stack.names.queue, &stack.names.dlq] {
        let c = SqsQueue::connect(&sdk, name).await?.counters().await?;
        assert_eq!(c.visible + c.in_flight + c.delayed, 0, "{name}: {c:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_longer_than_the_visibility_timeout_is_rendered_once() -> anyhow::Result<()> {
    let stack = Stack::start(&[
        "--visibility",
        "6s",
        "--boot-delay",
        "1s",
        "--tick",
        "1s",
        "--idle-window",
        "30s",
        "--max-workers",
        "3",
    ])?;
    let id = stack
        .submit(&long_job(45.0, "longer than the timeout"))
        .await?;
    let started = Instant::now();
    let done = stack
        .wait_terminal(std::slice::from_ref(&id), TIMEOUT)
        .await?;
    assert!(
        started.elapsed() > Duration::from_secs(6),
        "the render outlasted the visibility timeout"
    );
    assert_eq!(done[0].state, JobState::Succeeded);
    assert_eq!(done[0].attempts, 1);
    assert_eq!(stack.claims_of(&id), 1);
    assert_eq!(stack.outputs_of(&id).await?.len(), 1);
    let _ = stack.fleet().await.describe().await?;
    Ok(())
}
