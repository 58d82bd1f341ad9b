//! `renderctl dev up | down | status`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use renderfleet_core::names::ResourceNames;
use serde::{Deserialize, Serialize};

use super::process::{self, Recorded};
use renderfleet_core::aws::provision::launch_template_name;

use super::provision::{self, Plan, Provisioned};
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
    /// The resources' names. Absent only from a `stack.json` an older renderctl wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<StackNames>,
}

/// The resolved names of a stack's resources, recorded in `stack.json` so that its readers (the
/// end-to-end tests, `scripts/reliability`) take them from there instead of deriving them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackNames {
    /// Core's names, flattened into the same object.
    #[serde(flatten)]
    pub resources: ResourceNames,
    pub scaling_policy_parameter: String,
    pub launch_template: String,
    /// The launch hook the AWS-rules mode holds new instances in.
    pub launch_hook: String,
}

impl StackNames {
    pub fn of(n: &ResourceNames) -> Self {
        Self {
            resources: n.clone(),
            scaling_policy_parameter: n.scaling_policy_parameter(),
            launch_template: launch_template_name(n),
            launch_hook: launch_hook(n),
        }
    }

    /// The same names as core's type.
    pub fn resource_names(&self) -> ResourceNames {
        self.resources.clone()
    }
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

    /// The resources' names as `dev up` recorded them.
    pub fn resource_names(&self) -> anyhow::Result<ResourceNames> {
        match &self.names {
            Some(n) => Ok(n.resource_names()),
            None => bail!(
                "stack.json records no resource names (an older renderctl started this stack): \
                 restart it with scripts/dev-down and scripts/dev-up"
            ),
        }
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

/// The stack recorded in `state_dir`, if one is.
pub fn read_stack(state_dir: &Path) -> Option<Stack> {
    load_stack(state_dir).ok()
}

/// The stack recorded in `state_dir`, or why there is none.
pub fn load_stack(state_dir: &Path) -> anyhow::Result<Stack> {
    let path = stack_file(state_dir);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
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

/// `dev up`'s steps: the emulator, the resources, the AWS-rules proxy when asked for, the
/// services, and once every one answers, the record of the stack.
async fn start_all(
    opts: &UpOptions,
    names: &ResourceNames,
    started: &mut Vec<Recorded>,
) -> anyhow::Result<Stack> {
    let (moto, endpoint) = start_moto(opts, started).await?;
    let provisioned = provision::provision(&endpoint, &opts.region, &plan(opts, names))
        .await
        .context("creating the resources")?;
    // The services reach the emulator directly, or through the AWS-rules proxy.
    let proxy = match &opts.aws_rules {
        Some(rules) => Some(start_rules_proxy(opts, rules, names, &endpoint, started).await?),
        None => None,
    };
    let services_endpoint = proxy.as_ref().map_or(&endpoint, |(_, url)| url);
    let env = service_env(opts, names, services_endpoint);
    let services = start_services(opts, &env, started)?;
    services.wait_ready(opts).await?;
    let stack = Stack {
        env: names.env.clone(),
        region: opts.region.clone(),
        api_url: services.api_url,
        endpoint,
        api_key: provisioned.dev_key.clone(),
        moto,
        job_server: services.job_server,
        scaler: services.scaler,
        supervisor: services.supervisor,
        proxy_url: proxy.as_ref().map(|(_, url)| url.clone()),
        proxy: proxy.map(|(rec, _)| rec),
        names: Some(StackNames::of(names)),
    };
    record(opts, &stack, &env, &provisioned, names)?;
    Ok(stack)
}

/// Starts `program` as one of the stack's processes, logging to `logs/<log>`.
fn launch(
    opts: &UpOptions,
    started: &mut Vec<Recorded>,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &str,
) -> anyhow::Result<Recorded> {
    let rec = process::spawn_detached(program, args, env, &logs_dir(&opts.state_dir).join(log))?;
    started.push(rec.clone());
    Ok(rec)
}

/// Starts the emulator and waits for it; returns it with its endpoint.
async fn start_moto(
    opts: &UpOptions,
    started: &mut Vec<Recorded>,
) -> anyhow::Result<(Recorded, String)> {
    let moto_port = pick_port(opts.moto_port, "--moto-port")?;
    let endpoint = format!("http://127.0.0.1:{moto_port}");
    let args = ["-H", "127.0.0.1", "-p", &moto_port.to_string()].map(String::from);
    let moto = launch(opts, started, &opts.moto_bin, &args, &[], "moto.log")?;
    wait_http(
        &format!("{endpoint}/moto-api/"),
        Duration::from_secs(60),
        &moto,
    )
    .await
    .context("waiting for the moto server")?;
    Ok((moto, endpoint))
}

/// `port`, or a free one when it is 0; fails when it is taken.
fn pick_port(port: u16, flag: &str) -> anyhow::Result<u16> {
    let port = if port == 0 {
        process::free_port()?
    } else {
        port
    };
    ensure_port_free(port, flag)?;
    Ok(port)
}

/// What to create on the emulator, the scaler's policy included.
fn plan(opts: &UpOptions, names: &ResourceNames) -> Plan {
    let policy = scaler_settings(opts)
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    Plan {
        names: names.clone(),
        max_workers: opts.max_workers,
        visibility_secs: opts.visibility.as_secs().max(1),
        policy: serde_json::Value::Object(policy),
        dev_tenant: "dev".into(),
    }
}

/// The environment every service of the stack runs with.
fn service_env(opts: &UpOptions, names: &ResourceNames, endpoint: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("AWS_ENDPOINT_URL".into(), endpoint.to_owned()),
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
    env
}

/// The job server, the scaler and the fleet supervisor, started.
#[derive(Debug)]
struct Services {
    api_url: String,
    job_server: Recorded,
    scaler: Recorded,
    supervisor: Recorded,
}

fn start_services(
    opts: &UpOptions,
    env: &[(String, String)],
    started: &mut Vec<Recorded>,
) -> anyhow::Result<Services> {
    let api_port = pick_port(opts.api_port, "--api-port")?;
    let mut server_env = env.to_vec();
    server_env.push(("RENDERFLEET_LISTEN".into(), format!("127.0.0.1:{api_port}")));
    let job_server = launch(
        opts,
        started,
        &opts.bin_dir.join("job-server"),
        &[],
        &server_env,
        "job-server.log",
    )?;

    let mut scaler_env = env.to_vec();
    scaler_env.extend(scaler_settings(opts));
    // `--service-env` has the last word, so a test or a user can try another policy setting.
    scaler_env.extend(opts.extra_env.iter().cloned());
    let interval = format!("{}ms", opts.tick.as_millis());
    let scaler = launch(
        opts,
        started,
        &opts.bin_dir.join("scaler"),
        &["loop".into(), "--interval".into(), interval],
        &scaler_env,
        "scaler.log",
    )?;

    let supervisor = launch(
        opts,
        started,
        &opts.bin_dir.join("renderctl"),
        &supervisor_args(opts),
        env,
        "supervisor.log",
    )?;
    Ok(Services {
        api_url: format!("http://127.0.0.1:{api_port}"),
        job_server,
        scaler,
        supervisor,
    })
}

/// `renderctl dev supervise` with this stack's settings.
fn supervisor_args(opts: &UpOptions) -> Vec<String> {
    vec![
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
    ]
}

impl Services {
    /// Waits for the job server to answer and the fleet supervisor to record its agents, and
    /// checks the scaler did not exit at start.
    async fn wait_ready(&self, opts: &UpOptions) -> anyhow::Result<()> {
        let logs = logs_dir(&opts.state_dir);
        wait_http(
            &format!("{}/healthz", self.api_url),
            Duration::from_secs(30),
            &self.job_server,
        )
        .await
        .context("waiting for the job server")?;
        let agents = agents_file(&opts.state_dir);
        let supervisor_log = logs.join("supervisor.log");
        poll_ready(
            Duration::from_secs(30),
            || {
                (!process::is_ours(&self.supervisor)).then(|| {
                    format!(
                        "the fleet supervisor exited; see {}",
                        supervisor_log.display()
                    )
                })
            },
            "the fleet supervisor did not report within 30 s",
            async || agents.exists().then_some(()),
        )
        .await?;
        if !process::is_ours(&self.scaler) {
            bail!(
                "the scaler exited at start; see {}",
                logs.join("scaler.log").display()
            );
        }
        Ok(())
    }
}

/// Writes `stack.json`, and `local.env` for the shell and renderctl.
fn record(
    opts: &UpOptions,
    stack: &Stack,
    env: &[(String, String)],
    provisioned: &Provisioned,
    names: &ResourceNames,
) -> anyhow::Result<()> {
    write_atomic(
        &stack_file(&opts.state_dir),
        &serde_json::to_string_pretty(stack)?,
    )?;
    // In order, so that a `--service-env` setting wins as it does in the services' environment.
    let mut file = BTreeMap::new();
    for (k, v) in env {
        if k.starts_with("AWS_") || k == "RENDERFLEET_ENV" {
            file.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in [
        ("RENDERFLEET_API_URL", &stack.api_url),
        ("RENDERFLEET_API_KEY", &provisioned.dev_key),
        ("RENDERFLEET_QUEUE", &names.queue),
        ("RENDERFLEET_QUEUE_URL", &provisioned.queue_url),
        ("RENDERFLEET_DLQ", &names.dlq),
        ("RENDERFLEET_TABLE", &names.table),
        ("RENDERFLEET_BUCKET", &names.bucket),
        ("RENDERFLEET_ASG", &names.asg),
        (
            "RENDERFLEET_STATE_DIR",
            &opts.state_dir.display().to_string(),
        ),
    ] {
        file.insert(k.to_owned(), v.clone());
    }
    write_atomic(&opts.state_dir.join("local.env"), &EnvFile(file).render())
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
    let args = [
        rules.proxy.display().to_string(),
        "--upstream".into(),
        upstream.to_owned(),
        "--port-file".into(),
        port_file.display().to_string(),
        "--rules".into(),
        rules_file.display().to_string(),
    ];
    let log = logs_dir(&opts.state_dir).join("aws-rules.log");
    let mut rec = process::spawn_detached(&python, &args, &[], &log)?;
    // Checked against the proxy's command line: the interpreter runs it.
    rec.program = process::file_name(&rules.proxy);
    started.push(rec.clone());
    let port = poll_ready(
        Duration::from_secs(30),
        || {
            (!process::is_alive(rec.pid))
                .then(|| format!("the AWS-rules proxy exited at start; see {}", log.display()))
        },
        "the AWS-rules proxy did not listen within 30 s",
        async || {
            std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.trim().parse::<u16>().ok())
        },
    )
    .await?;
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
    poll_ready(
        timeout,
        || {
            (!process::is_ours(rec))
                .then(|| format!("{} exited before answering {url}", rec.program))
        },
        &format!("{url} did not answer within {} s", timeout.as_secs()),
        async || {
            let resp = client.get(url).send().await.ok()?;
            resp.status().is_success().then_some(())
        },
    )
    .await
}

/// Polls `ready` every 100 ms until it gives a value. Fails with the message `exited` gives once
/// the process waited for is gone, or with `late` after `timeout`.
async fn poll_ready<T>(
    timeout: Duration,
    exited: impl Fn() -> Option<String>,
    late: &str,
    mut ready: impl AsyncFnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = ready().await {
            return Ok(v);
        }
        if let Some(why) = exited() {
            bail!("{why}");
        }
        if Instant::now() > deadline {
            bail!("{late}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_names_are_the_resolved_ones() {
        let names = ResourceNames::for_env("dev")
            .unwrap()
            .with_bucket("renderfleet-dev-media-123456789012")
            .unwrap();
        let recorded = StackNames::of(&names);
        assert_eq!(recorded.resource_names(), names);
        assert_eq!(
            recorded.resources.bucket,
            "renderfleet-dev-media-123456789012"
        );
        assert_eq!(recorded.launch_template, "renderfleet-dev-worker");
        assert_eq!(recorded.launch_hook, "renderfleet-dev-launch");
        assert_eq!(
            recorded.scaling_policy_parameter,
            "/renderfleet/dev/scaling/policy"
        );
    }

    #[test]
    fn a_stack_file_without_names_still_reads_but_says_so() {
        let rec = serde_json::json!({ "pid": 1, "program": "x" });
        let old = serde_json::json!({
            "env": "local", "region": "us-east-1", "api_url": "http://127.0.0.1:1",
            "endpoint": "http://127.0.0.1:2", "api_key": "k",
            "moto": rec, "job_server": rec, "scaler": rec, "supervisor": rec,
        });
        let stack: Stack = serde_json::from_value(old).unwrap();
        assert!(stack.names.is_none());
        let e = stack.resource_names().unwrap_err().to_string();
        assert!(e.contains("records no resource names"), "{e}");

        let mut fresh = stack.clone();
        fresh.names = Some(StackNames::of(&ResourceNames::for_env("local").unwrap()));
        let json = serde_json::to_value(&fresh).unwrap();
        assert_eq!(json["names"]["asg"], "renderfleet-local-workers");
        assert_eq!(
            json["api_url"], "http://127.0.0.1:1",
            "existing keys unchanged"
        );
    }
}
