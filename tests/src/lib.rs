//! Harness for the end-to-end tests: start a whole local stack in a private state directory on
//! free ports (through `renderctl dev up`, the same path users take), talk to it over HTTP and the
//! AWS APIs, check outputs with ffprobe, and stop it by pid when the test ends, pass or fail.

pub mod runtime_api;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use renderfleet_core::api::JobView;
use renderfleet_core::aws::{AsgFleet, S3Media};
use renderfleet_core::names::ResourceNames;
use serde::Deserialize;
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

#[derive(Debug, Deserialize)]
struct Recorded {
    pid: u32,
}

#[derive(Debug, Deserialize)]
struct StackFile {
    env: String,
    region: String,
    api_url: String,
    endpoint: String,
    api_key: String,
    moto: Recorded,
    job_server: Recorded,
    scaler: Recorded,
    supervisor: Recorded,
}

#[derive(Debug, Default, Deserialize)]
struct AgentsFile {
    agents: std::collections::BTreeMap<String, Recorded>,
}

/// A running local stack, stopped on drop.
#[derive(Debug)]
pub struct Stack {
    pub state_dir: tempfile::TempDir,
    pub api_url: String,
    pub api_key: String,
    pub endpoint: String,
    pub names: ResourceNames,
    pub region: String,
    service_pids: Vec<u32>,
    pub http: reqwest::Client,
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
        let text = std::fs::read_to_string(state_dir.path().join("stack.json"))?;
        let f: StackFile = serde_json::from_str(&text)?;
        Ok(Self {
            api_url: f.api_url,
            api_key: f.api_key,
            endpoint: f.endpoint,
            names: ResourceNames::for_env(&f.env).map_err(anyhow::Error::msg)?,
            region: f.region,
            service_pids: vec![f.moto.pid, f.job_server.pid, f.scaler.pid, f.supervisor.pid],
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            state_dir,
            stopped: false,
        })
    }

    pub fn state_path(&self) -> &Path {
        self.state_dir.path()
    }

    /// Pids of the agents the supervisor runs now.
    pub fn agent_pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.state_path().join("agents.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<AgentsFile>(&t).ok())
            .unwrap_or_default()
            .agents
            .values()
            .map(|r| r.pid)
            .collect()
    }

    pub fn service_pids(&self) -> &[u32] {
        &self.service_pids
    }

    pub async fn sdk(&self) -> aws_config_shim::SdkConfig {
        renderfleet_core::aws::emulator_config(&self.endpoint, &self.region).await
    }

    pub async fn fleet(&self) -> AsgFleet {
        AsgFleet::new(&self.sdk().await, &self.names.asg)
    }

    pub async fn media(&self) -> S3Media {
        S3Media::new(&self.sdk().await, &self.names.bucket)
    }

    /// `POST /v1/jobs` with `body`; returns the status and the JSON answer.
    pub async fn post_job(&self, body: &Value) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .post(format!("{}/v1/jobs", self.api_url))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    pub async fn get_job(&self, id: &str) -> anyhow::Result<JobView> {
        let resp = self
            .http
            .get(format!("{}/v1/jobs/{id}", self.api_url))
            .bearer_auth(&self.api_key)
            .send()
            .await?
            .error_for_status()?;
        Ok(resp.json().await?)
    }

    /// Stops the stack with `renderctl dev down`.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let out = Command::new(bin_dir().join("renderctl"))
            .args(["dev", "down", "--state-dir"])
            .arg(self.state_path())
            .output()?;
        if !out.status.success() {
            bail!(
                "renderctl dev down failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
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
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next().unwrap_or("").to_owned())
        })
        .is_some_and(|st| st != "Z" && st != "X")
}

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

/// Downloads `url` to `path`.
pub async fn download(http: &reqwest::Client, url: &str, path: &Path) -> anyhow::Result<u64> {
    let bytes = http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    std::fs::write(path, &bytes)?;
    Ok(bytes.len() as u64)
}

impl Stack {
    /// The environment a service of this stack runs with (the emulator, dummy credentials, the
    /// environment name).
    pub fn service_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("RENDERFLEET_ENV".into(), self.names.env.clone()),
        ]
    }

    /// `GET /v1/jobs` of the dev tenant.
    pub async fn list_jobs(&self) -> anyhow::Result<Vec<JobView>> {
        let resp = self
            .http
            .get(format!("{}/v1/jobs?limit=100", self.api_url))
            .bearer_auth(&self.api_key)
            .send()
            .await?
            .error_for_status()?;
        let list: renderfleet_core::api::JobList = resp.json().await?;
        Ok(list.jobs)
    }

    /// Waits for every job in `ids` to reach a terminal state.
    pub async fn wait_terminal(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> anyhow::Result<Vec<JobView>> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut views = Vec::new();
            for id in ids {
                views.push(self.get_job(id).await?);
            }
            if views.iter().all(|v| v.state.is_terminal()) {
                return Ok(views);
            }
            if Instant::now() > deadline {
                bail!(
                    "jobs unfinished after {} s: {:?}",
                    timeout.as_secs(),
                    views.iter().map(|v| (&v.id, v.state)).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
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

    /// The pid of the agent on `instance`.
    pub fn agent_pid(&self, instance: &str) -> Option<u32> {
        std::fs::read_to_string(self.state_path().join("agents.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<AgentsFile>(&t).ok())
            .and_then(|a| a.agents.get(instance).map(|r| r.pid))
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

    /// How many times agents claimed `id`, from their logs.
    pub fn claims_of(&self, id: &str) -> usize {
        let dir = self.state_path().join("logs/agents");
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .map(|log| {
                        log.lines()
                            .filter(|l| l.contains("job claimed") && l.contains(id))
                            .count()
                    })
                    .sum()
            })
            .unwrap_or(0)
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

/// A job spec whose render takes several seconds on two cores: 1080p, `seconds` long.
pub fn long_job(seconds: f64, title: &str) -> Value {
    serde_json::json!({
        "output": { "width": 1920, "height": 1080, "fps": 30 },
        "scenes": [ { "duration": seconds, "background": { "color": "#14213d" },
                      "texts": [ { "text": title, "size": 0.1 } ] } ]
    })
}
