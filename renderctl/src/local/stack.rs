//! `renderctl dev up | down | status`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use renderfleet_core::names::ResourceNames;
use serde::{Deserialize, Serialize};

use super::process::{self, Recorded};
use super::provision::{self, Plan};
use crate::settings::EnvFile;

/// Settings of `dev up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub state_dir: PathBuf,
    pub env: String,
    pub region: String,
    /// The emulator's executable (`moto_server` from the project's virtualenv).
    pub moto_bin: PathBuf,
    /// Where `job-server`, `scaler`, `render-agent` and `renderctl` are.
    pub bin_dir: PathBuf,
    /// 0 picks a free port.
    pub moto_port: u16,
    /// 0 picks a free port.
    pub api_port: u16,
    pub max_workers: u32,
    /// Jobs each agent renders at once.
    pub slots: u32,
    /// Simulated time from an instance entering service to its agent starting.
    pub boot_delay: Duration,
    pub tick: Duration,
    pub idle_window: Duration,
    /// The queue's visibility timeout, and the agents' (`RENDERFLEET_VISIBILITY_SECS`).
    pub visibility: Duration,
    /// Extra environment for every service (e.g. log levels).
    pub extra_env: Vec<(String, String)>,
    /// AWS's rules between the services and the emulator; `None` for the plain emulator.
    pub aws_rules: Option<RulesOptions>,
}

/// The AWS-rules mode: the proxy and the fleet it models.
#[derive(Clone, Debug)]
pub struct RulesOptions {
    /// `scripts/reliability/faultproxy.py`, run with `python3 ... --rules`.
    pub proxy: PathBuf,
    pub model_workers: u32,
}

/// The launch hook the AWS-rules proxy emulates (Terraform's render_fleet names it the same).
pub fn launch_hook(names: &ResourceNames) -> String {
    format!("renderfleet-{}-launch", names.env)
}

