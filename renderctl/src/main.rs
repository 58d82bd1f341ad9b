//! renderctl: submit and follow render jobs, run the local stack, run the demo.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use renderctl::client::Api;
use renderctl::local::{stack, supervisor};
use renderctl::{absolute_path, demo, parse_duration, settings};
use renderfleet_core::api::JobView;
use renderfleet_core::aws::{AsgFleet, DynamoStore};
use renderfleet_core::clock::{now_ms, to_rfc3339};
use renderfleet_core::edge::{self, LogFormat};
use renderfleet_core::names::ResourceNames;
use renderfleet_core::ports::{ApiKeys, ScalerMemory};

#[derive(Parser, Debug)]
#[command(name = "renderctl", version, about = "renderfleet's command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Submit a job spec (JSON file, or - for stdin); prints the job id.
    Submit {
        file: PathBuf,
        /// Wait for the job to finish, showing progress, and download the video.
        #[arg(long)]
        wait: bool,
        /// Where to save the video with --wait (default out/<job id>.mp4).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Sent as the Idempotency-Key header: retrying with the same key never makes two jobs.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show a job.
    Status {
        id: String,
        /// Print the job as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait for a job to finish and download its video.
    Wait {
        id: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Manage API keys (talks to the jobs table directly; needs AWS credentials).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The local stack.
    #[command(subcommand)]
    Dev(DevCommand),
    /// The scaler's decisions (reads the jobs table; needs AWS credentials or the local stack).
    #[command(subcommand)]
    Scaling(ScalingCommand),
    /// Submit a burst of example jobs to the local stack and watch the fleet scale out and back.
    Demo {
        #[arg(long, default_value = "examples")]
        examples: PathBuf,
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Submit the examples this many times.
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long, env = "RENDERFLEET_STATE_DIR", default_value = ".renderfleet", value_parser = absolute_path)]
        state_dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create a key for a tenant; the key is printed once and stored only as a hash.
    Create {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key by its id (the part after `rfk_` and before the next `_`).
    Revoke { key_id: String },
}

#[derive(Subcommand, Debug)]
enum ScalingCommand {
    /// The newest decisions, newest first: what the scaler saw, chose and did at each tick.
    History {
        /// How many decisions.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print each decision's full record as one JSON line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum DevCommand {
    /// Start the local stack (or report the one already running).
    Up(UpArgs),
    /// Stop the processes `dev up` started, by pid.
    Down {
        #[arg(long, env = "RENDERFLEET_STATE_DIR", default_value = ".renderfleet", value_parser = absolute_path)]
        state_dir: PathBuf,
    },
    /// Show whether the local stack runs.
    Status {
        #[arg(long, env = "RENDERFLEET_STATE_DIR", default_value = ".renderfleet", value_parser = absolute_path)]
        state_dir: PathBuf,
    },
    /// Run the fleet supervisor (started by `dev up`).
    #[command(hide = true)]
    Supervise {
        #[arg(long, value_parser = absolute_path)]
        state_dir: PathBuf,
        #[arg(long, value_parser = absolute_path)]
        agent_bin: PathBuf,
        #[arg(long, value_parser = parse_duration)]
        boot_delay: Duration,
        #[arg(long, default_value_t = 1)]
        slots: u32,
    },
}

#[derive(Args, Debug)]
struct UpArgs {
    #[arg(long, env = "RENDERFLEET_STATE_DIR", default_value = ".renderfleet", value_parser = absolute_path)]
    state_dir: PathBuf,
    /// Environment name; resources are named renderfleet-<env>-*.
    #[arg(long, default_value = "local")]
    env: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(
        long,
        env = "RENDERFLEET_MOTO_BIN",
        default_value = ".venv/bin/moto_server",
        value_parser = absolute_path
    )]
    moto_bin: PathBuf,
    /// Where the renderfleet binaries are (default: next to renderctl).
    #[arg(long, value_parser = absolute_path)]
    bin_dir: Option<PathBuf>,
    /// The emulator's port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "RENDERFLEET_MOTO_PORT", default_value_t = 5055)]
    moto_port: u16,
    /// The job server's port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "RENDERFLEET_API_PORT", default_value_t = 8787)]
    api_port: u16,
    #[arg(long, env = "RENDERFLEET_MAX_WORKERS", default_value_t = 4)]
    max_workers: u32,
    /// Jobs each agent renders at once.
    #[arg(long, env = "RENDERFLEET_SLOTS", default_value_t = 1)]
    slots: u32,
    /// Simulated boot time of a new worker.
    #[arg(long, env = "RENDERFLEET_BOOT_DELAY", default_value = "3s", value_parser = parse_duration)]
    boot_delay: Duration,
    /// Time between scaler ticks.
    #[arg(long, env = "RENDERFLEET_TICK", default_value = "2s", value_parser = parse_duration)]
    tick: Duration,
    /// Idle time before the fleet goes back to zero.
    #[arg(long, env = "RENDERFLEET_IDLE_WINDOW", default_value = "10s", value_parser = parse_duration)]
    idle_window: Duration,
    /// The queue's visibility timeout (agents extend it while rendering).
    #[arg(long, env = "RENDERFLEET_VISIBILITY", default_value = "60s", value_parser = parse_duration)]
    visibility: Duration,
    /// Extra environment for every service, KEY=VALUE (repeatable), e.g. RENDERFLEET_LOG=debug.
    #[arg(long = "service-env", value_parser = parse_key_value)]
    service_env: Vec<(String, String)>,
    /// AWS's rules in the local stack: a proxy between the services and the emulator enforces
    /// AWS's default quotas (pressing as on --model-workers real workers), page sizes, the
    /// visibility cap and the group's lifecycle states (docs/AWS.md).
    #[arg(long)]
    aws_rules: bool,
    /// The fleet the AWS-rules mode models: quotas press as they would on this many workers.
    #[arg(long, default_value_t = 1000)]
    model_workers: u32,
    /// The AWS-rules proxy (scripts/reliability/faultproxy.py).
    #[arg(
        long,
        env = "RENDERFLEET_RULES_PROXY",
        default_value = "scripts/reliability/faultproxy.py",
        value_parser = absolute_path
    )]
    rules_proxy: PathBuf,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    if k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("{k:?} is not an environment variable name"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // The supervisor's log is read by tools (one JSON object a line); the CLI's is for people.
    if matches!(cli.command, Command::Dev(DevCommand::Supervise { .. })) {
        edge::init_tracing(LogFormat::Json, "info");
    } else {
        edge::init_tracing(LogFormat::Text, "warn");
    }
    match run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("renderctl: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Submit {
            file,
            wait,
            output,
            idempotency_key,
        } => {
            let body = if file == Path::new("-") {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
                b
            } else {
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let api = Api::from_settings()?;
            let job = api.submit(&body, idempotency_key.as_deref()).await?;
            println!("{}", job.id);
            if wait {
                return wait_and_download(&api, &job.id, output).await;
            }
            Ok(0)
        }
        Command::Status { id, json } => {
            let api = Api::from_settings()?;
            let job = api.get(&id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                print_job(&job);
            }
            Ok(0)
        }
        Command::Wait { id, output } => {
            let api = Api::from_settings()?;
            wait_and_download(&api, &id, output).await
        }
        Command::Keys(cmd) => keys(cmd).await,
        Command::Dev(cmd) => dev(cmd).await,
        Command::Scaling(ScalingCommand::History { limit, json }) => {
            scaling_history(limit, json).await
        }
        Command::Demo {
            examples,
            out,
            rounds,
            timeout,
            state_dir,
        } => {
            let Some(stack) = stack::read_stack(&state_dir) else {
                bail!(
                    "no local stack runs in {}: start one with scripts/dev-up",
                    state_dir.display()
                );
            };
            let summary = demo::run(
                &stack,
                &state_dir,
                &demo::DemoOptions {
                    examples,
                    out,
                    rounds,
                    timeout,
                },
            )
            .await?;
            summary.print();
            Ok(if summary.failed == 0 && summary.back_to_zero {
                0
            } else {
                1
            })
        }
    }
}

fn print_job(job: &JobView) {
    println!("id          {}", job.id);
    println!("state       {}", job.state);
    println!("progress    {:.0}%", job.progress * 100.0);
    println!("attempts    {}", job.attempts);
    println!("created     {}", job.created_at);
    if let Some(s) = &job.started_at {
        println!("started     {s}");
    }
    if let Some(s) = &job.finished_at {
        println!("finished    {s}");
    }
    if let Some(e) = &job.error {
        println!("error       {} ({})", e.message, e.code);
    }
    if let Some(o) = &job.output {
        println!("output      {} bytes, {:.2} s", o.size_bytes, o.duration);
        println!("url         {}", o.url);
    }
}

async fn wait_and_download(api: &Api, id: &str, output: Option<PathBuf>) -> anyhow::Result<i32> {
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    let job = loop {
        let job = api.get(id).await?;
        let filled = (job.progress * 30.0).round() as usize;
        let line = format!(
            "[{}{}] {:>3.0}% {} (attempt {})",
            "#".repeat(filled.min(30)),
            " ".repeat(30 - filled.min(30)),
            job.progress * 100.0,
            job.state,
            job.attempts
        );
        if tty {
            eprint!("\r{line}");
            std::io::stderr().flush()?;
        } else if line != last_line {
            eprintln!("{line}");
        }
        last_line = line;
        if job.state.is_terminal() {
            if tty {
                eprintln!();
            }
            break job;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    match (&job.output, &job.error) {
        (Some(out), _) => {
            let path = output.unwrap_or_else(|| PathBuf::from("out").join(format!("{id}.mp4")));
            let n = api.download(&out.url, &path).await?;
            eprintln!(
                "saved {} ({n} bytes, {:.2} s)",
                path.display(),
                out.duration
            );
            Ok(0)
        }
        (None, Some(e)) => {
            eprintln!("job {id} {}: {} ({})", job.state, e.message, e.code);
            Ok(1)
        }
        (None, None) => {
            eprintln!("job {id} ended {}", job.state);
            Ok(1)
        }
    }
}

/// The jobs table of the environment in `RENDERFLEET_ENV` (or the local stack's).
async fn table() -> anyhow::Result<DynamoStore> {
    let env = settings::lookup("RENDERFLEET_ENV").context("RENDERFLEET_ENV is not set")?;
    let names = ResourceNames::for_env(&env).map_err(anyhow::Error::msg)?;
    let sdk = match settings::lookup("AWS_ENDPOINT_URL") {
        Some(endpoint) => {
            let region = settings::lookup("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
            renderfleet_core::aws::emulator_config(&endpoint, &region).await
        }
        None => renderfleet_core::aws::default_config("renderctl").await,
    };
    Ok(DynamoStore::new(&sdk, names.table))
}

async fn scaling_history(limit: usize, json: bool) -> anyhow::Result<i32> {
    let store = table().await?;
    let decisions = store.decisions(limit.clamp(1, 1000)).await?;
    if json {
        for (_, record) in &decisions {
            println!("{record}");
        }
        return Ok(0);
    }
    println!(
        "{:<24} {:<9} {:>7} {:>6} {:>7} {:>7} {:>5} {:>6} {:>9} {:>9} {:>6}  acted",
        "at",
        "reason",
        "desired",
        "ready",
        "booting",
        "waiting",
        "busy",
        "retire",
        "oldest s",
        "backlog s",
        "boot s"
    );
    for (at, record) in &decisions {
        let r: serde_json::Value = serde_json::from_str(record)
            .with_context(|| format!("decision at {} is not JSON", to_rfc3339(*at)))?;
        let num = |p: &str| {
            r.pointer(p)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0)
        };
        let len = |p: &str| {
            r.pointer(p)
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len)
        };
        println!(
            "{:<24} {:<9} {:>7} {:>6} {:>7} {:>7} {:>5} {:>6} {:>9.1} {:>9.1} {:>6.1}  {}",
            to_rfc3339(*at),
            r.pointer("/decision/reason")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?"),
            num("/decision/desired"),
            num("/observation/workers"),
            num("/observation/booting"),
            num("/observation/waiting"),
            num("/counts/busy"),
            len("/decision/retire"),
            num("/decision/oldest_wait_secs"),
            num("/decision/backlog_secs"),
            num("/decision/boot_secs"),
            if r.get("dry_run").and_then(serde_json::Value::as_bool) == Some(true) {
                "dry run"
            } else if r.get("acted").and_then(serde_json::Value::as_bool) == Some(true) {
                "yes"
            } else {
                "no"
            }
        );
    }
    Ok(0)
}

async fn keys(cmd: KeysCommand) -> anyhow::Result<i32> {
    let store = table().await?;
    match cmd {
        KeysCommand::Create { tenant } => {
            if !renderfleet_core::keys::valid_tenant(&tenant) {
                bail!("tenant {tenant:?} must be 1-64 characters of a-z, 0-9, - and _");
            }
            let key = renderfleet_core::keys::generate(&tenant, now_ms());
            store.create_key(&key.record).await?;
            eprintln!(
                "key {} for tenant {tenant}; it is shown once and stored only as a hash:",
                key.record.key_id
            );
            println!("{}", key.plaintext);
            Ok(0)
        }
        KeysCommand::Revoke { key_id } => {
            if store.revoke_key(&key_id, now_ms()).await? {
                eprintln!("key {key_id} revoked");
                Ok(0)
            } else {
                eprintln!("no key {key_id}");
                Ok(1)
            }
        }
    }
}

async fn dev(cmd: DevCommand) -> anyhow::Result<i32> {
    match cmd {
        DevCommand::Up(a) => dev_up(a).await,
        DevCommand::Down { state_dir } => {
            let report = stack::down(&state_dir)?;
            if report.is_empty() {
                println!("No local stack runs in {}.", state_dir.display());
            }
            for line in report {
                println!("  {line}");
            }
            Ok(0)
        }
        DevCommand::Status { state_dir } => Ok(dev_status(&state_dir)),
        DevCommand::Supervise {
            state_dir,
            agent_bin,
            boot_delay,
            slots,
        } => {
            let opts = supervisor::SupervisorOptions {
                state_dir,
                agent_bin,
                boot_delay,
                slots,
                poll: Duration::from_millis(500),
                stop_timeout: Duration::from_secs(140),
            };
            supervise(opts).await?;
            Ok(0)
        }
    }
}

impl UpArgs {
    fn into_options(self) -> anyhow::Result<stack::UpOptions> {
        let bin_dir = match self.bin_dir {
            Some(d) => d,
            None => std::env::current_exe()?
                .parent()
                .map(Path::to_path_buf)
                .context("locating renderctl's directory")?,
        };
        Ok(stack::UpOptions {
            state_dir: self.state_dir,
            env: self.env,
            region: self.region,
            moto_bin: self.moto_bin,
            bin_dir,
            moto_port: self.moto_port,
            api_port: self.api_port,
            max_workers: self.max_workers,
            slots: self.slots,
            boot_delay: self.boot_delay,
            tick: self.tick,
            idle_window: self.idle_window,
            visibility: self.visibility,
            extra_env: self.service_env,
            aws_rules: self.aws_rules.then(|| stack::RulesOptions {
                proxy: self.rules_proxy,
                model_workers: self.model_workers.max(1),
            }),
        })
    }
}

async fn dev_up(a: UpArgs) -> anyhow::Result<i32> {
    let opts = a.into_options()?;
    let state_dir = &opts.state_dir;
    let (s, fresh) = stack::up(&opts).await?;
    if fresh {
        println!("The local stack runs (state in {}).", state_dir.display());
    } else {
        println!(
            "The local stack already runs (state in {}); nothing started.",
            state_dir.display()
        );
    }
    println!("  job server   {}   (pid {})", s.api_url, s.job_server.pid);
    println!("  emulator     {}   (pid {})", s.endpoint, s.moto.pid);
    if let (Some(url), Some(p)) = (&s.proxy_url, &s.proxy) {
        println!(
            "  AWS rules    {url}   (pid {}; counters at {url}/__rules)",
            p.pid
        );
    }
    println!(
        "  scaler       pid {} ; fleet supervisor pid {}",
        s.scaler.pid, s.supervisor.pid
    );
    println!("  logs         {}", stack::logs_dir(state_dir).display());
    println!();
    println!("Use it:");
    println!("  target/debug/renderctl submit examples/01-title-card.json --wait");
    println!(
        "  set -a; . {}/local.env; set +a   # API URL, dev key, AWS endpoint",
        state_dir.display()
    );
    println!("Stop it: scripts/dev-down");
    Ok(0)
}

fn dev_status(state_dir: &Path) -> i32 {
    match stack::read_stack(state_dir) {
        Some(s) if s.all_running() => {
            let agents = stack::read_agents(state_dir).agents.len();
            println!("running: {} ; {} agent(s)", s.api_url, agents);
            0
        }
        Some(_) => {
            println!("partly running: run scripts/dev-down, then scripts/dev-up");
            1
        }
        None => {
            println!("not running");
            1
        }
    }
}

/// The fleet supervisor of the stack `dev up` started it for (its environment names it).
async fn supervise(opts: supervisor::SupervisorOptions) -> anyhow::Result<()> {
    let env = std::env::var("RENDERFLEET_ENV").context("RENDERFLEET_ENV is not set")?;
    let names = ResourceNames::for_env(&env).map_err(anyhow::Error::msg)?;
    // A test harness standing in for EC2, not a caller of the product: the AWS-rules
    // proxy leaves its calls out of the quota figures.
    let sdk = renderfleet_core::aws::default_config("renderfleet-supervisor").await;
    let fleet = AsgFleet::new(&sdk, names.asg);
    supervisor::run(opts, &fleet).await
}
