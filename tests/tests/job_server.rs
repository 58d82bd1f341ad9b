//! The job server on the local stack: a 202 is a promise even when the server dies between
//! storing the job and enqueueing it, and a client's retry repairs a server that died between
//! recording its Idempotency-Key and storing the job.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use renderfleet_core::job::JobState;
use renderfleet_e2e::{Api, Stack, bin_dir, free_port};
use serde_json::json;

/// A second job server of `stack`, set to abort at `failpoint`, and its API once it answers.
async fn doomed_server(stack: &Stack, failpoint: &str) -> anyhow::Result<(Child, Api)> {
    let port = free_port();
    let doomed = Command::new(bin_dir().join("job-server"))
        .envs(stack.service_env())
        .env("RENDERFLEET_LISTEN", format!("127.0.0.1:{port}"))
        .env("RENDERFLEET_FAILPOINT", failpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let doomed_api = Api::new(&format!("http://127.0.0.1:{port}"), &stack.recorded.api_key)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !doomed_api.healthy().await {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the second job server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((doomed, doomed_api))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_stores_the_job_of_a_server_that_died_after_recording_its_key() -> anyhow::Result<()>
{
    let stack = Stack::start(&["--boot-delay", "1s", "--tick", "1s", "--idle-window", "3s"])?;
    let (mut doomed, doomed_api) = doomed_server(&stack, "after_key_write").await?;
    let spec = serde_json::to_vec(&json!({
        "output": { "width": 320, "height": 240, "fps": 10 },
        "scenes": [ { "duration": 1.0, "background": { "color": "#334422" }, "texts": [ { "text": "repaired" } ] } ]
    }))?;
    let key = Some("retry-after-crash");
    let answer = doomed_api.post(&spec, key).await;
    assert!(
        answer.is_err(),
        "the server died before answering: {answer:?}"
    );
    assert!(
        !doomed.wait()?.success(),
        "the server aborted at the failpoint"
    );
    assert!(
        stack.list_jobs().await?.is_empty(),
        "only the key was written"
    );

    // The client retries, with the same key and body, against a healthy server.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = stack.api.post(&spec, key).await?;
        assert_eq!(status, 202);
        ids.push(body["id"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(ids[0], ids[1], "one key, one job");
    let stored = stack.list_jobs().await?;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        stored[0].id.to_string(),
        ids[0],
        "the job has the id its key recorded"
    );
    let done = stack
        .wait_terminal(
            std::slice::from_ref(&stored[0].id),
            Duration::from_secs(120),
        )
        .await?;
    assert_eq!(done[0].state, JobState::Succeeded, "{:?}", done[0]);
    assert_eq!(done[0].attempts, 1, "enqueued once, rendered once");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_stored_by_a_server_that_died_before_enqueueing_is_still_rendered_once()
-> anyhow::Result<()> {
    let stack = Stack::start(&[
        "--boot-delay",
        "1s",
        "--tick",
        "1s",
        "--idle-window",
        "3s",
        "--service-env",
        "RENDERFLEET_SWEEP_SECS=1",
        "--service-env",
        "RENDERFLEET_SWEEP_AFTER_SECS=2",
    ])?;
    // A second server of the same stack, set to abort right after writing a job.
    let (mut doomed, doomed_api) = doomed_server(&stack, "after_job_write").await?;
    let spec = json!({
        "output": { "width": 320, "height": 240, "fps": 10 },
        "scenes": [ { "duration": 1.0, "background": { "color": "#223344" }, "texts": [ { "text": "survivor" } ] } ]
    });
    let answer = doomed_api.post(&serde_json::to_vec(&spec)?, None).await;
    assert!(
        answer.is_err(),
        "the server died before answering: {answer:?}"
    );
    let status = doomed.wait()?;
    assert!(!status.success(), "the server aborted at the failpoint");

    let stored = stack.list_jobs().await?;
    assert_eq!(stored.len(), 1, "the job was written before the crash");
    let id = stored[0].id.clone();
    assert_eq!(stored[0].state, JobState::Queued);

    let done = stack
        .wait_terminal(std::slice::from_ref(&id), Duration::from_secs(120))
        .await?;
    assert_eq!(done[0].state, JobState::Succeeded, "{:?}", done[0]);
    assert_eq!(done[0].attempts, 1);
    let outputs = stack
        .media()
        .await
        .list_keys(&format!("outputs/dev/{id}/"))
        .await?;
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    Ok(())
}
