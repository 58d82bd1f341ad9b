//! Harness for the end-to-end tests: start a whole local stack in a private state directory on
//! free ports (through `renderctl dev up`, the same path users take), talk to it over HTTP (with
//! renderctl's client) and the AWS APIs, check outputs with ffprobe, and stop it by pid when the
//! test ends, pass or fail (with renderctl's `dev down`).

pub mod runtime_api;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
pub use renderctl::client::Api;
use renderctl::local::process::Recorded;
use renderctl::local::stack;
use renderfleet_core::api::JobView;
use renderfleet_core::aws::{AsgFleet, S3Media};
use renderfleet_core::events;
use renderfleet_core::names::ResourceNames;
use serde_json::Value;

pub use renderfleet_core::testkit::repo_root;

/// Where the workspace's binaries are: `RENDERFLEET_BIN_DIR`, or next to the test executable's
/// `deps/` directory.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RENDERFLEET_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// A running local stack, stopped on drop.
#[derive(Debug)]
pub struct Stack {
    pub state_dir: tempfile::TempDir,
    /// The resolved names, from `stack.json`.
    pub names: ResourceNames,
    /// The job server's REST API, as the dev tenant.
    pub api: Api,
    /// What `renderctl dev up` recorded in `stack.json`.
    pub recorded: stack::Stack,
    stopped: bool,
}

impl Stack {
    /// Starts a stack with `renderctl dev up` and the given extra arguments.
    pub fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let state_dir = tempfile::Builder::new().prefix("rf-e2e-").tempdir()?;
        let moto = renderfleet_core::testkit::moto_bin();
        let out = Command::new(bin_dir().join("renderctl"))
            .args(["dev", "up", "--moto-port", "0", "--api-port", "0"])
            .arg("--state-dir")
            .arg(state_dir.path())
            .arg("--moto-bin")
            .arg(&moto)
            .arg("--bin-dir")
            .arg(bin_dir())
            .args(extra)
            .output()
            .context("running renderctl dev up")?;
        if !out.status.success() {
            bail!(
                "renderctl dev up failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let recorded = stack::load_stack(state_dir.path())?;
        Ok(Self {
            names: recorded.resource_names()?,
            api: Api::new(&recorded.api_url, &recorded.api_key)?,
            recorded,
            state_dir,
            stopped: false,
        })
    }

    pub fn state_path(&self) -> &Path {
        self.state_dir.path()
    }

    /// Pids of the agents the supervisor runs now.
    pub fn agent_pids(&self) -> Vec<u32> {
        let agents = stack::read_agents(self.state_path()).agents;
        agents.values().map(|r| r.pid).collect()
    }

    /// Pids of the emulator, the job server, the scaler and the fleet supervisor, in that order.
    pub fn service_pids(&self) -> Vec<u32> {
        let r = &self.recorded;
        [&r.moto, &r.job_server, &r.scaler, &r.supervisor]
            .map(|rec| rec.pid)
            .to_vec()
    }

    pub async fn sdk(&self) -> aws_config_shim::SdkConfig {
        renderfleet_core::aws::emulator_config(&self.recorded.endpoint, &self.recorded.region).await
    }

    pub async fn fleet(&self) -> AsgFleet {
        AsgFleet::new(&self.sdk().await, &self.names.asg)
    }

    pub async fn media(&self) -> S3Media {
        S3Media::new(&self.sdk().await, &self.names.bucket)
    }

    /// `POST /v1/jobs` with `body`; returns the status and the JSON answer.
    pub async fn post_job(&self, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.api.post(&serde_json::to_vec(body)?, None).await
    }

    pub async fn get_job(&self, id: &str) -> anyhow::Result<JobView> {
        self.api.get(id).await
    }

    /// Stops the stack as `renderctl dev down` does: every process it recorded, by pid.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        stack::down(self.state_dir.path()).context("stopping the stack")?;
        Ok(())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping the test stack: {e:#}");
        }
    }
}

/// Re-exported so tests need not depend on aws-config themselves.
pub mod aws_config_shim {
    pub use aws_config::SdkConfig;
}

/// Whether `pid` runs (zombies do not count).
pub use renderctl::local::process::is_alive as alive;

/// Polls `f` every `every` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(
    timeout: Duration,
    every: Duration,
    what: &str,
    mut f: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {} s waiting for {what}", timeout.as_secs());
        }
        tokio::time::sleep(every).await;
    }
}

/// What ffprobe says of a video file.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub video_codec: String,
    pub width: u32,
    pub height: u32,
    pub pix_fmt: String,
    pub audio_codec: Option<String>,
    pub duration: f64,
}

/// Probes `path` with ffprobe, read by the render agent's own parser of ffprobe's answer.
pub fn ffprobe(path: &Path) -> anyhow::Result<Probe> {
    use render_agent::engine::ffmpeg::{probe_command, read_probe};
    let out = probe_command(Path::new("ffprobe"), path)
        .output()
        .context("running ffprobe")?;
    let info = read_probe(&out).with_context(|| format!("ffprobe {}", path.display()))?;
    let video = info.stream("video").context("no video stream")?;
    Ok(Probe {
        video_codec: video.codec_name.clone(),
        width: video.width.unwrap_or(0),
        height: video.height.unwrap_or(0),
        pix_fmt: video.pix_fmt.clone().unwrap_or_default(),
        audio_codec: info
            .stream("audio")
            .map(|a| a.codec_name.clone())
            .filter(|c| !c.is_empty()),
        duration: info.duration,
    })
}