/// The scaler's policy on the local stack: the boot time is the simulated one, the wait target
/// is that boot plus two ticks, and there is no per-instance billing minimum to respect, so idle
/// workers go after the idle window. Stored in SSM as well, so `renderctl` can show it.
fn scaler_settings(opts: &UpOptions) -> Vec<(String, String)> {
    let boot = opts.boot_delay.as_secs_f64();
    let tick = opts.tick.as_secs_f64();
    let idle = opts.idle_window.as_secs_f64();
    [
        ("RENDERFLEET_MIN_WORKERS", "0".to_string()),
        ("RENDERFLEET_MAX_WORKERS", opts.max_workers.to_string()),
        ("RENDERFLEET_SLOTS_PER_WORKER", opts.slots.to_string()),
        ("RENDERFLEET_BOOT_SECS", format!("{:.1}", boot + 0.5)),
        (
            "RENDERFLEET_TARGET_WAIT_SECS",
            format!("{:.1}", boot + 2.0 * tick),
        ),
        ("RENDERFLEET_TICK_SECS", format!("{tick:.1}")),
        ("RENDERFLEET_SCALE_IN_WINDOW_SECS", format!("{idle:.1}")),
        ("RENDERFLEET_WORKER_IDLE_SECS", format!("{:.1}", idle / 2.0)),
        ("RENDERFLEET_IDLE_TO_ZERO_SECS", format!("{idle:.1}")),
        ("RENDERFLEET_MIN_BILLED_SECS", "0".to_string()),
        ("RENDERFLEET_HEARTBEAT_STALE_SECS", "30".to_string()),
        ("RENDERFLEET_BOOT_TIMEOUT_SECS", "120".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A running stack, as recorded in `stack.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stack {
    pub env: String,
    pub region: String,
    pub api_url: String,
    pub endpoint: String,
    pub api_key: String,
    pub moto: Recorded,
    pub job_server: Recorded,
    pub scaler: Recorded,
    pub supervisor: Recorded,
    /// The AWS-rules proxy the services reach the emulator through, when the mode is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Recorded>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
}

impl Stack {
    fn services(&self) -> Vec<(&'static str, &Recorded)> {
        let mut out = vec![
            ("fleet supervisor", &self.supervisor),
            ("scaler", &self.scaler),
            ("job server", &self.job_server),
        ];
        out.extend(self.proxy.iter().map(|p| ("AWS-rules proxy", p)));
        out.push(("moto", &self.moto));
        out
    }

    pub fn all_running(&self) -> bool {
        self.services().iter().all(|(_, r)| process::is_ours(r))
    }
}

/// Agents the supervisor runs, as it records them in `agents.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AgentTable {
    pub agents: BTreeMap<String, Recorded>,
}

pub fn stack_file(state_dir: &Path) -> PathBuf {
    state_dir.join("stack.json")
}
pub fn agents_file(state_dir: &Path) -> PathBuf {
    state_dir.join("agents.json")
}
pub fn logs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

pub fn read_stack(state_dir: &Path) -> Option<Stack> {
    let text = std::fs::read_to_string(stack_file(state_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn read_agents(state_dir: &Path) -> AgentTable {
    std::fs::read_to_string(agents_file(state_dir))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Writes `contents` to `path` atomically (write, then rename).
pub fn write_atomic(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Holds the state directory's lock, so two `dev up`/`dev down` never interleave.
fn lock(state_dir: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let f = File::create(state_dir.join("lock"))?;
    f.lock().context("locking the state directory")?;
    Ok(f)
}

/// Starts the stack, or reports the one already running. Returns once every service answers.
pub async fn up(opts: &UpOptions) -> anyhow::Result<(Stack, bool)> {
    let _lock = lock(&opts.state_dir)?;
    if let Some(existing) = read_stack(&opts.state_dir) {
        if existing.all_running() {
            return Ok((existing, false));
        }
        eprintln!(
            "renderctl: a previous stack in {} is partly gone; stopping what is left",
            opts.state_dir.display()
        );
        stop_stack(&opts.state_dir, &existing);
    }
    let names = ResourceNames::for_env(&opts.env).map_err(anyhow::Error::msg)?;
    let logs = logs_dir(&opts.state_dir);
    std::fs::create_dir_all(logs.join("agents"))?;
    for bin in ["job-server", "scaler", "render-agent", "renderctl"] {
        let p = opts.bin_dir.join(bin);
        if !p.is_file() {
            bail!(
                "{} is missing: build the workspace first (cargo build --workspace)",
                p.display()
            );
        }
    }
    if !opts.moto_bin.is_file() {
        bail!(
            "{} is missing: scripts/dev-up installs it into the project virtualenv",
            opts.moto_bin.display()
        );
    }

    let mut started: Vec<Recorded> = Vec::new();
    let result = start_all(opts, &names, &mut started).await;
    match result {
        Ok(stack) => Ok((stack, true)),
        Err(e) => {
            for rec in started.iter().rev() {
                process::stop(rec, Duration::from_secs(10));
            }
            Err(e.context(format!(
                "the stack did not start; logs are in {}",
                logs.display()
            )))
        }
    }
}

async fn start_all(
    opts: &UpOptions,
    names: &ResourceNames,
    started: &mut Vec<Recorded>,
) -> anyhow::Result<Stack> {
    let logs = logs_dir(&opts.state_dir);
    let moto_port = if opts.moto_port == 0 {
        process::free_port()?
    } else {
        opts.moto_port
    };
    let endpoint = format!("http://127.0.0.1:{moto_port}");
    ensure_port_free(moto_port, "--moto-port")?;
    let moto = process::spawn_detached(
        &opts.moto_bin,
        &[
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            moto_port.to_string(),
        ],
        &[],
        &logs.join("moto.log"),
    )?;
    started.push(moto.clone());
    wait_http(
        &format!("{endpoint}/moto-api/"),
        Duration::from_secs(60),
        &moto,
    )
    .await
    .context("waiting for the moto server")?;

    let scaler_settings = scaler_settings(opts);
    let policy = serde_json::Value::Object(
        scaler_settings
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    );
    let plan = Plan {
        names: names.clone(),
        max_workers: opts.max_workers,
        visibility_secs: opts.visibility.as_secs().max(1),
        policy,
        dev_tenant: "dev".into(),
    };
    let provisioned = provision::provision(&endpoint, &opts.region, &plan)
        .await
        .context("creating the resources")?;

    // The services reach the emulator directly, or through the AWS-rules proxy.
    let proxy = match &opts.aws_rules {
        Some(rules) => Some(start_rules_proxy(opts, rules, names, &endpoint, started).await?),
        None => None,
    };
    let services_endpoint = proxy
        .as_ref()
        .map_or(endpoint.clone(), |(_, url)| url.clone());
    let mut env: Vec<(String, String)> = vec![
        ("AWS_ENDPOINT_URL".into(), services_endpoint.clone()),
        ("AWS_REGION".into(), opts.region.clone()),
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("RENDERFLEET_ENV".into(), names.env.clone()),
        (
            "RENDERFLEET_VISIBILITY_SECS".into(),
            opts.visibility.as_secs().max(1).to_string(),
        ),
    ];
    if opts.aws_rules.is_some() {
        // Agents complete the launch hook the proxy holds their instance in, as on EC2.
        env.push(("RENDERFLEET_LAUNCH_HOOK".into(), launch_hook(names)));
    }
    env.extend(opts.extra_env.iter().cloned());

    let api_port = if opts.api_port == 0 {
        process::free_port()?
    } else {
        opts.api_port
    };
    ensure_port_free(api_port, "--api-port")?;
    let api_url = format!("http://127.0.0.1:{api_port}");
    let mut server_env = env.clone();
    server_env.push(("RENDERFLEET_LISTEN".into(), format!("127.0.0.1:{api_port}")));
    let job_server = process::spawn_detached(
        &opts.bin_dir.join("job-server"),
        &[],
        &server_env,
        &logs.join("job-server.log"),
    )?;
    started.push(job_server.clone());

    let mut scaler_env = env.clone();
    scaler_env.extend(scaler_settings);
    // `--service-env` has the last word, so a test or a user can try another policy setting.
    scaler_env.extend(opts.extra_env.iter().cloned());
    let scaler = process::spawn_detached(
        &opts.bin_dir.join("scaler"),
        &[
            "loop".into(),
            "--interval".into(),
            format!("{}ms", opts.tick.as_millis()),
        ],
        &scaler_env,
        &logs.join("scaler.log"),
    )?;
    started.push(scaler.clone());

    let supervisor = process::spawn_detached(
        &opts.bin_dir.join("renderctl"),
        &[
            "dev".into(),
            "supervise".into(),
            "--state-dir".into(),
            opts.state_dir.display().to_string(),
            "--agent-bin".into(),
            opts.bin_dir.join("render-agent").display().to_string(),
            "--boot-delay".into(),
            format!("{}ms", opts.boot_delay.as_millis()),
            "--slots".into(),
            opts.slots.to_string(),
        ],
        &env,
        &logs.join("supervisor.log"),
    )?;
    started.push(supervisor.clone());

    wait_http(
        &format!("{api_url}/healthz"),
        Duration::from_secs(30),
        &job_server,
    )
    .await
    .context("waiting for the job server")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !agents_file(&opts.state_dir).exists() {
        if !process::is_ours(&supervisor) {
            bail!(
                "the fleet supervisor exited; see {}",
                logs.join("supervisor.log").display()
            );
        }
        if Instant::now() > deadline {
            bail!("the fleet supervisor did not report within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, rec) in [("scaler", &scaler)] {
        if !process::is_ours(rec) {
            bail!(
                "the {name} exited at start; see {}",
                logs.join(format!("{name}.log")).display()
            );
        }
    }

    let stack = Stack {
        env: names.env.clone(),
        region: opts.region.clone(),
        api_url: api_url.clone(),
        endpoint: endpoint.clone(),
        api_key: provisioned.dev_key.clone(),
        moto,
        job_server,
        scaler,
        supervisor,
        proxy: proxy.as_ref().map(|(rec, _)| rec.clone()),
        proxy_url: proxy.map(|(_, url)| url),
    };
    write_atomic(
        &stack_file(&opts.state_dir),
        &serde_json::to_string_pretty(&stack)?,
    )?;
    let mut file = BTreeMap::new();
    for (k, v) in &env {
        if k.starts_with("AWS_") || k == "RENDERFLEET_ENV" {
            file.insert(k.clone(), v.clone());
        }
    }
    file.insert("RENDERFLEET_API_URL".into(), api_url);
    file.insert("RENDERFLEET_API_KEY".into(), provisioned.dev_key);
    file.insert("RENDERFLEET_QUEUE".into(), names.queue.clone());
    file.insert("RENDERFLEET_QUEUE_URL".into(), provisioned.queue_url);
    file.insert("RENDERFLEET_DLQ".into(), names.dlq.clone());
    file.insert("RENDERFLEET_TABLE".into(), names.table.clone());
    file.insert("RENDERFLEET_BUCKET".into(), names.bucket.clone());
    file.insert("RENDERFLEET_ASG".into(), names.asg.clone());
    file.insert(
        "RENDERFLEET_STATE_DIR".into(),
        opts.state_dir.display().to_string(),
    );
    write_atomic(&opts.state_dir.join("local.env"), &EnvFile(file).render())?;
    Ok(stack)
}

/// Starts the AWS-rules proxy in front of the emulator and returns it with its URL. Its rules:
/// quotas scaled from the local fleet (`max_workers`) to the modelled one, the launch hook it
/// holds new instances in, and the harness (the fleet supervisor, renderctl) left unthrottled.
async fn start_rules_proxy(
    opts: &UpOptions,
    rules: &RulesOptions,
    names: &ResourceNames,
    upstream: &str,
    started: &mut Vec<Recorded>,
) -> anyhow::Result<(Recorded, String)> {
    if !rules.proxy.is_file() {
        bail!(
            "{} is missing: --aws-rules needs the proxy (scripts/reliability/faultproxy.py)",
            rules.proxy.display()
        );
    }
    let config = serde_json::json!({
        "model_workers": rules.model_workers,
        "local_workers": opts.max_workers.max(1),
        "launch_hook": launch_hook(names),
        "launch_timeout_secs": 600,
        "proceed_secs": 1,
        "harness_apps": ["renderfleet-supervisor", "renderctl"],
    });
    let rules_file = opts.state_dir.join("aws-rules.json");
    write_atomic(&rules_file, &serde_json::to_string_pretty(&config)?)?;
    let port_file = opts.state_dir.join("aws-rules.port");
    let _ = std::fs::remove_file(&port_file);
    // The project virtualenv's interpreter (next to moto_server) when there is one: a version
    // manager's `python3` shim would show up as a shell, not as the proxy, until it execs.
    let venv_python = opts.moto_bin.with_file_name("python3");
    let python = if venv_python.is_file() {
        venv_python
    } else {
        PathBuf::from("python3")
    };
    let mut rec = process::spawn_detached(
        &python,
        &[
            rules.proxy.display().to_string(),
            "--upstream".into(),
            upstream.to_owned(),
            "--port-file".into(),
            port_file.display().to_string(),
            "--rules".into(),
            rules_file.display().to_string(),
        ],
        &[],
        &logs_dir(&opts.state_dir).join("aws-rules.log"),
    )?;
    rec.program = process::file_name(&rules.proxy);
    started.push(rec.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.trim().parse::<u16>().ok())
        {
            break p;
        }
        if !process::is_alive(rec.pid) {
            bail!(
                "the AWS-rules proxy exited at start; see {}",
                logs_dir(&opts.state_dir).join("aws-rules.log").display()
            );
        }
        if Instant::now() > deadline {
            bail!("the AWS-rules proxy did not listen within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Ok((rec, format!("http://127.0.0.1:{port}")))
}

fn ensure_port_free(port: u16, flag: &str) -> anyhow::Result<()> {
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        bail!(
            "port {port} on 127.0.0.1 is in use: choose another with {flag} (0 picks a free one)"
        );
    }
    Ok(())
}

async fn wait_http(url: &str, timeout: Duration, rec: &Recorded) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(resp) = client.get(url).send().await
            && resp.status().is_success()
        {
            return Ok(());
        }
        if !process::is_ours(rec) {
            bail!("{} exited before answering {url}", rec.program);
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer within {} s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops a stack's processes by pid: the supervisor first (it drains its agents), then the
/// scaler, the job server and the emulator; then any agent the supervisor left behind.
fn stop_stack(state_dir: &Path, stack: &Stack) -> Vec<String> {
    let mut report = Vec::new();
    for (name, rec) in stack.services() {
        let grace = if name == "fleet supervisor" {
            Duration::from_secs(150)
        } else {
            Duration::from_secs(15)
        };
        if process::is_ours(rec) {
            let killed = process::stop(rec, grace);
            report.push(format!(
                "{name} (pid {}) {}",
                rec.pid,
                if killed { "killed" } else { "stopped" }
            ));
        }
    }
    for (instance, rec) in read_agents(state_dir).agents {
        if process::is_ours(&rec) {
            process::stop(&rec, Duration::from_secs(15));
            report.push(format!("agent {instance} (pid {}) stopped", rec.pid));
        }
    }
    let _ = std::fs::remove_file(stack_file(state_dir));
    let _ = std::fs::remove_file(agents_file(state_dir));
    let _ = std::fs::remove_file(state_dir.join("local.env"));
    report
}

/// Stops the stack recorded in `state_dir`, if any. Touches no process it did not start.
pub fn down(state_dir: &Path) -> anyhow::Result<Vec<String>> {
    let _lock = lock(state_dir)?;
    match read_stack(state_dir) {
        Some(stack) => Ok(stop_stack(state_dir, &stack)),
        None => Ok(Vec::new()),
    }
}
