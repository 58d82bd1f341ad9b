//! The job server on the local stack: a 202 is a promise even when the server dies between
//! storing the job and enqueueing it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use renderfleet_core::job::JobState;
use renderfleet_e2e::{Stack, bin_dir, free_port};
use serde_json::json;

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
    let port = free_port();
    let mut doomed = Command::new(bin_dir().join("job-server"))
        .envs(stack.service_env())
        .env("RENDERFLEET_LISTEN", format!("127.0.0.1:{port}"))
        .env("RENDERFLEET_FAILPOINT", "after_job_write")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the second job server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spec = json!({
        "output": { "width": 320, "height": 240, "fps": 10 },
        "scenes": [ { "duration": 1.0, "background": { "color": "#223344" }, "texts": [ { "text": "survivor" } ] } ]
    });
    let answer = stack
        .http
        .post(format!("{base}/v1/jobs"))
        .bearer_auth(&stack.api_key)
        .json(&spec)
        .send()
        .await;
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