impl Stack {
    /// The environment a service of this stack runs with (the emulator, dummy credentials, the
    /// environment name).
    pub fn service_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.recorded.endpoint.clone()),
            ("AWS_REGION".into(), self.recorded.region.clone()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("RENDERFLEET_ENV".into(), self.names.env.clone()),
        ]
    }

    /// `GET /v1/jobs` of the dev tenant.
    pub async fn list_jobs(&self) -> anyhow::Result<Vec<JobView>> {
        self.api.list(100).await
    }

    /// Waits for every job in `ids` to reach a terminal state.
    pub async fn wait_terminal(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> anyhow::Result<Vec<JobView>> {
        self.api
            .wait_terminal(ids, Duration::from_millis(300), timeout)
            .await
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Stack {
    /// The stack's jobs table.
    pub async fn table(&self) -> renderfleet_core::aws::DynamoStore {
        renderfleet_core::aws::DynamoStore::new(&self.sdk().await, &self.names.table)
    }

    /// The job as the table holds it (with the instance running it).
    pub async fn job_record(&self, id: &str) -> anyhow::Result<renderfleet_core::job::Job> {
        use renderfleet_core::ports::JobStore;
        let store = self.table().await;
        let id = renderfleet_core::ids::JobId::parse(id).context("a job id")?;
        store.get(&id).await?.context("no such job")
    }

    /// The agent on `instance`, as the supervisor recorded it.
    pub fn agent(&self, instance: &str) -> Option<Recorded> {
        stack::read_agents(self.state_path())
            .agents
            .remove(instance)
    }

    /// The pid of the agent on `instance`.
    pub fn agent_pid(&self, instance: &str) -> Option<u32> {
        self.agent(instance).map(|r| r.pid)
    }

    /// Submits `spec` and returns the job id.
    pub async fn submit(&self, spec: &Value) -> anyhow::Result<String> {
        let (status, body) = self.post_job(spec).await?;
        anyhow::ensure!(status == 202, "submit answered {status}: {body}");
        Ok(body["id"].as_str().context("an id")?.to_owned())
    }

    /// Waits until the job runs with at least `progress` done; returns the instance running it.
    pub async fn wait_running(
        &self,
        id: &str,
        progress: f64,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job_record(id).await?;
            if job.state == renderfleet_core::job::JobState::Running && job.progress >= progress {
                return job.instance_id.context("a running job has an instance");
            }
            anyhow::ensure!(
                !job.state.is_terminal(),
                "the job ended {} before it was caught running",
                job.state
            );
            anyhow::ensure!(
                Instant::now() < deadline,
                "the job did not run within {} s",
                timeout.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How many times agents claimed `id`: their logs' `job.claimed` events for it.
    pub fn claims_of(&self, id: &str) -> usize {
        let dir = self.state_path().join("logs/agents");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .map(|log| count_events(&log, events::JOB_CLAIMED, id))
            .sum()
    }

    /// Output objects of `id`.
    pub async fn outputs_of(&self, id: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .media()
            .await
            .list_keys(&format!("outputs/dev/{id}/"))
            .await?)
    }
}

/// The JSON objects of a log (tracing's JSON lines); other lines are passed over.
pub fn log_events(log: &str) -> impl Iterator<Item = Value> + '_ {
    log.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
}

/// How many `event` events about `job` a log holds.
pub fn count_events(log: &str, event: &str, job: &str) -> usize {
    log_events(log)
        .filter(|e| e["event"] == event && job_of(e) == Some(job))
        .count()
}

/// The job a log event is about: its `job_id` field, or its span's.
pub fn job_of(event: &Value) -> Option<&str> {
    event
        .get("job_id")
        .or_else(|| event.get("span")?.get("job_id"))
        .and_then(Value::as_str)
}

/// A job spec whose render takes several seconds on two cores: 1080p, `seconds` long.
pub fn long_job(seconds: f64, title: &str) -> Value {
    serde_json::json!({
        "output": { "width": 1920, "height": 1080, "fps": 30 },
        "scenes": [ { "duration": seconds, "background": { "color": "#14213d" },
                      "texts": [ { "text": title, "size": 0.1 } ] } ]
    })
}

#[cfg(test)]
mod tests {
    use super::count_events;
    use renderfleet_core::events::{JOB_CLAIMED, JOB_SUCCEEDED};

    #[test]
    fn events_are_counted_by_their_name_and_job_not_by_the_message() {
        let log = [
            r#"{"event":"job.claimed","message":"job claimed","job_id":"job_1"}"#,
            r#"{"event":"job.claimed","message":"reworded","span":{"job_id":"job_1"}}"#,
            r#"{"event":"job.claimed","message":"job claimed","job_id":"job_2"}"#,
            r#"{"message":"job claimed","job_id":"job_1"}"#,
            "thread 'main' panicked: job claimed job_1",
            r#"{"event":"job.succeeded","job_id":"job_1"}"#,
        ]
        .join("\n");
        assert_eq!(count_events(&log, JOB_CLAIMED, "job_1"), 2);
        assert_eq!(count_events(&log, JOB_CLAIMED, "job_2"), 1);
        assert_eq!(count_events(&log, JOB_SUCCEEDED, "job_1"), 1);
        assert_eq!(count_events(&log, JOB_CLAIMED, "job_3"), 0);
    }
}
